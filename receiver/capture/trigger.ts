// Triggered captures: a rule "when pod P (or any pod) has >= N events of kind K within T, capture that
// pod's traffic matching the event's tuple for S" turns the moment podnet sees an anomaly into a pcapng
// on disk. The triggering event carries `podnet.capture.id` (the pipeline asks onEvent before it exports
// the event); a follow-up record `podnet.capture.done` carries the same id, the file and its counts.
// Disk is bounded by capture.triggers.max_files and max_total_bytes: before a capture starts, the oldest
// finished files are deleted until the new file fits at its own size cap, so the bound holds while a
// file is still being written. Every trigger, skip and failure is counted (podnet.capture.count).
import { randomBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import type { ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Logger } from '../log/logger.ts';
import type { Entity } from '../pods/entity.ts';
import type { Attributes, AttributeValue, ProbeEvent } from '../probe/types.ts';
import { sendJson } from '../server/json.ts';
import type { CaptureConfig, TriggerRuleConfig } from './config.ts';
import { CaptureSession, type CaptureSlots } from './session.ts';

export const ATTR_CAPTURE_ID = 'podnet.capture.id';
export const CAPTURE_DONE_EVENT = 'podnet.capture.done';
const ID_RE = /^[0-9a-z]+-[0-9a-f]{8}$/;
/** Rule × netns windows (and cooldown entries) kept at once; past this the table is cleared (counting
 * restarts) or, for cooldowns, the expired and then the oldest entries are dropped. */
const MAX_WINDOWS = 10_000;

export interface CaptureFileInfo {
  readonly id: string;
  readonly file: string;
  state: 'running' | 'done';
  readonly started: string;
  readonly entity: string;
  readonly rule: number;
  readonly filter: string;
  readonly trigger: { readonly event: string; readonly type: string; readonly count: number };
  bytes: number;
  packets?: number;
  reason?: string;
}

type TriggersConfig = CaptureConfig['triggers'];

/** A tcpdump filter for both directions of the event's tuple ('' when it has none podnet can trust). */
export function tupleFilter(a: Attributes): string {
  const str = (k: string): string | undefined => (typeof a[k] === 'string' ? (a[k] as string) : undefined);
  const port = (k: string): number | undefined => {
    const v = a[k];
    return typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 65536 ? v : undefined;
  };
  const addrs = [
    str('source.address') ?? str('network.local.address'),
    str('destination.address') ?? str('network.peer.address'),
  ].filter((x): x is string => x !== undefined && isIP(x) !== 0);
  const parts = [...new Set(addrs)].map((h) => `host ${h}`);
  const transport = str('network.transport');
  const proto = transport && ['tcp', 'udp', 'sctp'].includes(transport) ? transport : undefined;
  if (proto) parts.push(proto);
  if (proto) {
    const ports = [
      port('source.port') ?? port('network.local.port'),
      port('destination.port') ?? port('network.peer.port'),
    ].filter((x): x is number => x !== undefined);
    for (const p of new Set(ports)) parts.push(`port ${p}`);
  }
  return parts.join(' and ');
}

export class TriggeredCaptures {
  #config: TriggersConfig;
  readonly #service: CaptureSlots;
  readonly #log: Logger;
  readonly #emit: (ev: ProbeEvent) => void;
  /** rule index + netns → times (ms) of the last `count` matching events. */
  #windows = new Map<string, number[]>();
  /** rule index + netns → when its last capture started (the rule's cooldown); bounded by MAX_WINDOWS. */
  readonly #lastStart = new Map<string, number>();
  readonly #files = new Map<string, CaptureFileInfo>();

  constructor(opts: {
    config: TriggersConfig;
    service: CaptureSlots;
    log: Logger;
    /** Emits the follow-up record (through the event pipeline, as the `capture` source). */
    emit: (ev: ProbeEvent) => void;
  }) {
    this.#config = opts.config;
    this.#service = opts.service;
    this.#log = opts.log;
    this.#emit = opts.emit;
    this.#prepareDir();
  }

  configure(config: TriggersConfig): void {
    const dirChanged = config.dir !== this.#config.dir;
    this.#config = config;
    // keys are rule indexes: after a reload index i may be another rule, so windows and cooldowns restart
    this.#windows = new Map();
    this.#lastStart.clear();
    if (dirChanged) {
      this.#files.clear();
      this.#prepareDir();
    }
    this.#enforce(0);
  }

  /** Files on disk, oldest first. */
  list(): CaptureFileInfo[] {
    return [...this.#files.values()];
  }

  /** Called by the event pipeline for each event before it is exported: attributes to add, if any. */
  onEvent(ev: ProbeEvent, entity: Entity | undefined): Attributes | undefined {
    if (ev.name.startsWith('podnet.capture.')) return undefined;
    const rules = this.#config.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.event !== ev.name || !entity || entity.kind !== 'pod' || !entity.pod) continue;
      if (r.type !== undefined && r.type !== ev.type) continue;
      if (r.reason !== undefined && r.reason !== ev.attributes['error.type']) continue;
      if (r.pod !== undefined && r.pod !== `${entity.pod.namespace}/${entity.pod.name}`) continue;
      const key = `${i}:${entity.netnsInode}`;
      const now = Date.now();
      let times = this.#windows.get(key);
      if (!times) {
        if (this.#windows.size >= MAX_WINDOWS) this.#windows = new Map();
        times = [];
        this.#windows.set(key, times);
      }
      times.push(now);
      if (times.length > r.count) times.shift();
      if (times.length < r.count || now - times[0]! > r.window) continue;
      const last = this.#lastStart.get(key);
      if (last !== undefined && now - last < r.cooldown) continue; // same burst: one capture is enough
      this.#windows.delete(key);
      const id = this.#start(r, i, ev, entity, key);
      if (id) return { [ATTR_CAPTURE_ID]: id };
    }
    return undefined;
  }

  #start(
    r: TriggerRuleConfig,
    index: number,
    ev: ProbeEvent,
    entity: Entity,
    key: string,
  ): string | undefined {
    const counts = this.#service.counts;
    const maxBytes = Math.min(r.max_bytes, this.#config.max_total_bytes);
    if (!this.#service.hasRoom() || !this.#enforce(maxBytes)) {
      counts.skipped++;
      this.#log.warn(
        { rule: index, pod: entity.displayName, active: this.#service.active },
        'triggered capture skipped: capture.max_concurrent reached, or running captures fill capture.triggers limits',
      );
      return undefined;
    }
    const id = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const path = join(this.#config.dir, `${id}.pcapng`);
    const filter = r.match_tuple ? tupleFilter(ev.attributes) : '';
    const info: CaptureFileInfo = {
      id,
      file: `/captures/${id}.pcapng`,
      state: 'running',
      started: new Date().toISOString(),
      entity: entity.displayName,
      rule: index,
      filter,
      trigger: { event: ev.name, type: ev.type, count: r.count },
      bytes: 0,
    };
    // Opened synchronously: a directory that cannot take the file (read-only, gone, EACCES) fails here,
    // before a session exists, and a failed start removes a file nothing else has open (no async open
    // racing the removal).
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      counts.failed++;
      this.#log.warn(
        { err, pod: entity.displayName, dir: this.#config.dir },
        'triggered capture cannot create its file',
      );
      return undefined;
    }
    let session: CaptureSession;
    let writeError: Error | undefined;
    const out = createWriteStream(path, { fd });
    // A write error (ENOSPC, EIO) ends the capture; the partial file is removed (stop_reason "error").
    out.on('error', (err) => {
      if (writeError) return;
      writeError = err;
      this.#log.warn(
        { err, [ATTR_CAPTURE_ID]: id, file: path },
        'triggered capture cannot write its file; stopped',
      );
      void session?.stop();
    });
    try {
      session = new CaptureSession({
        netnsPath: entity.netnsPath,
        filter,
        snaplen: r.snaplen,
        durationMs: r.duration,
        maxBytes,
        comment: `triggered by ${ev.name} (${ev.type}) in pod ${entity.displayName}, capture ${id}${filter ? `, filter: ${filter}` : ''}`,
        write: (b) => {
          info.bytes += b.length;
          return out.write(b);
        },
        onDrain: (fn) => out.once('drain', fn),
        log: this.#log,
      });
    } catch (err) {
      counts.failed++;
      out.destroy(); // nothing was written: the stream only closes the fd
      rmSync(path, { force: true });
      this.#log.warn({ err, pod: entity.displayName }, 'triggered capture failed to start');
      return undefined;
    }
    counts.triggered++;
    this.#setLastStart(key, Date.now());
    this.#files.set(id, info);
    this.#service.track(session);
    this.#log.info(
      { [ATTR_CAPTURE_ID]: id, pod: entity.displayName, filter, rule: index },
      'triggered capture started',
    );
    void session.done.then(async (res) => {
      out.end();
      await finished(out).catch(() => undefined); // the error itself was logged by the 'error' handler
      info.state = 'done';
      info.packets = res.packets;
      info.reason = writeError ? 'error' : res.reason;
      const attributes: Record<string, AttributeValue> = {
        [ATTR_CAPTURE_ID]: id,
        'podnet.capture.packets': res.packets,
        'podnet.capture.bytes': res.bytes,
        'podnet.capture.stop_reason': info.reason,
        'podnet.capture.kernel_drops': res.kernelDrops,
      };
      if (writeError) {
        counts.failed++;
        this.#delete(id);
      } else {
        attributes['podnet.capture.file'] = info.file;
        try {
          writeFileSync(join(this.#config.dir, `${id}.json`), JSON.stringify(info), { mode: 0o600 });
        } catch (err) {
          this.#log.warn({ err }, 'cannot write the capture index file');
        }
      }
      if (filter) attributes['podnet.capture.filter'] = filter;
      this.#emit({
        name: CAPTURE_DONE_EVENT,
        type: 'CAPTURE',
        netns: entity.netnsInode,
        timeUnixNano: BigInt(Date.now()) * 1_000_000n,
        attributes,
        severity: 'INFO',
      });
    });
    return id;
  }

  /** Remembers a start for the cooldown; past MAX_WINDOWS entries, expired ones go, then the oldest. */
  #setLastStart(key: string, now: number): void {
    this.#lastStart.delete(key); // re-inserted last: the Map stays in start order
    if (this.#lastStart.size >= MAX_WINDOWS) {
      const rules = this.#config.rules;
      for (const [k, t] of this.#lastStart) {
        const rule = rules[Number(k.slice(0, k.indexOf(':')))];
        if (!rule || now - t >= rule.cooldown) this.#lastStart.delete(k);
      }
      for (const k of this.#lastStart.keys()) {
        if (this.#lastStart.size < MAX_WINDOWS) break;
        this.#lastStart.delete(k);
      }
    }
    this.#lastStart.set(key, now);
  }

  /**
   * Deletes the oldest finished files until one more file of `reserve` bytes fits under both caps.
   * False when it cannot fit (running captures hold the space). reserve 0 = just enforce the caps.
   */
  #enforce(reserve: number): boolean {
    const c = this.#config;
    const reserved = (f: CaptureFileInfo) => (f.state === 'running' ? this.#maxBytesOf(f) : f.bytes);
    const total = () => [...this.#files.values()].reduce((s, f) => s + reserved(f), 0);
    const extra = reserve > 0 ? 1 : 0;
    for (const f of [...this.#files.values()]) {
      if (this.#files.size + extra <= c.max_files && total() + reserve <= c.max_total_bytes) break;
      if (f.state === 'running') continue;
      this.#delete(f.id);
    }
    return this.#files.size + extra <= c.max_files && total() + reserve <= c.max_total_bytes;
  }

  #maxBytesOf(f: CaptureFileInfo): number {
    const r = this.#config.rules[f.rule];
    return Math.min(r?.max_bytes ?? this.#config.max_total_bytes, this.#config.max_total_bytes);
  }

  #delete(id: string): void {
    this.#files.delete(id);
    rmSync(join(this.#config.dir, `${id}.pcapng`), { force: true });
    rmSync(join(this.#config.dir, `${id}.json`), { force: true });
  }

  /** Creates the directory (0700) and picks up the finished captures a previous run left there. */
  #prepareDir(): void {
    const dir = this.#config.dir;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const found: CaptureFileInfo[] = [];
      for (const name of readdirSync(dir)) {
        const m = /^(.+)\.pcapng$/.exec(name);
        if (!m || !ID_RE.test(m[1]!)) continue;
        const id = m[1]!;
        let info: CaptureFileInfo;
        try {
          info = JSON.parse(readFileSync(join(dir, `${id}.json`), 'utf8')) as CaptureFileInfo;
          info.bytes = statSync(join(dir, name)).size;
        } catch {
          // no index: a capture cut by a crash (its blocks up to the crash are whole)
          info = {
            id,
            file: `/captures/${id}.pcapng`,
            state: 'done',
            started: statSync(join(dir, name)).mtime.toISOString(),
            entity: 'unknown',
            rule: -1,
            filter: '',
            trigger: { event: '', type: '', count: 0 },
            bytes: statSync(join(dir, name)).size,
            reason: 'interrupted',
          };
        }
        found.push({ ...info, state: 'done' });
      }
      found.sort((a, b) => a.started.localeCompare(b.started));
      for (const f of found) this.#files.set(f.id, f);
    } catch (err) {
      this.#log.warn({ err, dir }, 'cannot prepare the triggered capture directory');
    }
  }

  /** GET /captures (JSON list) and GET /captures/<id>.pcapng (the file). */
  serve(res: ServerResponse, url: URL): void {
    if (url.pathname === '/captures') {
      const files = this.list();
      sendJson(res, 200, {
        dir: this.#config.dir,
        maxFiles: this.#config.max_files,
        maxTotalBytes: this.#config.max_total_bytes,
        totalBytes: files.reduce((s, f) => s + f.bytes, 0),
        counts: this.#service.counts,
        captures: files,
      });
      return;
    }
    const m = /^\/captures\/([^/]+)\.pcapng$/.exec(url.pathname);
    const info = m && ID_RE.test(m[1]!) ? this.#files.get(m[1]!) : undefined;
    if (!info) {
      sendJson(res, 404, { error: `no capture ${url.pathname}; GET /captures lists them` });
      return;
    }
    if (info.state === 'running') {
      sendJson(res, 409, { error: `capture ${info.id} is still running; it is served once it is done` });
      return;
    }
    res.statusCode = 200;
    res.setHeader('content-type', 'application/vnd.tcpdump.pcapng');
    res.setHeader('content-disposition', `attachment; filename="${info.id}.pcapng"`);
    const rs = createReadStream(join(this.#config.dir, `${info.id}.pcapng`));
    rs.on('error', () => res.end());
    rs.pipe(res);
  }
}
