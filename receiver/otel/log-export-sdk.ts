// The event export worker's SDK path (log-export-worker.ts): the OTel LoggerProvider, its
// BatchLogRecordProcessor (the bounded queue) and the SDK's OTLP log exporter, one SDK log record per
// event. Used for OTLP/HTTP JSON and when attribute limits are set in the environment (the SDK applies
// them); OTLP/HTTP protobuf and gRPC take the direct path (log-export-direct.ts), whose bytes are this
// path's (test/otel/protobuf/logs.test.ts).
import {
  type MeterProvider as ApiMeterProvider,
  type Attributes,
  type Counter,
  createNoopMeter,
  type LogRecord,
  type Meter,
  type ObservableResult,
  type ObservableUpDownCounter,
  type Logger as OtelLogger,
} from '@opentelemetry/api';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchLogRecordProcessor,
  LoggerProvider,
  type LogRecordExporter,
  type LogRecordProcessor,
  type ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';
import type { AttributeValue } from '../probe/types.ts';
import { eventBody, stackTrace } from './event-body.ts';
import {
  ATTRIBUTE_LIMITS_SET,
  attrKey,
  attrValue,
  type TableEntry,
  type WorkerInit,
} from './log-export-protocol.ts';
import { CountingLogExporter, loadLogExporter } from './otlp-log-exporter.ts';
import { ATTR_CODE_STACKTRACE, ATTR_PODNET_EVENT_TYPE, ATTR_PODNET_KERNEL_STACK } from './semconv.ts';
import { SEVERITIES } from './severity.ts';

/**
 * A MeterProvider handed to the SDK's BatchLogRecordProcessor as `selfObsMeterProvider`: it reads the
 * processor's own counts (dropped because the queue was full, current queue size).
 */
class QueueObserver implements ApiMeterProvider {
  readonly #onDrop: (n: number) => void;
  #queueCallbacks: Array<(r: ObservableResult) => void> = [];

  constructor(onDrop: (n: number) => void) {
    this.#onDrop = onDrop;
  }

  queueSize(): number {
    let size = 0;
    const result = { observe: (v: number) => (size += v) } as ObservableResult;
    for (const cb of this.#queueCallbacks) cb(result);
    return size;
  }

  getMeter(): Meter {
    const noop = createNoopMeter();
    const meter = Object.create(noop) as Meter;
    meter.createCounter = (name, opts) => {
      const real = noop.createCounter(name, opts);
      const counter: Counter = {
        add: (value, attrs) => {
          if (attrs?.['error.type'] === 'queue_full') this.#onDrop(value);
          real.add(value, attrs);
        },
      };
      return counter;
    };
    meter.createObservableUpDownCounter = (name, opts) => {
      const real = noop.createObservableUpDownCounter(name, opts);
      const obs: ObservableUpDownCounter = {
        addCallback: (cb) => {
          if (name.endsWith('queue.size')) this.#queueCallbacks.push(cb as (r: ObservableResult) => void);
          real.addCallback(cb);
        },
        removeCallback: (cb) => {
          this.#queueCallbacks = this.#queueCallbacks.filter((c) => c !== cb);
          real.removeCallback(cb);
        },
      };
      return obs;
    };
    return meter;
  }
}

/**
 * Runs first in the processor chain, while the record is still writable:
 * - sets the record's Resource to its entity's (one Resource per pod, host or netns: the OTLP serializer
 *   groups records by Resource object, so a batch of events of several pods is one request with one
 *   ResourceLogs per pod);
 * - hands the record its attribute object as built here, in place of the SDK copying it key by key
 *   through its validating setter (per key: an options object, a WeakSet, a copy of arrays — about a fifth
 *   of the worker's time and much of its garbage). Valid by construction: keys are non-empty strings,
 *   values are strings, finite or non-finite numbers, booleans or string arrays (cloned into this thread),
 *   never undefined, and a record has far fewer than the default 128 attributes. With attribute limits set
 *   in the environment, records take the SDK's validating path instead (`ATTRIBUTE_LIMITS_SET`).
 */
class PerRecord implements LogRecordProcessor {
  attributes: Attributes | undefined;
  resource: Resource | undefined;
  onEmit(record: ReadWriteLogRecord): void {
    const r = this.resource;
    if (r !== undefined) {
      this.resource = undefined;
      (record as { resource: Resource }).resource = r;
    }
    const a = this.attributes;
    if (a === undefined) return;
    this.attributes = undefined;
    (record as { attributes: Attributes }).attributes = a;
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface SdkLogExportHooks {
  onResult(ok: boolean, n: number, error?: Error): void;
  onQueueFull(n: number): void;
  /** A record the SDK refused (never expected). */
  onRejected(err: unknown): void;
}

export class SdkLogExport {
  readonly #provider: LoggerProvider;
  readonly #logger: OtelLogger;
  readonly #queue: QueueObserver;
  readonly #perRecord = new PerRecord();
  readonly #init: WorkerInit;
  readonly #hooks: SdkLogExportHooks;
  readonly #schemaOptions: { schemaUrl?: string };
  /** Entity attribute set (a table entry) → its Resource: the agent's attributes, then the entity keys. */
  readonly #entityResources = new WeakMap<object, Resource>();
  /** `code.stacktrace` per stack (stacks are table entries, shared by the events of one stack id). */
  readonly #traces = new WeakMap<readonly string[], string>();

  /** `inner`: the exporter to use in place of the configured OTLP one (tests). */
  static async create(
    init: WorkerInit,
    hooks: SdkLogExportHooks,
    inner?: LogRecordExporter,
  ): Promise<SdkLogExport> {
    const exporter = new CountingLogExporter(inner ?? (await loadLogExporter(init.settings)), hooks.onResult);
    return new SdkLogExport(init, hooks, exporter);
  }

  private constructor(init: WorkerInit, hooks: SdkLogExportHooks, exporter: CountingLogExporter) {
    this.#init = init;
    this.#hooks = hooks;
    this.#queue = new QueueObserver(hooks.onQueueFull);
    const s = init.settings;
    this.#schemaOptions = init.schemaUrl !== undefined ? { schemaUrl: init.schemaUrl } : {};
    this.#provider = new LoggerProvider({
      resource: resourceFromAttributes(init.resource, this.#schemaOptions),
      processors: [
        this.#perRecord,
        new BatchLogRecordProcessor({
          exporter,
          maxQueueSize: s.maxQueueSize,
          maxExportBatchSize: Math.min(s.maxExportBatchSize, s.maxQueueSize),
          scheduledDelayMillis: s.scheduledDelayMs,
          exportTimeoutMillis: s.timeoutMs,
          selfObsMeterProvider: this.#queue,
        }),
      ],
    });
    this.#logger = this.#provider.getLogger(init.scopeName, init.scopeVersion);
  }

  /** Records in the SDK batch queue now. */
  get queued(): number {
    return this.#queue.queueSize();
  }

  forceFlush(): Promise<void> {
    return this.#provider.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#provider.shutdown();
  }

  #resourceOf(entity: Readonly<Record<string, AttributeValue>>): Resource {
    let r = this.#entityResources.get(entity);
    if (r === undefined) {
      r = resourceFromAttributes({ ...this.#init.resource, ...entity }, this.#schemaOptions);
      this.#entityResources.set(entity, r);
    }
    return r;
  }

  #stackTraceOf(stack: readonly string[]): string {
    let t = this.#traces.get(stack);
    if (t === undefined) {
      t = stackTrace(stack);
      this.#traces.set(stack, t);
    }
    return t;
  }

  /** Emit the `n` records of one batch; `observed` is passed as each record's observed timestamp. */
  push(
    data: Float64Array,
    extra: readonly unknown[],
    n: number,
    table: readonly TableEntry[],
    observed?: [number, number],
  ): void {
    let i = 0;
    for (let r = 0; r < n; r++) {
      const at = i;
      const count = data[at + 7]!;
      i = at + 8 + 2 * count;
      try {
        const stackIdx = data[at + 6]!;
        const entity = table[data[at + 5]!] as Readonly<Record<string, AttributeValue>>;
        const attributes: Record<string, AttributeValue> = {};
        for (let k = at + 8; k < i; k += 2)
          attributes[table[attrKey(data[k]!)] as string] = attrValue(data, k, table, extra);
        const name = table[data[at]!] as string;
        const type = table[data[at + 1]!] as string;
        const stack = stackIdx >= 0 ? (table[stackIdx] as readonly string[]) : undefined;
        const body = eventBody(name, type, attributes, entity, stack);
        attributes[ATTR_PODNET_EVENT_TYPE] = type;
        if (stack) {
          attributes[ATTR_PODNET_KERNEL_STACK] = stack;
          attributes[ATTR_CODE_STACKTRACE] = this.#stackTraceOf(stack);
        }
        const sev = SEVERITIES[data[at + 2]!]!;
        const rec: LogRecord = {
          eventName: name,
          timestamp: [data[at + 3]!, data[at + 4]!],
          severityNumber: sev.number,
          severityText: sev.text,
          body,
          ...(observed ? { observedTimestamp: observed } : {}),
        };
        this.#perRecord.resource = this.#resourceOf(entity);
        if (ATTRIBUTE_LIMITS_SET) rec.attributes = attributes;
        else this.#perRecord.attributes = attributes;
        this.#logger.emit(rec);
      } catch (err) {
        // Never expected (the main thread encodes what it validated); counted, never silent.
        this.#hooks.onRejected(err);
      }
    }
  }
}
