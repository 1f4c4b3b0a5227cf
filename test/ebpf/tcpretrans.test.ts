// tcpretrans against the kernel's own counter: random loss on the veth (nft `numgen random mod 10 == 0
// drop`, this kernel has no netem) during a bulk transfer → retransmitted segments == Tcp RetransSegs
// delta, in each netns; events carry the sender's tuple and state.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { M, type TcpretransArgs, tcpretransProbe } from '../../probes/tcpretrans/tcpretrans.ts';
import { programInfo } from '../../receiver/bpf/stats.ts';
import type { MetricPoint, Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import {
  assertDeclared,
  killChild,
  nstat,
  sideEntity,
  sumPoints,
  tcpFixture,
  testContext,
  waitFor,
} from './env.ts';

let pair: NetnsPair;
const probes: Probe<TcpretransArgs>[] = [];
const children: ChildProcess[] = [];

/**
 * Kernel counters and a probe collection, polled (up to 30 s) until `agree(kernel, points)`: the kernel
 * counts a retransmit in Tcp RetransSegs before transmitting it and the tracepoint fires after the
 * transmit returns, and an orphaned socket may still be retransmitting its last segments or FIN after the
 * client exited, so one read of each can straddle a retransmit. A probe that over- or under-counts never
 * agrees and the caller's assertions report the last values.
 */
async function settled<T>(
  read: () => T,
  collect: () => Promise<readonly MetricPoint[]>,
  agree: (kernel: T, points: readonly MetricPoint[]) => boolean,
): Promise<{ kernel: T; points: readonly MetricPoint[] }> {
  const end = Date.now() + 30_000;
  for (;;) {
    const kernel = read();
    const points = await collect();
    if (agree(kernel, points) || Date.now() > end) return { kernel, points };
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The starting kernel counters and probe collection, read again until no retransmit fell between them
 * (the kernel read after the collection equals the one before): a socket left from the previous test
 * may still be retransmitting, and a burst between the two reads would be in the kernel's delta only.
 */
async function baseline<T>(
  read: () => T,
  collect: () => Promise<readonly MetricPoint[]>,
): Promise<{ kernel: T; points: readonly MetricPoint[] }> {
  for (let i = 0; ; i++) {
    const kernel = read();
    const points = await collect();
    if (JSON.stringify(read()) === JSON.stringify(kernel) || i >= 50) return { kernel, points };
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Recursion misses (kernel skipped a run: the program was already running on that CPU) of this process's rt_* programs. */
function misses(): number {
  let n = 0;
  for (const f of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${f}`) !== 'anon_inode:bpf-prog') continue;
      const info = programInfo(Number(f));
      if (info.name.startsWith('rt_')) n += info.recursionMisses;
    } catch {}
  }
  return n;
}

before(() => {
  removeStaleNetns('pna');
  pair = createNetnsPair({ prefix: 'pna', tag: 'rt' });
});
after(async () => {
  for (const c of children) killChild(c);
  for (const p of probes) await p.close();
  pair?.cleanup();
});

test('10% random loss on the veth: retransmitted segments == Tcp RetransSegs delta per netns', async () => {
  const ctx = testContext([sideEntity(pair.a), sideEntity(pair.b)]);
  const probe = await tcpretransProbe.create(ctx, tcpretransProbe.args.parse({ rateLimit: 0 }));
  probes.push(probe);
  assert.equal(probe.status().state, 'running', probe.status().reason);
  const { a, b } = pair;
  const srv = await tcpFixture(b, ['sink', '7005']);
  children.push(srv.child);
  // loss in both directions of this flow, at ingress of each side
  for (const side of [a, b]) {
    side.exec('nft', [
      'add table inet pnaloss; add chain inet pnaloss in { type filter hook input priority 0; policy accept; }; add rule inet pnaloss in tcp sport 7005 numgen random mod 10 == 0 counter drop; add rule inet pnaloss in tcp dport 7005 numgen random mod 10 == 0 counter drop',
    ]);
  }
  const { kernel: r0, points: p0 } = await baseline(
    () => ({ a: nstat(a.name).get('TcpRetransSegs') ?? 0, b: nstat(b.name).get('TcpRetransSegs') ?? 0 }),
    () => probe.collect([]),
  );
  const { result } = await tcpFixture(a, ['bulk', b.ipv4, '7005', String(3 << 20)], 60000);
  assert.equal(result['sent'], 3 << 20);
  const port = result['port'] as number;
  for (const side of [a, b]) side.exec('nft', ['delete', 'table', 'inet', 'pnaloss']);
  const delta = (p: readonly MetricPoint[], netns: number) =>
    sumPoints(p, M.retransmits, netns) - sumPoints(p0, M.retransmits, netns);
  const { kernel: r1, points: p1 } = await settled(
    () => ({ a: nstat(a.name).get('TcpRetransSegs') ?? 0, b: nstat(b.name).get('TcpRetransSegs') ?? 0 }),
    () => probe.collect([]),
    (k, p) => delta(p, a.inode) === k.a - r0.a && delta(p, b.inode) === k.b - r0.b,
  );
  const kernelA = r1.a - r0.a;
  const kernelB = r1.b - r0.b;
  assert.ok(kernelA > 0, 'the loss caused retransmits');
  const evA = () => ctx.events.filter((e) => e.netns === a.inode);
  // where a mismatch's segments went: the counter's delta in every netns key (0 = unattributed)
  const where = () => {
    const keys = new Set([...p0, ...p1].filter((p) => p.metric === M.retransmits).map((p) => p.netns ?? 0));
    return JSON.stringify(Object.fromEntries([...keys].map((k) => [k, delta(p1, k)]).filter(([, d]) => d)));
  };
  assert.equal(
    delta(p1, a.inode),
    kernelA,
    `client netns (recursion misses ${misses()}, server ${delta(p1, b.inode)}/${kernelB}, by netns ${where()}, a=${a.inode} b=${b.inode})`,
  );
  assert.equal(delta(p1, b.inode), kernelB, `server netns (by netns ${where()})`);
  const segs = () => evA().reduce((s, e) => s + Number(e.attributes['podnet.tcp.retransmit.segments']), 0);
  await waitFor(() => segs() >= kernelA, 30_000);
  assert.equal(segs(), kernelA, 'events (rate limit off) carry every segment');
  for (const e of evA()) {
    assert.equal(e.name, 'podnet.tcp.retransmit');
    assert.equal(e.type, 'TCPRETRANS');
    assert.equal(e.attributes['network.local.address'], a.ipv4);
    assert.equal(e.attributes['network.peer.address'], b.ipv4);
    assert.equal(e.attributes['network.peer.port'], 7005);
    assert.equal(e.attributes['network.local.port'], port);
    assert.equal(e.attributes['network.transport'], 'tcp');
  }
  killChild(srv.child);
  assertDeclared(tcpretransProbe, ctx.events);
  await probe.close();
});

test('retransmits failing at transmit (nft output drop): segments == Tcp RetransSegs, failures counted', async () => {
  const ctx = testContext([sideEntity(pair.a), sideEntity(pair.b)]);
  const probe = await tcpretransProbe.create(ctx, tcpretransProbe.args.parse({ rateLimit: 0 }));
  probes.push(probe);
  const { a, b } = pair;
  const srv = await tcpFixture(b, ['sink', '7006']);
  children.push(srv.child);
  // loss at b's ingress makes a retransmit; a drop at a's output makes some of a's transmits (first
  // sends and retransmits) fail with -EPERM after the kernel counted them
  b.exec('nft', [
    'add table inet pnaloss; add chain inet pnaloss in { type filter hook input priority 0; policy accept; }; add rule inet pnaloss in tcp dport 7006 numgen random mod 10 == 0 counter drop',
  ]);
  a.exec('nft', [
    'add table inet pnaloss; add chain inet pnaloss out { type filter hook output priority 0; policy accept; }; add rule inet pnaloss out tcp dport 7006 numgen random mod 4 == 0 counter drop',
  ]);
  const mib = (ns: string) => {
    const m = nstat(ns);
    return {
      segs: m.get('TcpRetransSegs') ?? 0,
      fail: m.get('TcpExtTCPRetransFail') ?? 0,
      // retransmits skipped before the count because the original is still in a host queue (-EBUSY)
      hostq: m.get('TcpExtTCPSpuriousRtxHostQueues') ?? 0,
    };
  };
  const { kernel: r0, points: p0 } = await baseline(
    () => mib(a.name),
    () => probe.collect([]),
  );
  // Whether a retransmit (not only a first send) meets the 1-in-4 output drop is chance: a transfer with
  // ~20 retransmit attempts has none dropped with probability (3/4)^20 ≈ 0.3 % (seen once in ~70 loaded
  // runs: 21 attempts, all err=0 in the tracepoint, TcpExtTCPRetransFail +0). Another transfer on a new
  // connection until the kernel counted a failed retransmit; the counts below cover all of them.
  for (let i = 0; i < 4; i++) {
    const { result } = await tcpFixture(a, ['bulk', b.ipv4, '7006', String(8 << 20)], 120000);
    assert.equal(result['sent'], 8 << 20);
    if (mib(a.name).fail > r0.fail) break;
  }
  for (const side of [a, b]) side.exec('nft', ['delete', 'table', 'inet', 'pnaloss']);
  killChild(srv.child);
  const { kernel: r1, points: p1 } = await settled(
    () => mib(a.name),
    () => probe.collect([]),
    (k, p) =>
      sumPoints(p, M.retransmits, a.inode) - sumPoints(p0, M.retransmits, a.inode) === k.segs - r0.segs,
  );
  const d = (metric: string) => sumPoints(p1, metric, a.inode) - sumPoints(p0, metric, a.inode);
  // where a mismatch's segments went (seen at 1097 vs 1135 in CI, 459 vs 610 here: podnet short, no
  // recursion miss, nothing in netns 0, the kernel steady for the 30 s; the cause was firings of the
  // tracepoint the program was not run for, now counted at the socket's next retransmit: see
  // docs/probes-ebpf.md): the events so far by error
  const errSegs = () => {
    const m: Record<string, number> = {};
    for (const e of ctx.events) {
      if (e.netns !== a.inode) continue;
      const k = String(e.attributes['error.type'] ?? 'none');
      m[k] = (m[k] ?? 0) + Number(e.attributes['podnet.tcp.retransmit.segments']);
    }
    return m;
  };
  assert.ok(r1.segs - r0.segs > 0, 'the loss caused retransmits');
  assert.equal(
    d(M.retransmits),
    r1.segs - r0.segs,
    `retransmitted segments == Tcp RetransSegs delta (TCPRetransFail +${r1.fail - r0.fail}, failed attempts ${d(M.failed)}, recursion misses ${misses()}, unattributed netns 0 +${sumPoints(p1, M.retransmits, 0) - sumPoints(p0, M.retransmits, 0)}, TCPSpuriousRtxHostQueues +${r1.hostq - r0.hostq}, event segments by error ${JSON.stringify(errSegs())})`,
  );
  assert.ok(r1.fail > r0.fail, 'some retransmits failed at transmit (TcpExtTCPRetransFail grew)');
  assert.ok(d(M.failed) >= 1, 'failed attempts counted');
  const segs = () =>
    ctx.events
      .filter((e) => e.netns === a.inode)
      .reduce((s, e) => s + Number(e.attributes['podnet.tcp.retransmit.segments']), 0);
  await waitFor(() => segs() >= r1.segs - r0.segs, 30000);
  assert.equal(segs(), r1.segs - r0.segs, 'events carry the counted segments only');
  assertDeclared(tcpretransProbe, ctx.events);
  await probe.close();
});
