// Main-thread side of the event export: encodes records into batches (log-export-protocol.ts) for the export
// worker (log-export-worker.ts: LoggerProvider → BatchLogRecordProcessor → OTLP exporter) and keeps the
// accounting exact across the thread boundary.
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
import { TABLE_MAX } from './log-export-protocol.ts';
import type { SelfTelemetry } from './self-telemetry.ts';
import { PODNET_VERSION } from './version.ts';

const WORKER_URL = new URL('./log-export-worker.ts', import.meta.url);
/**
 * A batch is posted at this many records or array slots (else at the end of the event-loop turn): small
 * enough that the array stays out of V8's large-object space (appending to one costs ~10x more).
 */
const POST_RECORDS = 256;
const POST_SLOTS = 8192;
const RESTART_DELAY_MS = 1000;

export class EventExport {
  private readonly _settings: LogsExportSettings;
  private readonly _init: WorkerInit;
  private readonly _self: SelfTelemetry;
  private readonly _log: Logger;
  private _worker: Worker | undefined;
  private _restartTimer: NodeJS.Timeout | undefined;
  // Table of strings, stacks and entity attribute sets the worker knows (see log-export-protocol.ts).
  private _strings = new Map<string, number>();
  private _objects = new WeakMap<object, number>();
  private _tableSize = 0;
  private _reset = false;
  private _add: TableEntry[] = [];
  /** Sealed batches not yet posted (see _pump), and the records in them. */
  private _sealed: BatchMessage[] = [];
  private _sealedN = 0;
  /** Records the worker may hold at once. */
  private readonly _window: number;
  // The batch being built.
  private _data: unknown[] = [];
  private _n = 0;
  private _postScheduled = false;
  /** Records posted to the current worker and not yet reported back. */
  private _inWorker = 0;
  /** Records the worker reported settled (sent or lost), ever. */
  private _settled = 0;
  private _nextId = 1;
  private readonly _waiters = new Map<number, () => void>();
  private _closed = false;
  private _lastError = '';

  constructor(options: {
    settings: LogsExportSettings;
    resource: Resource;
    self: SelfTelemetry;
    log: Logger;
  }) {
    this._settings = options.settings;
    const s = options.settings;
    this._window = Math.min(s.maxQueueSize, Math.max(2 * s.maxExportBatchSize, 2 * POST_RECORDS));
    this._self = options.self;
    this._log = options.log;
    this._init = {
      settings: options.settings,
      resource: { ...options.resource.attributes } as Record<string, AttributeValue>,
      schemaUrl: options.resource.schemaUrl,
      scopeName: 'podnet',
      scopeVersion: PODNET_VERSION,
    };
    this._start();
  }

  /** Records held: waiting to be posted, or in the worker (its queue and the export in flight). */
  held(): number {
    return this._n + this._sealedN + this._inWorker;
  }

  /**
   * Queue one record; false (and counted `lost_queue_full`) when maxQueueSize records are held already.
   * `attributes` are the probe's; `entity` a frozen attribute set reused for every event of its netns.
   */
  push(
    name: string,
    type: string,
    severityIdx: number,
    timeUnixNano: bigint,
    entity: Readonly<Record<string, AttributeValue>>,
    stack: readonly string[] | undefined,
    attributes: Readonly<Record<string, AttributeValue>>,
  ): boolean {
    if (this._closed || this._n + this._sealedN + this._inWorker >= this._settings.maxQueueSize) {
      this._self.countEvents('lost_queue_full');
      return false;
    }
    const d = this._data;
    const countAt = d.length + 7;
    d.push(
      this._str(name),
      this._str(type),
      severityIdx,
      Number(timeUnixNano / 1_000_000_000n),
      Number(timeUnixNano % 1_000_000_000n),
      this._obj(entity),
      stack ? this._obj(stack) : -1,
      0,
    );
    let count = 0;
    for (const key in attributes) {
      const v = attributes[key];
      if (v === undefined) continue;
      // JSON has no NaN / Infinity: such a number travels as its string, under a negative key index.
      if (typeof v === 'number' && v - v !== 0) d.push(-1 - this._str(key), String(v));
      else d.push(this._str(key), v);
      count++;
    }
    d[countAt] = count;
    this._n++;
    if (this._n >= POST_RECORDS || d.length >= POST_SLOTS) this._post();
    else if (!this._postScheduled) {
      this._postScheduled = true;
      setImmediate(() => this._post());
    }
    return true;
  }

  /** Export everything held; resolves once the worker reported what became of it. */
  async forceFlush(): Promise<void> {
    this._post();
    // Each round exports what the worker holds; the counts that come back before `done` let _pump post
    // the next window. Until nothing is held, or a round settles nothing (the worker gone, or a record the
    // SDK kept without a word: never expected).
    for (;;) {
      const settled = this._settled;
      await this._request('flush');
      if (!this._worker || this._sealedN + this._inWorker === 0 || this._settled === settled) return;
    }
  }

  /** Flush, shut the exporter down and stop the worker. What it still held is counted as lost. */
  async shutdown(): Promise<void> {
    if (this._closed) return;
    await this.forceFlush();
    this._closed = true;
    if (this._restartTimer) clearTimeout(this._restartTimer);
    await this._request('shutdown');
    const w = this._worker;
    this._worker = undefined;
    this._writeOff(this._inWorker);
    this._inWorker = 0;
    if (w) {
      w.removeAllListeners('exit');
      await w.terminate();
    }
  }

  private _str(s: string): number {
    let i = this._strings.get(s);
    if (i === undefined) {
      i = this._append(s);
      this._strings.set(s, i);
    }
    return i;
  }

  private _obj(o: readonly string[] | Readonly<Record<string, AttributeValue>>): number {
    let i = this._objects.get(o);
    if (i === undefined) {
      i = this._append(o);
      this._objects.set(o, i);
    }
    return i;
  }

  private _append(e: TableEntry): number {
    this._add.push(e);
    return this._tableSize++;
  }

  /** Seal the batch being built and post what the window allows. */
  private _post(): void {
    this._postScheduled = false;
    if (this._n > 0) {
      this._sealed.push({
        t: 'batch',
        reset: this._reset,
        add: this._add,
        n: this._n,
        json: JSON.stringify(this._data),
      });
      this._sealedN += this._n;
      this._n = 0;
      this._data = [];
      this._add = [];
      this._reset = false;
      if (this._tableSize >= TABLE_MAX) this._resetTable();
    }
    this._pump();
  }

  /**
   * Post sealed batches while the worker holds fewer than `_window` records: what waits beyond that waits
   * here as compact JSON (cheap to keep) rather than as SDK log records in the worker, which would outlive
   * the young generation and load the garbage collector, and keep the worker from its socket I/O.
   */
  private _pump(): void {
    const w = this._worker;
    if (!w) return; // restarting: kept (bounded by held()) until the new worker is up
    while (this._sealed.length > 0) {
      const b = this._sealed[0]!;
      if (this._inWorker > 0 && this._inWorker + b.n > this._window) return;
      this._sealed.shift();
      this._sealedN -= b.n;
      w.postMessage(b);
      this._inWorker += b.n;
    }
  }

  private _resetTable(): void {
    this._strings = new Map();
    this._objects = new WeakMap();
    this._tableSize = 0;
    this._reset = true;
  }

  private _request(t: 'flush' | 'shutdown'): Promise<void> {
    const w = this._worker;
    if (!w) return Promise.resolve();
    const id = this._nextId++;
    // Bounded, so a hung worker cannot hold up a shutdown: a round exports at most the window (two
    // batches), each within the export timeout.
    const bound = 2 * this._settings.timeoutMs + 5000;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this._waiters.delete(id);
        this._log.warn({ request: t, ms: bound }, 'event export worker did not answer');
        resolve();
      }, bound);
      timer.unref();
      this._waiters.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      w.postMessage({ t, id } satisfies ToWorker);
    });
  }

  private _start(): void {
    this._restartTimer = undefined;
    if (this._closed) return;
    const w = new Worker(WORKER_URL, { workerData: this._init, env: SHARE_ENV });
    this._worker = w;
    w.on('message', (m: FromWorker) => this._onMessage(m));
    w.on('error', (err) => this._log.error({ err: String(err) }, 'event export worker failed'));
    w.on('exit', (code) => this._onExit(w, code));
    if (this._n > 0 || this._sealedN > 0) setImmediate(() => this._post());
  }

  private _onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'counts': {
        this._inWorker -= m.sent + m.lostExportFailed + m.lostQueueFull;
        this._settled += m.sent + m.lostExportFailed + m.lostQueueFull;
        this._pump();
        if (m.sent) this._self.countEvents('sent', m.sent);
        if (m.lostQueueFull) this._self.countEvents('lost_queue_full', m.lostQueueFull);
        if (m.lostExportFailed) {
          this._self.countEvents('lost_export_failed', m.lostExportFailed);
          this._self.exportFailures.logs++;
        }
        if (m.error !== undefined) {
          if (m.error !== this._lastError) this._log.warn({ err: m.error }, 'OTLP logs export failed');
          this._lastError = m.error;
        } else if (m.sent) this._lastError = '';
        return;
      }
      case 'done': {
        const fn = this._waiters.get(m.id);
        this._waiters.delete(m.id);
        fn?.();
        return;
      }
      case 'log':
        this._log[m.level]({ ...(m.err !== undefined ? { err: m.err } : {}) }, m.msg);
        return;
      case 'ready':
        return;
    }
  }

  private _onExit(w: Worker, code: number): void {
    if (w !== this._worker) return;
    this._worker = undefined;
    this._log.error({ code, lost: this._inWorker }, 'event export worker exited; restarting');
    this._writeOff(this._inWorker);
    this._inWorker = 0;
    for (const fn of this._waiters.values()) fn();
    this._waiters.clear();
    // What was encoded for the dead worker refers to its table: it is lost too. The next worker starts
    // with an empty table.
    this._writeOff(this._n + this._sealedN);
    this._n = 0;
    this._sealed = [];
    this._sealedN = 0;
    this._data = [];
    this._add = [];
    this._resetTable();
    if (!this._closed) this._restartTimer = setTimeout(() => this._start(), RESTART_DELAY_MS);
  }

  private _writeOff(n: number): void {
    if (n > 0) this._self.countEvents('lost_export_failed', n);
  }
}
