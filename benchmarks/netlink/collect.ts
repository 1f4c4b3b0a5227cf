// One full collection of the netlink probes (sockets, conntrack, qdisc) over 1, 100 and 1,000
// test-created netns, each with a veth pair (up, so it has qdiscs) and a few TCP/UDP sockets (a
// listener, 2 loopback connections with unread data, a UDP socket), all created by this process.
// Reports wall time, CPU time (user + system of this process) and memory per collection.
//
//   node benchmarks/netlink/collect.ts [--child-ehash N] [counts...]   (default: 1 100 1000; root)
//
// --child-ehash N sets net.ipv4.tcp_child_ehash_entries=N and net.ipv4.udp_child_hash_entries=N while
// the netns are created (restored after): each new netns then gets its own TCP established hash and
// UDP hash, so a sock_diag dump walks N buckets instead of the host-wide tables (262144 TCP buckets
// here) — the dominant cost of the sockets probe.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import koffi from 'koffi';
import { conntrackProbe } from '../../probes/conntrack/conntrack.ts';
import { qdiscProbe } from '../../probes/qdisc/qdisc.ts';
import { socketsProbe } from '../../probes/sockets/sockets.ts';
import { nofileLimit } from '../../receiver/agent/rlimit.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { inNetns } from '../../receiver/netns/setns.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { Probe, ProbeContext, ProbeSpec } from '../../receiver/probe/types.ts';

const libc = koffi.load('libc.so.6');
const socketCall = libc.func('int socket(int domain, int type, int protocol)');
const bindCall = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const listenCall = libc.func('int listen(int fd, int backlog)');
const connectCall = libc.func('int connect(int fd, const void *addr, uint32_t len)');
const acceptCall = libc.func('int accept(int fd, void *addr, void *len)');
const writeCall = libc.func('intptr_t write(int fd, const void *buf, size_t n)');

const PREFIX = `pnlb${process.pid}`;
const argv = process.argv.slice(2);
const ehashAt = argv.indexOf('--child-ehash');
const childEhash = ehashAt >= 0 ? Number(argv.splice(ehashAt, 2)[1]) : undefined;
const counts = argv.map(Number);
if (counts.length === 0) counts.push(1, 100, 1000);
const MAX = Math.max(...counts);

function ok(rc: number, what: string): number {
  if (rc < 0) throw new Error(`${what}: errno ${koffi.errno()}`);
  return rc;
}

/** Inside the netns: lo up is done by ip; listener on 127.0.0.1:7000, 2 connections with 3000 unread bytes, UDP. */
function makeSockets(path: string): number[] {
  return inNetns(path, () => {
    const addr = Buffer.alloc(16);
    addr.writeUInt16LE(2, 0);
    addr.writeUInt16BE(7000, 2);
    Buffer.from([127, 0, 0, 1]).copy(addr, 4);
    const fds: number[] = [];
    const l = ok(socketCall(2, 1, 0) as number, 'socket');
    fds.push(l);
    ok(bindCall(l, addr, 16) as number, 'bind');
    ok(listenCall(l, 16) as number, 'listen');
    const data = Buffer.alloc(3000, 1);
    for (let i = 0; i < 2; i++) {
      const c = ok(socketCall(2, 1, 0) as number, 'socket');
      fds.push(c);
      ok(connectCall(c, addr, 16) as number, 'connect');
      fds.push(ok(acceptCall(l, null, null) as number, 'accept'));
      ok(writeCall(c, data, data.length) as number, 'write');
    }
    const u = ok(socketCall(2, 2, 0) as number, 'udp socket');
    addr.writeUInt16BE(7001, 2);
    ok(bindCall(u, addr, 16) as number, 'udp bind');
    fds.push(u);
    return fds;
  });
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${code}`))));
  });
}

async function setup(n: number): Promise<{ entities: Entity[]; fds: number[] }> {
  const batch = `/tmp/${PREFIX}.batch`;
  writeFileSync(batch, `${Array.from({ length: n }, (_, i) => `netns add ${PREFIX}n${i}`).join('\n')}\n`);
  execFileSync('ip', ['-batch', batch]);
  writeFileSync(
    `/tmp/${PREFIX}.link`,
    'link set lo up\nlink add pnl0 type veth peer name pnl1\nlink set pnl0 up\nlink set pnl1 up\n',
  );
  for (let i = 0; i < n; i += 16) {
    const jobs: Promise<void>[] = [];
    for (let j = i; j < Math.min(n, i + 16); j++) {
      jobs.push(run('ip', ['-n', `${PREFIX}n${j}`, '-batch', `/tmp/${PREFIX}.link`]));
    }
    await Promise.all(jobs);
  }
  const entities: Entity[] = [];
  const fds: number[] = [];
  for (let i = 0; i < n; i++) {
    const name = `${PREFIX}n${i}`;
    const netnsPath = `/run/netns/${name}`;
    fds.push(...makeSockets(netnsPath));
    entities.push({
      kind: 'netns',
      netnsInode: statSync(netnsPath).ino,
      netnsPath,
      netnsName: name,
      displayName: name,
    });
  }
  return { entities, fds };
}

function teardown(n: number, fds: number[]): void {
  for (const fd of fds) closeSync(fd);
  writeFileSync(
    `/tmp/${PREFIX}.batch`,
    `${Array.from({ length: n }, (_, i) => `netns del ${PREFIX}n${i}`).join('\n')}\n`,
  );
  try {
    execFileSync('ip', ['-force', '-batch', `/tmp/${PREFIX}.batch`], { stdio: 'ignore' });
  } catch {}
}

interface Sample {
  wallMs: number;
  cpuMs: number;
  userMs: number;
  sysMs: number;
  points: number;
}

async function measure(probes: [string, Probe][], entities: Entity[], reps: number): Promise<Sample> {
  let wall = 0;
  let cpu = 0;
  let user = 0;
  let sys = 0;
  let points = 0;
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    points = 0;
    for (const [, p] of probes) points += (await p.collect(entities)).length;
    wall += performance.now() - t0;
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1000;
    user += c.user / 1000;
    sys += c.system / 1000;
  }
  return { wallMs: wall / reps, cpuMs: cpu / reps, userMs: user / reps, sysMs: sys / reps, points };
}

const ctx = { log: childLogger('bench'), entities: undefined as never, emit() {} } as unknown as ProbeContext;
// biome-ignore lint/suspicious/noExplicitAny: probes of different argument types
const specs: ProbeSpec<any>[] = [socketsProbe, conntrackProbe, qdiscProbe];

// Each netns holds ~8 descriptors here (its fd, 5 sockets, the probes' netlink sockets). Node already
// runs at the hard limit; below the need the run would fail with EMFILE, so say so instead of measuring.
const needFds = MAX * 8 + 1024;
if (nofileLimit().hard < needFds) {
  console.error(
    `RLIMIT_NOFILE hard limit ${nofileLimit().hard} < ${needFds} needed for ${MAX} netns: raise it (prlimit)`,
  );
  process.exit(1);
}
const EHASH_SYSCTL = '/proc/sys/net/ipv4/tcp_child_ehash_entries';
const UHASH_SYSCTL = '/proc/sys/net/ipv4/udp_child_hash_entries';
const ehashBefore = readFileSync(EHASH_SYSCTL, 'utf8').trim();
const uhashBefore = readFileSync(UHASH_SYSCTL, 'utf8').trim();
if (childEhash !== undefined) {
  writeFileSync(EHASH_SYSCTL, String(childEhash));
  writeFileSync(UHASH_SYSCTL, String(Math.max(256, childEhash)));
}
process.on('exit', () => {
  writeFileSync(EHASH_SYSCTL, ehashBefore);
  writeFileSync(UHASH_SYSCTL, uhashBefore);
  rmSync(`/tmp/${PREFIX}.batch`, { force: true });
  rmSync(`/tmp/${PREFIX}.link`, { force: true });
});
const probes: [string, Probe][] = [];
for (const s of specs) probes.push([s.name, await s.create(ctx, s.args.parse({}))]);

const rows: string[] = [];
const failures: string[] = [];
for (const n of counts) {
  const { entities, fds } = await setup(n);
  try {
    await measure(probes, entities, 1); // warm-up (JIT, buffers)
    const reps = n >= 1000 ? 5 : 10;
    const per = [];
    for (const pr of probes) {
      const s = await measure([pr], entities, reps);
      per.push(`${pr[0]} ${s.cpuMs.toFixed(1)}ms`);
    }
    const rss0 = process.memoryUsage().rss;
    const all = await measure(probes, entities, reps);
    const mem = process.memoryUsage();
    const failedCounts = probes.map(
      ([name, p]) => [name, (p.status().details as { failedEntities: number }).failedEntities] as const,
    );
    const failed = failedCounts.map(([name, k]) => `${name}:${k}`);
    // A collection that failed for some netns measured less work than it claims: the run fails.
    if (failedCounts.some(([, k]) => k > 0)) failures.push(`${n} netns: failed entities ${failed.join(' ')}`);
    rows.push(
      `${String(n).padStart(5)} netns | wall ${all.wallMs.toFixed(1)} ms | CPU ${all.cpuMs.toFixed(1)} ms = user ${all.userMs.toFixed(1)} + sys ${all.sysMs.toFixed(1)} (${per.join(', ')}) | points ${all.points} | rss ${(mem.rss / 2 ** 20).toFixed(0)} MiB (Δ ${((mem.rss - rss0) / 2 ** 20).toFixed(1)}) heap ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB | failed ${failed.join(' ')}`,
    );
    console.log(rows.at(-1));
  } finally {
    teardown(n, fds);
  }
}
for (const [, p] of probes) await p.close();
console.log(
  `\nnetlink probes (sockets + conntrack + qdisc), one collection, mean of 5-10, Node ${process.version}`,
);
for (const r of rows) console.log(r);
for (const f of failures) console.error(`FAIL: ${f}`);
if (failures.length > 0) process.exitCode = 1;
