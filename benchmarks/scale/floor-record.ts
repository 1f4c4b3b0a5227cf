// The podnet arm of benchmarks/scale/floor.ts, a child process: the Agent of `podnet run` (default probes,
// compiled from the checkout's dist/ as `npm start` runs it) over the host + the run's netns, the collection
// timer parked (interval 1 h), exporting OTLP/HTTP protobuf to the counting sink. Driven over stdin, one
// command a line, answered `done` on stdout once finished:
//   go      one collection (`agent.collectNow()`) and the OTLP export of it (`pipeline.forceFlush()`)
//   record  the same, and writes the plan (--plan FILE) the floor arm replays: every procfs call the
//           collection made (pread/read on kept fds, readFile/readdir/readlink/stat by path, with the netns the
//           thread was in; the process probe's listings of kept /proc/<pid>/fd directories), every netlink
//           request (socket, type, flags, payload; a request pair as one) and the OTLP request bodies
//   quit
// The recording wraps node:fs's sync calls (syncBuiltinESMExports, so the probes' named imports see the
// wrappers), NetlinkSocket.prototype.request / requestPair, PidFiles.prototype.read (its getdents64 and
// readlinkat go through koffi, not node:fs) and OTLPExporterBase.prototype.export: they only log while
// `record` runs, and are removed after it (the parent records once, before the measured rounds).
//
//   node benchmarks/scale/floor-record.ts --root DIR --prefix P --netns N --endpoint URL --plan FILE
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';

const { values: o } = parseArgs({
  options: {
    root: { type: 'string' },
    prefix: { type: 'string' },
    netns: { type: 'string' },
    endpoint: { type: 'string' },
    plan: { type: 'string' },
  },
});
if (!o.root || !o.prefix || !o.netns || !o.endpoint || !o.plan) throw new Error('missing arguments');

/** One call of a collection, in order. `ns`: inode of the netns the calling thread was in. */
export type PlanOp =
  | { k: 'pread' | 'read'; f: number; len: number; pos: number }
  | { k: 'fstat'; f: number }
  | { k: 'readFile' | 'readlink' | 'stat' | 'lstat' | 'exists'; p: string; ns: number }
  | { k: 'readdir'; p: string; ns: number; types: boolean }
  | { k: 'nl'; s: number; type: number; flags: number; payload: string }
  /** NetlinkSocket.requestPair: both requests in one sendto, the replies through recvmmsg. */
  | { k: 'nl2'; s: number; a: NlRequest; b: NlRequest }
  /** A kept /proc/<pid>/fd directory listed (probes/process/pid-files.ts): getdents64, readlinkat each. */
  | { k: 'fddir'; f: number };

export interface NlRequest {
  type: number;
  flags: number;
  /** base64 */
  payload: string;
}

export interface Plan {
  /** Files the podnet arm holds open (opened under /proc/), by index: path and the netns it was opened in. */
  files: { path: string; ns: number; flags: number | string | undefined }[];
  /** Netlink sockets the collection used: the netns path and protocol each was opened with. */
  socks: { netnsPath: string; protocol: number }[];
  ops: PlanOp[];
  /** OTLP request bodies of the export, in order, base64, with their data points. */
  bodies: { bytes: string; points: number }[];
  /** Calls on fds not opened under /proc/ (not replayed; the floor fails when there are any). */
  unknown: number;
  /** Files the collection opened (and closed): the floor holds them open from the start. */
  opened: number;
  /**
   * Netlink requests podnet made during `record` outside the collection (the dns probe's link dumps on its
   * own timer, while the collection awaits): counted by strace, not in the plan. `requests`: sendto calls;
   * `recvfrom`: datagrams of non-dump replies (one recv each); a dump's d datagrams take between ⌈d/3⌉
   * and d recvmmsg calls (receiver/netlink/recvmmsg.ts: 3 slots, the others only if already queued).
   */
  background: { requests: number; recvfrom: number; recvmmsgMin: number; recvmmsgMax: number };
}

// --- the recorder ---------------------------------------------------------------------------------------
let recording = false;
/** Nested fs calls (readFileSync reads through readSync) are the outer call's own work. */
let depth = 0;
const plan: Plan = {
  files: [],
  socks: [],
  ops: [],
  bodies: [],
  unknown: 0,
  opened: 0,
  background: { requests: 0, recvfrom: 0, recvmmsgMin: 0, recvmmsgMax: 0 },
};
let marking = false;
const fdFile = new Map<number, number>();
// biome-ignore lint/suspicious/noExplicitAny: wrapping node:fs's overloaded functions.
type AnyFn = (...a: any[]) => any;
const real = {
  openSync: fs.openSync as AnyFn,
  closeSync: fs.closeSync as AnyFn,
  readSync: fs.readSync as AnyFn,
  fstatSync: fs.fstatSync as AnyFn,
  readFileSync: fs.readFileSync as AnyFn,
  readdirSync: fs.readdirSync as AnyFn,
  readlinkSync: fs.readlinkSync as AnyFn,
  statSync: fs.statSync as AnyFn,
  lstatSync: fs.lstatSync as AnyFn,
  existsSync: fs.existsSync as AnyFn,
};
const nsNow = (): number => real.statSync('/proc/thread-self/ns/net').ino as number;

function wrap(name: keyof typeof real, log: (args: unknown[], result: unknown) => void): void {
  const f = real[name];
  // biome-ignore lint/suspicious/noExplicitAny: see AnyFn.
  (fs as any)[name] = function (this: unknown, ...args: unknown[]) {
    depth++;
    let result: unknown;
    try {
      result = f.apply(this, args);
      return result;
    } finally {
      // a failed call (a process gone since /proc was listed) is a call the floor makes too
      depth--;
      if (depth === 0) log(args, result);
    }
  };
}
/** Open /proc files by path: the file index of each (the process probe's kept fd directories). */
const pathFile = new Map<string, number>();
wrap('openSync', ([path, flags], fd) => {
  if (typeof path === 'string' && path.startsWith('/proc/') && fd !== undefined) {
    if (recording) plan.opened++;
    plan.files.push({ path, ns: nsNow(), flags: flags as number | string | undefined });
    fdFile.set(fd as number, plan.files.length - 1);
    pathFile.set(path, plan.files.length - 1);
  }
});
wrap('closeSync', ([fd]) => {
  const f = fdFile.get(fd as number);
  if (f !== undefined && pathFile.get(plan.files[f]!.path) === f) pathFile.delete(plan.files[f]!.path);
  fdFile.delete(fd as number);
});
wrap('readSync', ([fd, , offset, length, position]) => {
  if (!recording) return;
  const f = fdFile.get(fd as number);
  if (f === undefined) {
    plan.unknown++;
    return;
  }
  if (typeof offset === 'object' && offset !== null) {
    const opt = offset as { length?: number; position?: number | null };
    length = opt.length;
    position = opt.position;
  }
  const positional = typeof position === 'number' || typeof position === 'bigint';
  plan.ops.push({ k: positional ? 'pread' : 'read', f, len: Number(length), pos: Number(position ?? 0) });
});
wrap('fstatSync', ([fd]) => {
  if (!recording) return;
  const f = fdFile.get(fd as number);
  if (f === undefined) plan.unknown++;
  else plan.ops.push({ k: 'fstat', f });
});
const byPath =
  (k: 'readFile' | 'readlink' | 'stat' | 'lstat' | 'exists') =>
  ([p]: unknown[]): void => {
    if (!recording) return;
    if (typeof p !== 'string') plan.unknown++;
    else plan.ops.push({ k, p, ns: nsNow() });
  };
wrap('readFileSync', byPath('readFile'));
wrap('readlinkSync', byPath('readlink'));
wrap('statSync', byPath('stat'));
wrap('lstatSync', byPath('lstat'));
wrap('existsSync', byPath('exists'));
wrap('readdirSync', ([p, opts]) => {
  if (!recording) return;
  const types =
    typeof opts === 'object' && opts !== null && (opts as { withFileTypes?: boolean }).withFileTypes;
  plan.ops.push({ k: 'readdir', p: String(p), ns: nsNow(), types: types === true });
});
syncBuiltinESMExports();

/** After the recording: the real functions back, so that the measured collections run as shipped. */
function unwrap(): void {
  // biome-ignore lint/suspicious/noExplicitAny: see AnyFn.
  for (const [name, f] of Object.entries(real)) (fs as any)[name] = f;
  syncBuiltinESMExports();
  NetlinkSocket.prototype['request'] = request;
  NetlinkSocket.prototype['requestPair'] = requestPair;
  PidFiles.prototype['read'] = pidRead;
  OTLPExporterBase.prototype.export = exportReal;
}

const dist = `${o.root}/dist`;
const { NetlinkSocket } = (await import(`${dist}/receiver/netlink/socket.js`)) as {
  NetlinkSocket: { prototype: Record<string, AnyFn> };
};
const sockIndex = new WeakMap<object, number>();
function sockOf(sock: { netnsPath: string; protocol: number }): number {
  let s = sockIndex.get(sock);
  if (s === undefined) {
    s = plan.socks.push({ netnsPath: sock.netnsPath, protocol: sock.protocol }) - 1;
    sockIndex.set(sock, s);
  }
  return s;
}
const b64 = (payload: Uint8Array): string => Buffer.from(payload).toString('base64');
/**
 * A request of podnet's own timers during `record`: its calls counted as background. No podnet socket
 * has its own receive buffer (NetlinkSocketOptions.buffer), so a dump's reply comes through recvmmsg,
 * any other through recv (receiver/netlink/socket.ts `request`).
 */
function background(sock: unknown, dumps: boolean[], fn: () => unknown): unknown {
  const stats = (sock as { stats: { datagrams: number } }).stats;
  const d0 = stats.datagrams;
  try {
    return fn();
  } finally {
    const d = stats.datagrams - d0;
    const bg = plan.background;
    bg.requests++;
    if (dumps.length === 1 && !dumps[0]) bg.recvfrom += d;
    else {
      bg.recvmmsgMin += Math.ceil(d / 3);
      bg.recvmmsgMax += d;
    }
  }
}
const NLM_F_DUMP = 0x300;
const isDump = (flags: number): boolean => (flags & NLM_F_DUMP) === NLM_F_DUMP;
const request = NetlinkSocket.prototype['request']!;
NetlinkSocket.prototype['request'] = function (
  this: { netnsPath: string; protocol: number },
  type: number,
  flags: number,
  payload: Uint8Array,
  onMessage: unknown,
) {
  if (recording) plan.ops.push({ k: 'nl', s: sockOf(this), type, flags, payload: b64(payload) });
  if (recording || !marking) return request.call(this, type, flags, payload, onMessage);
  return background(this, [isDump(flags)], () => request.call(this, type, flags, payload, onMessage));
};
type Req = { type: number; flags: number; payload: Uint8Array };
const requestPair = NetlinkSocket.prototype['requestPair']!;
NetlinkSocket.prototype['requestPair'] = function (
  this: { netnsPath: string; protocol: number },
  a: Req,
  b: Req,
) {
  const req = (r: Req): NlRequest => ({ type: r.type, flags: r.flags, payload: b64(r.payload) });
  if (recording) plan.ops.push({ k: 'nl2', s: sockOf(this), a: req(a), b: req(b) });
  if (recording || !marking) return requestPair.call(this, a, b);
  return background(this, [false, isDump(b.flags)], () => requestPair.call(this, a, b));
};
const { PidFiles } = (await import(`${dist}/probes/process/pid-files.js`)) as {
  PidFiles: { prototype: Record<string, AnyFn> };
};
const pidRead = PidFiles.prototype['read']!;
PidFiles.prototype['read'] = function (this: unknown, pid: number, sockets: unknown) {
  const r = pidRead.call(this, pid, sockets);
  // Read through kept fds when its fd directory is open now (beyond the fd budget: by path, recorded
  // by the node:fs wrappers): its pread of io is recorded already, the listing follows it.
  const f = pathFile.get(`/proc/${pid}/fd`);
  if (recording && f !== undefined) plan.ops.push({ k: 'fddir', f });
  return r;
};
const exportReal = OTLPExporterBase.prototype.export;
OTLPExporterBase.prototype.export = function (this: unknown, items: unknown, cb: AnyFn) {
  const r = items as { bytes?: Uint8Array; points?: number };
  // the encoder reuses one buffer for every request: copy it now
  if (recording && r.bytes)
    plan.bodies.push({ bytes: Buffer.from(r.bytes).toString('base64'), points: r.points ?? 0 });
  return exportReal.call(this, items, cb);
} as typeof exportReal;

// --- the agent (as benchmarks/lib/podnet-child.ts runs it, entities restricted to the run's netns) -------
const { probeSpecs } = (await import(
  `${dist}/probes/registry.js`
)) as typeof import('../../probes/registry.ts');
const { Agent } = (await import(
  `${dist}/receiver/agent/agent.js`
)) as typeof import('../../receiver/agent/agent.ts');
const { EntityRegistry } = (await import(
  `${dist}/receiver/pods/index.js`
)) as typeof import('../../receiver/pods/index.ts');
type Entity = import('../../receiver/pods/entity.ts').Entity;
type EntitySource = import('../../receiver/pods/entity.ts').EntitySource;

const registry = new EntityRegistry({
  disableCri: true,
  netnsDiscovery: 'always',
  scanProc: false,
  refreshIntervalMs: 3_600_000,
});
await registry.start();
const prefix = o.prefix;
const keep = (e: Entity): boolean => e.kind === 'host' || (e.netnsName ?? '').startsWith(prefix);
const source: EntitySource = {
  entities: () => registry.entities().filter(keep),
  byNetns: (inode) => {
    const e = registry.byNetns(inode);
    return e && keep(e) ? e : undefined;
  },
  pods: () => [],
  onChange: (listener) =>
    registry.onChange((changes) => {
      const kept = changes.filter((c) => keep(c.entity));
      if (kept.length) listener(kept);
    }),
};
const want = Number(o.netns) + 1;
if (source.entities().length !== want)
  throw new Error(`${source.entities().length} entities, expected ${want} (host + ${o.netns} netns)`);
const config = {
  collection_interval: '1h',
  cardinality_limit: 1_000_000,
  server: { address: '127.0.0.1:0' },
  exporters: { otlp: { enabled: true, endpoint: o.endpoint, protocol: 'http/protobuf', logs: false } },
};
const agent = await Agent.start({ configText: JSON.stringify(config), entitySource: source });
const enabled = probeSpecs.filter((s) => s.defaultEnabled).map((s) => s.name);

async function collection(): Promise<void> {
  await agent.collectNow();
  await agent.pipeline.forceFlush();
}

process.stdout.write(`${JSON.stringify({ ready: true, probes: enabled, entities: want })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'go') await collection();
  else if (line === 'record') {
    plan.background = { requests: 0, recvfrom: 0, recvmmsgMin: 0, recvmmsgMax: 0 };
    marking = true;
    plan.ops.length = 0;
    plan.bodies.length = 0;
    plan.unknown = 0;
    plan.opened = 0;
    recording = true;
    try {
      await collection();
    } finally {
      recording = false;
      marking = false;
    }
    // Only the files the collection read: their indices renumbered.
    const used = new Map<number, number>();
    const files: Plan['files'] = [];
    for (const op of plan.ops)
      if ('f' in op) {
        let i = used.get(op.f);
        if (i === undefined) {
          i = files.push(plan.files[op.f]!) - 1;
          used.set(op.f, i);
        }
        op.f = i;
      }
    fs.writeFileSync(o.plan, JSON.stringify({ ...plan, files }));
    unwrap();
  } else if (line === 'quit') break;
  process.stdout.write('done\n');
}
await agent.stop();
registry.stop();
process.exit(0);
