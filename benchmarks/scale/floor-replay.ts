// The floor arm of benchmarks/scale/floor.ts, a child process run with the same node flags and environment
// as podnet's start form: replays the plan the podnet arm recorded (benchmarks/scale/floor-record.ts) doing
// only what cannot be avoided to produce the same output, nothing parsed:
//   kernel    the same procfs calls, in the same order: pread/read on the same files held open (opened once,
//             in the same netns), the kept /proc/<pid>/fd directories rewound and listed with getdents64,
//             each link read with readlinkat relative to it (as probes/process/pid-files.ts),
//             readFile/readdir/readlink/stat by the same paths (inside the same netns when podnet was),
//             and the same netlink requests on sockets held open in the same netns (a request pair in one
//             sendto), each reply received until its end as podnet does (dumps and pairs through the
//             product's recvmmsg kit, receiver/netlink/recvmmsg.ts; only the netlink headers looked at:
//             NLMSG_DONE / NLMSG_ERROR)
//   transfer  the recorded OTLP request bodies POSTed to the sink, one after another, through the same
//             HTTP client as podnet's (receiver/otel/otlp-metric-exporter.ts over the SDK's transport)
//   encode    (optional part) as many data points as the bodies hold, encoded as protobuf from typed arrays
//             with a tight loop: the price of encoding at all (a double, a timestamp, one attribute ref each)
// Commands on stdin, one a line, each answered `done`: `kernel`, `transfer`, `encode`, `quit`.
//
//   node benchmarks/scale/floor-replay.ts --root DIR --prefix P --plan FILE --endpoint URL
import {
  existsSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  statSync,
} from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import koffi from 'koffi';
import type { Plan } from './floor-record.ts';

const { values: o } = parseArgs({
  options: {
    root: { type: 'string' },
    prefix: { type: 'string' },
    plan: { type: 'string' },
    endpoint: { type: 'string' },
  },
});
if (!o.root || !o.prefix || !o.plan || !o.endpoint) throw new Error('missing arguments');
const dist = `${o.root}/dist`;
const { inNetns, socketInNetns } = (await import(
  `${dist}/receiver/netns/setns.js`
)) as typeof import('../../receiver/netns/setns.ts');
const { createMetricExporter } = (await import(
  `${dist}/receiver/otel/otlp-metric-exporter.js`
)) as typeof import('../../receiver/otel/otlp-metric-exporter.ts');
const { datagramLength, MM_SLOT, recvDatagrams, sharedMmsg } = (await import(
  `${dist}/receiver/netlink/recvmmsg.js`
)) as typeof import('../../receiver/netlink/recvmmsg.ts');
const plan = JSON.parse(readFileSync(o.plan, 'utf8')) as Plan;
if (plan.unknown > 0) throw new Error(`the plan has ${plan.unknown} calls on fds it cannot replay`);

// Netns by inode: ours, and the run's named ones (the podnet arm's entities are the host + those).
const own = statSync('/proc/thread-self/ns/net').ino;
const nsPath = new Map<number, string>();
for (const name of readdirSync('/run/netns'))
  if (name.startsWith(o.prefix)) nsPath.set(statSync(`/run/netns/${name}`).ino, `/run/netns/${name}`);
function within<T>(ns: number, fn: () => T): T {
  if (ns === own) return fn();
  const p = nsPath.get(ns);
  if (p === undefined) throw new Error(`netns inode ${ns}: neither ours nor one of the run's`);
  return inNetns(p, fn);
}

// --- setup (not measured): the files and sockets held open -----------------------------------------------
const fds = plan.files.map((f) => within(f.ns, () => openSync(f.path, f.flags ?? 'r')));
const AF_NETLINK = 16;
const SOCK_RAW_CLOEXEC = 3 | 0x80000;
const libc = koffi.load('libc.so.6');
const setsockopt = libc.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)');
const TIMEOUT = Buffer.alloc(16); // SO_RCVTIMEO: 2 s, as podnet's sockets (receiver/netlink/socket.ts)
TIMEOUT.writeBigInt64LE(2n, 0);
const socks = plan.socks.map((s) => {
  const fd = socketInNetns(s.netnsPath, AF_NETLINK, SOCK_RAW_CLOEXEC, s.protocol);
  if ((setsockopt(fd, 1, 20, TIMEOUT, 16) as number) !== 0) throw new Error('setsockopt(SO_RCVTIMEO)');
  return fd;
});
const sendto = libc.func(
  'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
);
const recv = libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
const KERNEL = Buffer.alloc(12);
KERNEL.writeUInt16LE(AF_NETLINK, 0);
const MSG_TRUNC = 0x20;
const NLM_F_MULTI = 2;
const NLM_F_DUMP = 0x300;
/** A request's header + payload at `at` of `b`; returns the aligned end. */
function put(b: Buffer, at: number, seq: number, type: number, flags: number, payload64: string): number {
  const payload = Buffer.from(payload64, 'base64');
  const len = 16 + payload.length;
  b.writeUInt32LE(len, at);
  b.writeUInt16LE(type, at + 4);
  b.writeUInt16LE(flags, at + 6);
  b.writeUInt32LE(seq, at + 8);
  payload.copy(b, at + 16);
  return at + ((len + 3) & ~3);
}
/**
 * Each request (a pair: both, in one datagram) with its header written once (sequence numbers are fixed:
 * the sockets see nothing else), and whether each reply is a dump's.
 */
const requests = plan.ops.flatMap((op, i): [number, { b: Buffer; dumps: boolean[] }][] => {
  if (op.k === 'nl') {
    const b = Buffer.alloc(16 + Buffer.byteLength(op.payload, 'base64') + 3);
    const end = put(b, 0, 2 * i + 1, op.type, op.flags, op.payload);
    return [[i, { b: b.subarray(0, end), dumps: [(op.flags & NLM_F_DUMP) === NLM_F_DUMP] }]];
  }
  if (op.k === 'nl2') {
    const b = Buffer.alloc(
      32 + Buffer.byteLength(op.a.payload, 'base64') + Buffer.byteLength(op.b.payload, 'base64') + 8,
    );
    const mid = put(b, 0, 2 * i + 1, op.a.type, op.a.flags, op.a.payload);
    const end = put(b, mid, 2 * i + 2, op.b.type, op.b.flags, op.b.payload);
    const dumps = [(op.a.flags & NLM_F_DUMP) === NLM_F_DUMP, (op.b.flags & NLM_F_DUMP) === NLM_F_DUMP];
    return [[i, { b: b.subarray(0, end), dumps }]];
  }
  return [];
});
const request = new Map(requests);
const rbuf = Buffer.alloc(64 * 1024);
const pbuf = Buffer.alloc(1 << 20);
const mm = sharedMmsg();

/** Whether the datagram of `n` bytes at `at` of `buf` ends a reply; only the message headers are read. */
function ends(buf: Buffer, at0: number, n: number, dump: boolean): boolean {
  let end = false;
  for (let at = at0; at + 16 <= at0 + n; ) {
    const len = buf.readUInt32LE(at);
    const type = buf.readUInt16LE(at + 4);
    const flags = buf.readUInt16LE(at + 6);
    // as podnet's ReplyReader (receiver/netlink/codec.ts): DONE, ERROR/ACK, any reply to a non-dump
    // request (ctnetlink's GET_STATS answers one message flagged MULTI), or a non-multipart one
    if (type === 3 || type === 2 || (type !== 1 && (!dump || (flags & NLM_F_MULTI) === 0))) end = true;
    if (len < 16) break;
    at += (len + 3) & ~3;
  }
  return end;
}

/**
 * One netlink request (or pair) and its whole reply(ies), received as podnet's NetlinkSocket does: a lone
 * non-dump request's reply with recv, a dump's or a pair's with recvmmsg (receiver/netlink/socket.ts).
 */
function netlink(fd: number, req: Buffer, dumps: boolean[]): void {
  if ((sendto(fd, req, req.length, 0, KERNEL, KERNEL.length) as number) < 0)
    throw new Error(`netlink sendto: errno ${koffi.errno()}`);
  if (dumps.length === 1 && !dumps[0]) {
    for (;;) {
      const n = recv(fd, rbuf, rbuf.length, MSG_TRUNC) as number;
      if (n <= 0 || n > rbuf.length) throw new Error(`netlink recv: ${n} (errno ${koffi.errno()})`);
      if (ends(rbuf, 0, n, false)) return;
    }
  }
  let r = 0;
  for (;;) {
    const k = recvDatagrams(fd, mm);
    if (k <= 0) throw new Error(`netlink recvmmsg: ${k} (errno ${koffi.errno()})`);
    for (let i = 0; i < k; i++) {
      const n = datagramLength(mm, i);
      if (n > MM_SLOT) throw new Error(`netlink datagram of ${n} bytes`);
      if (ends(mm.buf, i * MM_SLOT, n, dumps[r]!) && ++r === dumps.length) return;
    }
  }
}

// --- the process probe's kept fd directories (probes/process/pid-files.ts `listFds`) ----------------------
const lseek = libc.func('int64_t lseek(int fd, int64_t offset, int whence)');
const getdents64 = libc.func('intptr_t getdents64(int fd, void *buf, size_t count)');
const readlinkat = libc.func('intptr_t readlinkat(int dirfd, void *path, void *buf, size_t size)');
const dents = Buffer.alloc(32 * 1024); // as pid-files.ts: the same buffer size, so as many getdents64
const link = Buffer.alloc(256);
/** Rewinds and lists the directory, reads each fd's link; a process gone fails, as it does for podnet. */
function fdDir(dir: number): void {
  if ((lseek(dir, 0, 0) as number) < 0) return;
  for (;;) {
    const n = getdents64(dir, dents, dents.length) as number;
    if (n <= 0) return;
    for (let at = 0; at < n; ) {
      // linux_dirent64: d_reclen at 16, the name at 19; `.` and `..` are the only names not fd numbers
      if (dents[at + 19] !== 0x2e) readlinkat(dir, dents.subarray(at + 19), link, link.length);
      at += dents[at + 16]! | (dents[at + 17]! << 8);
    }
  }
}

/** A path call as podnet makes it; a process that exited since the recording fails, as it does for podnet. */
function byPath(ns: number, fn: () => unknown): void {
  try {
    within(ns, fn);
  } catch {
    // gone (podnet's process scan skips those too)
  }
}

function kernel(): void {
  const ops = plan.ops;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    switch (op.k) {
      case 'pread':
        readSync(fds[op.f]!, pbuf, 0, Math.min(op.len, pbuf.length), op.pos);
        break;
      case 'read':
        readSync(fds[op.f]!, pbuf, 0, Math.min(op.len, pbuf.length), null);
        break;
      case 'fddir':
        fdDir(fds[op.f]!);
        break;
      case 'fstat':
        fstatSync(fds[op.f]!);
        break;
      case 'readFile':
        byPath(op.ns, () => readFileSync(op.p));
        break;
      case 'readlink':
        byPath(op.ns, () => readlinkSync(op.p));
        break;
      case 'stat':
        byPath(op.ns, () => statSync(op.p));
        break;
      case 'lstat':
        byPath(op.ns, () => lstatSync(op.p));
        break;
      case 'exists':
        byPath(op.ns, () => existsSync(op.p));
        break;
      case 'readdir':
        byPath(op.ns, () => (op.types ? readdirSync(op.p, { withFileTypes: true }) : readdirSync(op.p)));
        break;
      case 'nl':
      case 'nl2':
        try {
          const r = request.get(i)!;
          netlink(socks[op.s]!, r.b, r.dumps);
        } catch (err) {
          const s = plan.socks[op.s]!;
          const what =
            op.k === 'nl' ? `type ${op.type}, flags ${op.flags}` : `pair ${op.a.type}+${op.b.type}`;
          throw new Error(
            `request ${i} (${what}, protocol ${s.protocol}, ${s.netnsPath}): ${(err as Error).message}`,
          );
        }
        break;
    }
  }
}

// --- transfer: the recorded bodies through podnet's own OTLP/HTTP exporter -------------------------------
const exporter = await createMetricExporter({
  protocol: 'http/protobuf',
  endpoint: o.endpoint,
  headers: {},
  timeoutMs: 10_000,
});
const bodies = plan.bodies.map((b) => ({
  bytes: new Uint8Array(Buffer.from(b.bytes, 'base64')),
  points: b.points,
}));
async function transfer(): Promise<void> {
  for (const b of bodies)
    await new Promise<void>((resolve, reject) =>
      // biome-ignore lint/suspicious/noExplicitAny: EncodedMetricsRequest goes where ResourceMetrics[] is typed.
      exporter.export(b as any, (r: { code: number; error?: Error }) =>
        r.code === 0 ? resolve() : reject(r.error ?? new Error('export failed')),
      ),
    );
}

// --- encode: that many points as protobuf from typed arrays, no SDK ----------------------------------------
const points = plan.bodies.reduce((n, b) => n + b.points, 0);
const values = new Float64Array(points).map((_, i) => i * 1.5);
const times = new Float64Array(points).fill(Date.now() * 1e6);
const attrs = new Uint32Array(points).map((_, i) => i % 64);
const out = Buffer.alloc(points * 48 + 1024);
function varint(at: number, v: number): number {
  while (v >= 0x80) {
    out[at++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[at++] = v;
  return at;
}
/** NumberDataPoint: start_time_unix_nano(2) and time_unix_nano(3) fixed64, as_double(4), an attribute ref. */
function encode(): number {
  let at = 0;
  for (let i = 0; i < points; i++) {
    const start = at;
    at += 2; // tag + one-byte length, patched below (a point is < 128 bytes)
    out[at++] = 0x11;
    out.writeDoubleLE(times[i]!, at);
    at += 8;
    out[at++] = 0x19;
    out.writeDoubleLE(times[i]!, at);
    at += 8;
    out[at++] = 0x21;
    out.writeDoubleLE(values[i]!, at);
    at += 8;
    out[at++] = 0x38; // a key-value reference: stands for the point's attribute set
    at = varint(at, attrs[i]!);
    out[start] = 0x0a;
    out[start + 1] = at - start - 2;
  }
  return at;
}

process.stdout.write(
  `${JSON.stringify({ ready: true, ops: plan.ops.length, files: fds.length, sockets: socks.length, bodies: bodies.length, points })}\n`,
);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'kernel') kernel();
  else if (line === 'transfer') await transfer();
  else if (line === 'encode') encode();
  else if (line === 'quit') break;
  process.stdout.write('done\n');
}
await exporter.shutdown();
process.exit(0);
