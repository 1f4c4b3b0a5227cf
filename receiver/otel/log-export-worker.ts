// The event export worker: a worker_thread that turns the record batches of the main thread
// (log-export-protocol.ts) into OTLP log exports, so encoding and serializing the records (most of an
// event's cost) runs on another core than the probes and the ring readers.
//
// Two paths, same records on the wire:
// - direct (OTLP/HTTP protobuf, gRPC): batches are queued as they came and encoded straight into the
//   protobuf request (log-export-direct.ts, protobuf/logs.ts) — no SDK log record per event;
// - SDK (OTLP/HTTP JSON, or attribute limits set in the environment, which the SDK applies): one SDK log
//   record per event through LoggerProvider → BatchLogRecordProcessor → OTLP exporter (log-export-sdk.ts).
//
// It reports what became of the records (sent, lost to a failed export, dropped by a full queue) as
// deltas, so the main thread's counts stay exact. `flush` / `shutdown` answer `done` after the counts they
// produced.
import { parentPort, workerData } from 'node:worker_threads';
import type { DirectLogExport } from './log-export-direct.ts';
import {
  ATTRIBUTE_LIMITS_SET,
  type FromWorker,
  type TableEntry,
  type ToWorker,
  type WorkerInit,
} from './log-export-protocol.ts';
import type { SdkLogExport } from './log-export-sdk.ts';

const port = parentPort;
if (!port) throw new Error('log-export-worker.ts runs as a worker_thread');
const init = workerData as WorkerInit;
const post = (m: FromWorker): void => port.postMessage(m);

let sent = 0;
let lostExportFailed = 0;
let lostQueueFull = 0;
let lastError: string | undefined;
let countsScheduled = false;

function sendCounts(): void {
  countsScheduled = false;
  if (sent === 0 && lostExportFailed === 0 && lostQueueFull === 0 && lastError === undefined) return;
  post({
    t: 'counts',
    sent,
    lostExportFailed,
    lostQueueFull,
    queued: exp.queued,
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

const hooks = {
  onResult(ok: boolean, n: number, error?: Error): void {
    if (ok) sent += n;
    else {
      lostExportFailed += n;
      lastError = String(error?.message ?? error);
    }
    scheduleCounts();
  },
  onQueueFull(n: number): void {
    lostQueueFull += n;
    scheduleCounts();
  },
  onRejected(err: unknown): void {
    lostExportFailed++;
    lastError = `event record rejected by the export worker: ${String(err)}`;
    scheduleCounts();
  },
};

/** The direct path unless the protocol is JSON or the SDK must apply attribute limits. */
export const DIRECT = init.settings.protocol !== 'http/json' && !ATTRIBUTE_LIMITS_SET;
// Only the path in use is loaded (the SDK's LoggerProvider is not, on the direct path).
const exp: DirectLogExport | SdkLogExport = DIRECT
  ? await (await import('./log-export-direct.ts')).DirectLogExport.create(init.settings, init, hooks)
  : await (await import('./log-export-sdk.ts')).SdkLogExport.create(init, hooks);
let table: TableEntry[] = [];
let closed = false;

/**
 * SDK path: batches wait here and are emitted a slice per event-loop turn: the message port hands over
 * every queued message in one go, and emitting them all at once would keep the export's socket I/O
 * waiting. (The direct path only queues a batch on arrival; it encodes per export.)
 */
const pending: { data: Float64Array; extra: unknown[]; n: number; table: TableEntry[] }[] = [];
let draining = false;
const SLICE_RECORDS = 2048;

function drain(): void {
  let done = 0;
  while (pending.length > 0 && done < SLICE_RECORDS) {
    const b = pending.shift()!;
    if (closed) {
      lostExportFailed += b.n;
      scheduleCounts();
    } else (exp as SdkLogExport).push(b.data, b.extra, b.n, b.table);
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
      const { data, extra } = m;
      // A batch keeps the table it was encoded against (a reset starts a new array; entries are only
      // ever appended to one).
      if (DIRECT) {
        if (closed) {
          lostExportFailed += m.n;
          scheduleCounts();
          return;
        }
        const ms = Date.now();
        (exp as DirectLogExport).push(data, extra, m.n, table, [Math.floor(ms / 1000), (ms % 1000) * 1e6]);
        return;
      }
      pending.push({ data, extra, n: m.n, table });
      if (!draining) {
        draining = true;
        setImmediate(drain);
      }
      return;
    }
    case 'flush':
      whenDrained()
        .then(() => exp.forceFlush())
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
          return exp.shutdown();
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
