// What the agent holds for captures: the on-demand service behind /capture and, when configured, the
// triggered captures fed by the event pipeline. Kept here so the agent only applies config to it.
import type { Logger } from '../log/logger.ts';
import type { EventPipeline, RegisteredEvent } from '../otel/event-pipeline.ts';
import type { EntitySource } from '../pods/entity.ts';
import type { CaptureConfig } from './config.ts';
import { CaptureService } from './service.ts';
import { ATTR_CAPTURE_ID, CAPTURE_DONE_EVENT, TriggeredCaptures } from './trigger.ts';

/** The follow-up record of a triggered capture, registered with the pipeline like a probe's event. */
export const CAPTURE_EVENTS: readonly RegisteredEvent[] = [
  {
    probe: 'capture',
    enabled: true,
    def: {
      name: CAPTURE_DONE_EVENT,
      description:
        'A triggered packet capture finished: its id (also on the event that triggered it), file, packets, bytes and why it stopped.',
      severity: 'INFO',
      attributes: [
        ATTR_CAPTURE_ID,
        'podnet.capture.file',
        'podnet.capture.packets',
        'podnet.capture.bytes',
        'podnet.capture.stop_reason',
        'podnet.capture.kernel_drops',
        'podnet.capture.filter',
      ],
      types: ['CAPTURE'],
      enabled: true,
    },
  },
];

export class AgentCaptures {
  readonly service: CaptureService;
  readonly #events: EventPipeline;
  readonly #log: Logger;

  constructor(opts: { config: CaptureConfig; entities: EntitySource; events: EventPipeline; log: Logger }) {
    this.#events = opts.events;
    this.#log = opts.log;
    this.service = new CaptureService({ config: opts.config, entities: opts.entities, log: opts.log });
    this.apply(opts.config);
  }

  apply(config: CaptureConfig): void {
    this.service.configure(config);
    const t = config.triggers;
    if (!t.enabled || t.rules.length === 0) {
      this.#events.setTap(undefined);
      this.service.triggered = undefined;
      return;
    }
    if (this.service.triggered) this.service.triggered.configure(t);
    else
      this.service.triggered = new TriggeredCaptures({
        config: t,
        service: this.service,
        log: this.#log,
        emit: (ev) => this.#events.emit('capture', ev),
      });
    const triggered = this.service.triggered;
    this.#events.setTap((ev, entity) => triggered.onEvent(ev, entity));
  }

  /** For /status: captures running now, counts by outcome, and the triggered files on disk. */
  status(): Record<string, unknown> {
    const files = this.service.triggered?.list();
    return {
      active: this.service.active,
      maxConcurrent: this.service.config.max_concurrent,
      counts: this.counts(),
      triggers: files ? { files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0) } : null,
    };
  }

  counts(): Readonly<Record<string, number>> {
    return { ...this.service.counts };
  }

  async stop(): Promise<void> {
    this.#events.setTap(undefined);
    await this.service.stop();
  }
}
