// Probe events → OTel log records (LoggerProvider → bounded batch queue → OTLP), the live `/events`
// stream, the JSON-lines sink and the recent-events ring for the live view.
//
// Each record carries `eventName`, the severity (the event's own, else the definition's, else WARN), the
// probe's attributes, the entity keys (see entity-attributes.ts), `podnet.event.type` and, when stack
// capture is on, `podnet.kernel.stack` (string array). The timestamp is passed as HrTime `[s, ns]`: a
// number would be taken as milliseconds by the SDK.
import type { HrTime } from '@opentelemetry/api';
import { type Logger as OtelLogger, SeverityNumber } from '@opentelemetry/api';
import type { Logger } from '../log/logger.ts';
import type { EntitySource } from '../pods/entity.ts';
import type { AttributeValue, EventDef, ProbeEvent, Severity } from '../probe/types.ts';
import { entityAttributes, resolveEntity } from './entity-attributes.ts';
import type { SelfTelemetry } from './self-telemetry.ts';
import { ATTR_PODNET_EVENT_TYPE, ATTR_PODNET_KERNEL_STACK } from './semconv.ts';

export const SEVERITY_NUMBER: Record<Severity, SeverityNumber> = {
  DEBUG: SeverityNumber.DEBUG,
  INFO: SeverityNumber.INFO,
  WARN: SeverityNumber.WARN,
  ERROR: SeverityNumber.ERROR,
};

/** One event as the live stream, the JSON-lines sink and `podnet events` show it. */
export interface EventRecord {
  /** ISO 8601 with ms. */
  readonly time: string;
  readonly timeUnixNano: string;
  readonly name: string;
  readonly type: string;
  readonly severity: Severity;
  readonly probe: string;
  /** Entity display name (`namespace/name`, `host`, netns name) or `unattributed`. */
  readonly entity: string;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly stack?: readonly string[];
}

export interface RegisteredEvent {
  readonly def: EventDef;
  readonly probe: string;
  readonly enabled: boolean;
}

export function hrTimeFromNanos(ns: bigint): HrTime {
  return [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)];
}

export class EventPipeline {
  private _entities: EntitySource;
  private readonly _self: SelfTelemetry;
  private readonly _log: Logger | undefined;
  private _defs = new Map<string, RegisteredEvent & { probes: Set<string> }>();
  private _stacks = false;
  private _labelAllowlist: readonly string[] = [];
  private _logger: OtelLogger | undefined;
  private readonly _subscribers = new Set<(r: EventRecord) => void>();
  private readonly _recent: EventRecord[] = [];
  private readonly _recentMax: number;
  private readonly _warned = new Set<string>();
  /** Total events handed in by probes. */
  emitted = 0;

  constructor(options: { entities: EntitySource; self: SelfTelemetry; log?: Logger; recent?: number }) {
    this._entities = options.entities;
    this._self = options.self;
    this._log = options.log;
    this._recentMax = options.recent ?? 200;
  }

  configure(options: {
    defs?: Iterable<RegisteredEvent>;
    stacks?: boolean;
    labelAllowlist?: readonly string[];
    entities?: EntitySource;
  }): void {
    if (options.defs) {
      const map = new Map<string, RegisteredEvent & { probes: Set<string> }>();
      for (const d of options.defs) {
        const prev = map.get(d.def.name);
        if (prev) prev.probes.add(d.probe);
        else map.set(d.def.name, { ...d, probes: new Set([d.probe]) });
      }
      this._defs = map;
    }
    if (options.stacks !== undefined) this._stacks = options.stacks;
    if (options.labelAllowlist) this._labelAllowlist = options.labelAllowlist;
    if (options.entities) this._entities = options.entities;
  }

  /** The OTel logger records go to; undefined when no log exporter is configured. */
  setLogger(logger: OtelLogger | undefined): void {
    this._logger = logger;
  }

  get exportsLogs(): boolean {
    return this._logger !== undefined;
  }

  subscribe(fn: (r: EventRecord) => void): () => void {
    this._subscribers.add(fn);
    return () => this._subscribers.delete(fn);
  }

  recent(): readonly EventRecord[] {
    return this._recent;
  }

  /** The `ProbeContext.emit` of `probe`. Never throws, never blocks. */
  emit(probe: string, ev: ProbeEvent): void {
    this.emitted++;
    const reg = this._defs.get(ev.name);
    const declared = reg?.probes.has(probe) ?? false;
    if (!reg || !declared || !reg.enabled) {
      this._self.countEvents('suppressed');
      if (!declared) this._warnOnce(`probe ${probe} emitted undeclared event ${ev.name}`);
      return;
    }
    const entity = resolveEntity(this._entities, ev.netns);
    const attributes: Record<string, AttributeValue> = {
      ...ev.attributes,
      ...entityAttributes(entity, ev.netns, this._labelAllowlist),
      [ATTR_PODNET_EVENT_TYPE]: ev.type,
    };
    const stack = this._stacks && ev.stack && ev.stack.length > 0 ? ev.stack : undefined;
    if (stack) attributes[ATTR_PODNET_KERNEL_STACK] = [...stack];
    const severity = ev.severity ?? reg.def.severity ?? 'WARN';
    const logger = this._logger;
    if (logger) {
      logger.emit({
        eventName: ev.name,
        timestamp: hrTimeFromNanos(ev.timeUnixNano),
        severityNumber: SEVERITY_NUMBER[severity],
        severityText: severity,
        attributes,
      });
    }
    if (this._subscribers.size === 0 && this._recentMax === 0) return;
    const ms = Number(ev.timeUnixNano / 1_000_000n);
    const rec: EventRecord = {
      time: new Date(ms).toISOString(),
      timeUnixNano: ev.timeUnixNano.toString(),
      name: ev.name,
      type: ev.type,
      severity,
      probe,
      entity: entity?.displayName ?? 'unattributed',
      attributes,
      ...(stack ? { stack } : {}),
    };
    this._recent.push(rec);
    if (this._recent.length > this._recentMax) this._recent.shift();
    for (const fn of this._subscribers) {
      try {
        fn(rec);
      } catch (err) {
        this._log?.warn({ err }, 'event subscriber failed');
      }
    }
  }

  private _warnOnce(msg: string): void {
    if (this._warned.has(msg)) return;
    this._warned.add(msg);
    this._log?.warn(msg);
  }
}

/** Does `rec` match the `/events` filters? `pod` matches `namespace/name`, the pod name or the uid. */
export function matchesFilter(
  rec: EventRecord,
  filter: { pod?: string | undefined; name?: string | undefined },
): boolean {
  if (filter.name && rec.name !== filter.name) return false;
  if (filter.pod) {
    const a = rec.attributes;
    const p = filter.pod;
    if (rec.entity !== p && a['k8s.pod.name'] !== p && a['k8s.pod.uid'] !== p) return false;
  }
  return true;
}
