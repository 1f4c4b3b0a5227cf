// The event export worker: a worker_thread holding the OTel LoggerProvider, its BatchLogRecordProcessor
// (the bounded queue) and the OTLP log exporter, so building the SDK log records and serializing them
// (most of an event's cost) runs on another core than the probes and the ring readers.
//
// It receives record batches from the main thread (log-export-protocol.ts), emits one SDK log record per event
// and reports what became of them (sent, lost to a failed export, dropped by a full queue) as deltas, so
// the main thread's counts stay exact. `flush` / `shutdown` answer `done` after the counts they produced.
import { parentPort, workerData } from 'node:worker_threads';
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
  type LogRecordProcessor,
  type ReadWriteLogRecord,
} from '@opentelemetry/sdk-logs';
import type { AttributeValue } from '../probe/types.ts';
import { eventBody, stackTrace } from './event-body.ts';
import type { FromWorker, TableEntry, ToWorker, WorkerInit } from './log-export-protocol.ts';
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

const port = parentPort;
if (!port) throw new Error('log-export-worker.ts runs as a worker_thread');
const init = workerData as WorkerInit;
const post = (m: FromWorker): void => port.postMessage(m);

let sent = 0;
let lostExportFailed = 0;
let lostQueueFull = 0;
let lastError: string | undefined;
let countsScheduled = false;

const queue = new QueueObserver((n) => {
  lostQueueFull += n;
  scheduleCounts();
});

function sendCounts(): void {
  countsScheduled = false;
  if (sent === 0 && lostExportFailed === 0 && lostQueueFull === 0 && lastError === undefined) return;
  post({
    t: 'counts',
    sent,
    lostExportFailed,
    lostQueueFull,
    queued: queue.queueSize(),
    ...(lastError !== undefined ? { error: lastError } : {}),
  });
  sent = 0;
  lostExportFailed = 0;
  lostQueueFull = 0;
  lastError = undefined;
}

function scheduleCounts(): void {
  if (countsScheduled) return;
  countsScheduled = true;
  queueMicrotask(sendCounts);
}

/**
 * Runs first in the processor chain, while the record is still writable:
 * - sets the record's Resource to its entity's (one Resource per pod, host or netns: the OTLP serializer
 *   groups records by Resource object, so a batch of events of several pods is one request with one
 *   ResourceLogs per pod);
 * - hands the record its attribute object as built here, in place of the SDK copying it key by key
 *   through its validating setter (per key: an options object, a WeakSet, a copy of arrays — about a fifth
 *   of the worker's time and much of its garbage). Valid by construction: keys are non-empty strings,
 *   values are strings, finite or non-finite numbers, booleans or fresh string arrays (JSON-parsed here),
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

const ATTRIBUTE_LIMITS_SET = [
  'OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT',
  'OTEL_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT',
].some((k) => (process.env[k] ?? '') !== '');
const perRecord = new PerRecord();

const s = init.settings;
const exporter = new CountingLogExporter(await loadLogExporter(s), (ok, n, error) => {
  if (ok) sent += n;
  else {
    lostExportFailed += n;
    lastError = String(error?.message ?? error);
  }
  scheduleCounts();
});
const schemaOptions = init.schemaUrl !== undefined ? { schemaUrl: init.schemaUrl } : {};
const agentResource = resourceFromAttributes(init.resource, schemaOptions);
/** Entity attribute set (a table entry) → its Resource: the agent's attributes, then the entity keys. */
const entityResources = new WeakMap<object, Resource>();
function resourceOf(entity: Readonly<Record<string, AttributeValue>>): Resource {
  let r = entityResources.get(entity);
  if (r === undefined) {
    r = resourceFromAttributes({ ...init.resource, ...entity }, schemaOptions);
    entityResources.set(entity, r);
  }
  return r;
}

const provider = new LoggerProvider({
  resource: agentResource,
  processors: [
    perRecord,
    new BatchLogRecordProcessor({
      exporter,
      maxQueueSize: s.maxQueueSize,
      maxExportBatchSize: Math.min(s.maxExportBatchSize, s.maxQueueSize),
      scheduledDelayMillis: s.scheduledDelayMs,
      exportTimeoutMillis: s.timeoutMs,
      selfObsMeterProvider: queue,
    }),
  ],
});
const logger: OtelLogger = provider.getLogger(init.scopeName, init.scopeVersion);
let table: TableEntry[] = [];
let closed = false;

/** `code.stacktrace` per stack (stacks are table entries, shared by the events of one stack id). */
const traces = new WeakMap<readonly string[], string>();
function stackTraceOf(stack: readonly string[]): string {
  let t = traces.get(stack);
  if (t === undefined) {
    t = stackTrace(stack);
    traces.set(stack, t);
  }
  return t;
}

function emitBatch(data: unknown[], n: number, table: readonly TableEntry[]): void {
  let i = 0;
  for (let r = 0; r < n; r++) {
    const at = i;
    const count = data[at + 7] as number;
    i = at + 8 + 2 * count;
    try {
      const stackIdx = data[at + 6] as number;
      const entity = table[data[at + 5] as number] as Readonly<Record<string, AttributeValue>>;
      const attributes: Record<string, AttributeValue> = {};
      for (let k = at + 8; k < i; k += 2) {
        const key = data[k] as number;
        if (key >= 0) attributes[table[key] as string] = data[k + 1] as AttributeValue;
        else attributes[table[-1 - key] as string] = Number(data[k + 1]);
      }
      const name = table[data[at] as number] as string;
      const type = table[data[at + 1] as number] as string;
      const stack = stackIdx >= 0 ? (table[stackIdx] as readonly string[]) : undefined;
      const body = eventBody(name, type, attributes, entity, stack);
      attributes[ATTR_PODNET_EVENT_TYPE] = type;
      if (stack) {
        attributes[ATTR_PODNET_KERNEL_STACK] = stack;
        attributes[ATTR_CODE_STACKTRACE] = stackTraceOf(stack);
      }
      const sev = SEVERITIES[data[at + 2] as number]!;
      const rec: LogRecord = {
        eventName: name,
        timestamp: [data[at + 3] as number, data[at + 4] as number],
        severityNumber: sev.number,
        severityText: sev.text,
        body,
      };
      perRecord.resource = resourceOf(entity);
      if (ATTRIBUTE_LIMITS_SET) rec.attributes = attributes;
      else perRecord.attributes = attributes;
      logger.emit(rec);
    } catch (err) {
      // Never expected (the main thread encodes what it validated); counted, never silent.
      lostExportFailed++;
      lastError = `event record rejected by the export worker: ${String(err)}`;
      scheduleCounts();
    }
  }
}

/**
 * Batches wait here and are emitted a slice per event-loop turn: the message port hands over every queued
 * message in one go, and emitting them all at once would keep the export's socket I/O waiting.
 */
const pending: { data: unknown[]; n: number; table: TableEntry[] }[] = [];
let draining = false;
const SLICE_RECORDS = 2048;

function drain(): void {
  let done = 0;
  while (pending.length > 0 && done < SLICE_RECORDS) {
    const b = pending.shift()!;
    if (closed) {
      lostExportFailed += b.n;
      scheduleCounts();
    } else emitBatch(b.data, b.n, b.table);
    done += b.n;
  }
  if (pending.length > 0) setImmediate(drain);
  else {
    draining = false;
    for (const fn of idle.splice(0)) fn();
  }
}

/** Callbacks waiting for `pending` to be emitted (flush, shutdown). */
const idle: Array<() => void> = [];
function whenDrained(): Promise<void> {
  return pending.length === 0 ? Promise.resolve() : new Promise((resolve) => idle.push(resolve));
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'batch': {
      if (m.reset) table = [];
      for (const e of m.add) table.push(e);
      let data: unknown[];
      try {
        data = JSON.parse(m.json) as unknown[];
      } catch (err) {
        lostExportFailed += m.n;
        lastError = `event batch rejected by the export worker: ${String(err)}`;
        scheduleCounts();
        return;
      }
      // A batch keeps the table it was encoded against (a reset starts a new array; entries are only
      // ever appended to one).
      pending.push({ data, n: m.n, table });
      if (!draining) {
        draining = true;
        setImmediate(drain);
      }
      return;
    }
    case 'flush':
      whenDrained()
        .then(() => provider.forceFlush())
        .catch(() => undefined)
        .then(() => {
          sendCounts();
          post({ t: 'done', id: m.id });
        });
      return;
    case 'shutdown':
      whenDrained()
        .then(() => {
          closed = true;
          return provider.shutdown();
        })
        .catch((err) => post({ t: 'log', level: 'warn', msg: 'exporter shutdown failed', err: String(err) }))
        .then(() => {
          sendCounts();
          post({ t: 'done', id: m.id });
        });
      return;
  }
});
post({ t: 'ready' });
