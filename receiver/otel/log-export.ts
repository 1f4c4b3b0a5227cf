// Main-thread side of the event export: encodes records into batches (log-export-protocol.ts) for the export
// worker (log-export-worker.ts: OTLP protobuf straight from the batches, or the SDK's LoggerProvider →
// BatchLogRecordProcessor → OTLP exporter for http/json) and keeps the accounting exact across the thread
// boundary.
//
// Bounded: the records held — encoded but not yet posted, posted but not yet reported back as sent or
// lost — never exceed maxQueueSize; past it a record is dropped here and counted `lost_queue_full`. So the
// SDK queue in the worker (same size) never overflows, and a slow or dead backend costs at most
// maxQueueSize records of memory. A worker that dies takes what it held with it: counted
// `lost_export_failed`, and a new worker is started.
import { SHARE_ENV, Worker } from 'node:worker_threads';
import type { Resource } from '@opentelemetry/resources';
import type { Logger } from '../log/logger.ts';
import type { AttributeValue } from '../probe/types.ts';
import type { LogsExportSettings } from './exporters.ts';
import type { BatchMessage, FromWorker, TableEntry, ToWorker, WorkerInit } from './log-export-protocol.ts';
import { INTERN_MAX, KEY_EXTRA, KEY_INTERNED, TABLE_CHARS_MAX, TABLE_MAX } from './log-export-protocol.ts';
import type { SelfTelemetry } from './self-telemetry.ts';
import { PODNET_VERSION } from './version.ts';

// dist/ (scripts/build.sh) holds the compiled .js of both files; the sources run as .ts.
const WORKER_URL = new URL(
  `./log-export-worker.${import.meta.url.endsWith('.js') ? 'js' : 'ts'}`,
  import.meta.url,
);
/**
 * A batch is posted at this many records or slots (else at the end of the event-loop turn): the worker
 * encodes while the main thread fills the next one, and a sealed batch is at most ~64 KiB.
 */
const POST_RECORDS = 256;
const POST_SLOTS = 8192;
/** Slots of the batch builder: a batch's records and the record that reaches POST_SLOTS. */
const BUILD_SLOTS = POST_SLOTS + 1024;
const RESTART_DELAY_MS = 1000;

export class EventExport {
  readonly #settings: LogsExportSettings;
  readonly #init: WorkerInit;
  readonly #self: SelfTelemetry;
  readonly #log: Logger;
  #worker: Worker | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  // Table of strings, stacks and entity attribute sets the worker knows (see log-export-protocol.ts).
  #strings = new Map<string, number>();
  #objects = new WeakMap<object, number>();
  #tableSize = 0;
  /** Characters of the table's strings (attribute values are in it: TABLE_CHARS_MAX bounds their memory). */
  #tableChars = 0;
  #reset = false;
  #add: TableEntry[] = [];
  /** Sealed batches not yet posted (see _pump), and the records in them. */
  #sealed: BatchMessage[] = [];
  #sealedN = 0;
  /** Records the worker may hold at once. */
  readonly #window: number;
  // The batch being built: `#len` slots of `#data` (reused: a sealed batch takes a copy of its slots).
  #data = new Float64Array(BUILD_SLOTS);
  #len = 0;
  #extra: unknown[] = [];
  #n = 0;
  #postScheduled = false;
  /** Records posted to the current worker and not yet reported back. */
  #inWorker = 0;
  /** Records the worker reported settled (sent or lost), ever. */
  #settled = 0;
  #nextId = 1;
  readonly #waiters = new Map<number, () => void>();
  #closed = false;
  #lastError = '';

  constructor(options: {
    settings: LogsExportSettings;
    resource: Resource;
    self: SelfTelemetry;
    log: Logger;
  }) {
    this.#settings = options.settings;
    const s = options.settings;
    this.#window = Math.min(s.maxQueueSize, Math.max(2 * s.maxExportBatchSize, 2 * POST_RECORDS));
    this.#self = options.self;
    this.#log = options.log;
    this.#init = {
      settings: options.settings,
      resource: { ...options.resource.attributes } as Record<string, AttributeValue>,
      schemaUrl: options.resource.schemaUrl,
      scopeName: 'podnet',
      scopeVersion: PODNET_VERSION,
    };
    this.#start();
  }

  /** Records held: waiting to be posted, or in the worker (its queue and the export in flight). */
  held(): number {
    return this.#n + this.#sealedN + this.#inWorker;
  }

  /** Records handed to the worker and not reported back yet (tests wait for it before a crash). */
  get inWorker(): number {
    return this.#inWorker;
  }

  /** Terminate the worker as a crash would (tests): its records are written off, and it restarts. */
  async crashWorker(): Promise<void> {
    await this.#worker?.terminate();
  }

  /**
   * Queue one record; false (and counted `lost_queue_full`) when maxQueueSize records are held already.
   * `attributes` are the probe's; `entity` a frozen attribute set reused for every event of its netns;
   * `peer` the peer keys (receiver/peers), sent as record attributes after the probe's.
   */
  push(
    name: string,
    type: string,
    severityIdx: number,
    timeUnixNano: bigint,
    entity: Readonly<Record<string, AttributeValue>>,
    stack: readonly string[] | undefined,
    attributes: Readonly<Record<string, AttributeValue>>,
    peer?: Readonly<Record<string, AttributeValue>>,
  ): boolean {
    if (this.#closed || this.#n + this.#sealedN + this.#inWorker >= this.#settings.maxQueueSize) {
      this.#self.countEvents('lost_queue_full');
      return false;
    }
    if (this.#len + 8 > this.#data.length) this.#grow();
    const at = this.#len;
    const d = this.#data;
    d[at] = this.#str(name);
    d[at + 1] = this.#str(type);
    d[at + 2] = severityIdx;
    d[at + 3] = Number(timeUnixNano / 1_000_000_000n);
    d[at + 4] = Number(timeUnixNano % 1_000_000_000n);
    d[at + 5] = this.#obj(entity);
    d[at + 6] = stack ? this.#obj(stack) : -1;
    this.#len = at + 8;
    let count = 0;
    for (const key in attributes) {
      const v = attributes[key];
      if (v === undefined) continue;
      this.#attr(key, v);
      count++;
    }
    if (peer) {
      for (const key in peer) {
        const v = peer[key];
        if (v === undefined) continue;
        this.#attr(key, v);
        count++;
      }
    }
    this.#data[at + 7] = count;
    this.#n++;
    if (this.#n >= POST_RECORDS || this.#len >= POST_SLOTS) this.#post();
    else if (!this.#postScheduled) {
      this.#postScheduled = true;
      setImmediate(() => this.#post());
    }
    return true;
  }

  /** Export everything held; resolves once the worker reported what became of it. */
  async forceFlush(): Promise<void> {
    this.#post();
    // Each round exports what the worker holds; the counts that come back before `done` let _pump post
    // the next window. Until nothing is held, or a round settles nothing (the worker gone, or a record the
    // SDK kept without a word: never expected).
    for (;;) {
      const settled = this.#settled;
      await this.#request('flush');
      if (!this.#worker || this.#sealedN + this.#inWorker === 0 || this.#settled === settled) return;
    }
  }

  /** Flush, shut the exporter down and stop the worker. What it still held is counted as lost. */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    await this.forceFlush();
    this.#closed = true;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    await this.#request('shutdown');
    const w = this.#worker;
    this.#worker = undefined;
    this.#writeOff(this.#inWorker);
    this.#inWorker = 0;
    if (w) {
      w.removeAllListeners('exit');
      await w.terminate();
    }
  }

  /** One (key, value) pair of a record (log-export-protocol.ts). */
  #attr(key: string, v: AttributeValue): void {
    if (this.#len + 2 > this.#data.length) this.#grow();
    const d = this.#data;
    const i = this.#len;
    const k = this.#str(key);
    if (typeof v === 'number') {
      d[i] = k;
      d[i + 1] = v;
    } else if (typeof v === 'string' && v.length <= INTERN_MAX) {
      d[i] = KEY_INTERNED + k;
      d[i + 1] = this.#str(v);
    } else {
      d[i] = KEY_EXTRA + k;
      d[i + 1] = this.#extra.length;
      this.#extra.push(v);
    }
    this.#len = i + 2;
  }

  /** A record larger than the room left (never at the usual sizes): a larger builder. */
  #grow(): void {
    const next = new Float64Array(2 * this.#data.length);
    next.set(this.#data.subarray(0, this.#len));
    this.#data = next;
  }

  #str(s: string): number {
    let i = this.#strings.get(s);
    if (i === undefined) {
      i = this.#append(s);
      this.#strings.set(s, i);
      this.#tableChars += s.length;
    }
    return i;
  }

  #obj(o: readonly string[] | Readonly<Record<string, AttributeValue>>): number {
    let i = this.#objects.get(o);
    if (i === undefined) {
      i = this.#append(o);
      this.#objects.set(o, i);
    }
    return i;
  }

  #append(e: TableEntry): number {
    this.#add.push(e);
    return this.#tableSize++;
  }

  /** Seal the batch being built and post what the window allows. */
  #post(): void {
    this.#postScheduled = false;
    if (this.#n > 0) {
      this.#sealed.push({
        t: 'batch',
        reset: this.#reset,
        add: this.#add,
        n: this.#n,
        data: this.#data.slice(0, this.#len),
        extra: this.#extra,
      });
      this.#sealedN += this.#n;
      this.#n = 0;
      this.#len = 0;
      this.#extra = [];
      this.#add = [];
      this.#reset = false;
      if (this.#tableSize >= TABLE_MAX || this.#tableChars >= TABLE_CHARS_MAX) this.#resetTable();
    }
    this.#pump();
  }

  /**
   * Post sealed batches while the worker holds fewer than `_window` records: what waits beyond that waits
   * here as compact slots (cheap to keep: no JavaScript object per record) rather than in the worker (as SDK log records on the SDK path),
   * where it would outlive the young generation and load the garbage collector, and keep the worker from
   * its socket I/O.
   */
  #pump(): void {
    const w = this.#worker;
    if (!w) return; // restarting: kept (bounded by held()) until the new worker is up
    while (this.#sealed.length > 0) {
      const b = this.#sealed[0]!;
      if (this.#inWorker > 0 && this.#inWorker + b.n > this.#window) return;
      this.#sealed.shift();
      this.#sealedN -= b.n;
      w.postMessage(b, [b.data.buffer]);
      this.#inWorker += b.n;
    }
  }

  #resetTable(): void {
    this.#strings = new Map();
    this.#objects = new WeakMap();
    this.#tableSize = 0;
    this.#tableChars = 0;
    this.#reset = true;
  }

  #request(t: 'flush' | 'shutdown'): Promise<void> {
    const w = this.#worker;
    if (!w) return Promise.resolve();
    const id = this.#nextId++;
    // Bounded, so a hung worker cannot hold up a shutdown: a round exports at most the window (two
    // batches), each within the export timeout.
    const bound = 2 * this.#settings.timeoutMs + 5000;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        this.#log.warn({ request: t, ms: bound }, 'event export worker did not answer');
        resolve();
      }, bound);
      timer.unref();
      this.#waiters.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      w.postMessage({ t, id } satisfies ToWorker);
    });
  }

  #start(): void {
    this.#restartTimer = undefined;
    if (this.#closed) return;
    const w = new Worker(WORKER_URL, { workerData: this.#init, env: SHARE_ENV });
    this.#worker = w;
    w.on('message', (m: FromWorker) => this.#onMessage(m));
    w.on('error', (err) => this.#log.error({ err }, 'event export worker failed'));
    w.on('exit', (code) => this.#onExit(w, code));
    if (this.#n > 0 || this.#sealedN > 0) setImmediate(() => this.#post());
  }

  #onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'counts': {
        this.#inWorker -= m.sent + m.lostExportFailed + m.lostQueueFull;
        this.#settled += m.sent + m.lostExportFailed + m.lostQueueFull;
        this.#pump();
        if (m.sent) this.#self.countEvents('sent', m.sent);
        if (m.lostQueueFull) this.#self.countEvents('lost_queue_full', m.lostQueueFull);
        if (m.lostExportFailed) {
          this.#self.countEvents('lost_export_failed', m.lostExportFailed);
          this.#self.exportFailures.logs++;
        }
        if (m.error !== undefined) {
          if (m.error !== this.#lastError) this.#log.warn({ err: m.error }, 'OTLP logs export failed');
          this.#lastError = m.error;
        } else if (m.sent) this.#lastError = '';
        return;
      }
      case 'done': {
        const fn = this.#waiters.get(m.id);
        this.#waiters.delete(m.id);
        fn?.();
        return;
      }
      case 'log':
        this.#log[m.level]({ ...(m.err !== undefined ? { err: m.err } : {}) }, m.msg);
        return;
      case 'ready':
        return;
    }
  }

  #onExit(w: Worker, code: number): void {
    if (w !== this.#worker) return;
    this.#worker = undefined;
    this.#log.error({ code, lost: this.#inWorker }, 'event export worker exited; restarting');
    this.#writeOff(this.#inWorker);
    this.#inWorker = 0;
    for (const fn of this.#waiters.values()) fn();
    this.#waiters.clear();
    // What was encoded for the dead worker refers to its table: it is lost too. The next worker starts
    // with an empty table.
    this.#writeOff(this.#n + this.#sealedN);
    this.#n = 0;
    this.#sealed = [];
    this.#sealedN = 0;
    this.#len = 0;
    this.#extra = [];
    this.#add = [];
    this.#resetTable();
    if (!this.#closed) this.#restartTimer = setTimeout(() => this.#start(), RESTART_DELAY_MS);
  }

  #writeOff(n: number): void {
    if (n > 0) this.#self.countEvents('lost_export_failed', n);
  }
}
