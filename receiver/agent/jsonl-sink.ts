// The JSON-lines event sink (`events_jsonl`): every event as one JSON line, appended to a file or written
// to stdout (`path: -`). A slow reader (a pipe, a full disk) must not make the buffer grow without bound:
// past SINK_MAX_BUFFERED waiting bytes, events are dropped and counted (`dropped`, shown in /status).
import { createWriteStream, type WriteStream } from 'node:fs';
import type { ResolvedConfig } from '../config/load.ts';
import type { Logger } from '../log/logger.ts';
import { type EventPipeline, type EventRecord, eventJsonLine } from '../otel/event-pipeline.ts';

/** The sink drops (and counts) events while this much output is waiting. */
export const SINK_MAX_BUFFERED = 8 * 1024 * 1024;

export interface JsonlSinkOptions {
  readonly events: Pick<EventPipeline, 'subscribe'>;
  readonly log: Logger;
}

interface OpenSink {
  readonly key: string;
  readonly file: WriteStream | undefined;
  readonly unsubscribe: () => void;
}

export class JsonlSink {
  readonly #opts: JsonlSinkOptions;
  #sink: OpenSink | undefined;
  /** Events not written because too much output was waiting. */
  dropped = 0;

  constructor(opts: JsonlSinkOptions) {
    this.#opts = opts;
  }

  /** Open, move or close the sink to match the config; nothing happens when the path is unchanged. */
  apply(c: ResolvedConfig['eventsJsonl']): void {
    const key = c.enabled ? c.path : '';
    if (this.#sink?.key === key) return;
    this.close();
    if (!key) return;
    const file = key === '-' ? undefined : createWriteStream(key, { flags: 'a' });
    const out: NodeJS.WriteStream | WriteStream = file ?? process.stdout;
    file?.on('error', (err) => this.#opts.log.error({ err, path: key }, 'event sink write failed'));
    const unsubscribe = this.#opts.events.subscribe((r: EventRecord) => {
      if (out.writableLength > SINK_MAX_BUFFERED) {
        this.dropped++;
        return;
      }
      out.write(eventJsonLine(r));
    });
    this.#sink = { key, file, unsubscribe };
  }

  close(): void {
    if (!this.#sink) return;
    this.#sink.unsubscribe();
    this.#sink.file?.end();
    this.#sink = undefined;
  }
}
