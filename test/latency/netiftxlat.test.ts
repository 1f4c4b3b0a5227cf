// netiftxlat with a real queue: a tbf qdisc at 1 mbit on the veth of netns a; a UDP burst builds a
// backlog whose waits follow from the token bucket. The other side (noqueue veth) shows the direct path.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EVENT, M, type NetifTxLatArgs, netiftxlatProbe } from '../../probes/netiftxlat/netiftxlat.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import {
  countAtLeast,
  countAtMost,
  counterPoint,
  histDelta,
  histPoint,
  sideEntity,
  sleep,
  type TestContext,
  testContext,
  waitFor,
} from './env.ts';

let pair: NetnsPair;
let probe: Probe<NetifTxLatArgs>;
let ctx: TestContext;

before(async () => {
  removeStaleNetns('pnt');
  pair = createNetnsPair({ prefix: 'pnt', tag: 'nt' });
  ctx = testContext([sideEntity(pair.a), sideEntity(pair.b)]);
  probe = await netiftxlatProbe.create(ctx, netiftxlatProbe.args.parse({ rateLimit: 0 }));
  assert.equal(probe.status().state, 'running', probe.status().reason);
});
after(async () => {
  await probe?.close();
  pair?.cleanup();
});

const RATE = 125_000; // 1 mbit/s in bytes/s
const BURST = 1600;

test('tbf 1 mbit on a veth: qdisc waits follow the token bucket, slow events over 100 ms', async () => {
  const a = pair.a;
  a.exec('tc', [
    'qdisc',
    'add',
    'dev',
    a.ifname,
    'root',
    'tbf',
    'rate',
    '1mbit',
    'burst',
    String(BURST),
    'latency',
    '2s',
  ]);
  const n = 40;
  const payload = 1000;
  const wire = payload + 8 + 20 + 14; // qdisc_pkt_len: UDP + IPv4 + Ethernet headers
  // packet i leaves once the bucket (full at BURST) has earned (i+1)*wire − BURST bytes
  const expected = Array.from({ length: n }, (_, i) => Math.max(0, ((i + 1) * wire - BURST) / RATE));
  const expectedSum = expected.reduce((s, x) => s + x, 0);
  const expectedMax = expected[n - 1]!;
  const p0 = await probe.collect([]);
  a.sendUdp(pair.b.ipv4, 9, n, payload);
  await sleep(expectedMax * 1000 + 300);
  // On a loaded machine the tbf watchdog's NET_TX softirq may run late: wait (up to 30 s) until the
  // qdisc has released the whole burst before reading the histograms.
  let p1 = await probe.collect([]);
  for (let t = Date.now(); Date.now() - t < 30_000; p1 = await probe.collect([])) {
    const sent = /Sent \d+ bytes (\d+) pkt/.exec(a.exec('tc', ['-s', 'qdisc', 'show', 'dev', a.ifname]));
    const got = histDelta(histPoint(p1, M.qdiscWait, a.inode), histPoint(p0, M.qdiscWait, a.inode)).count;
    if (got >= n && sent && Number(sent[1]) >= n) break;
    await sleep(200);
  }
  const h = histDelta(histPoint(p1, M.qdiscWait, a.inode), histPoint(p0, M.qdiscWait, a.inode));
  assert.ok(h.count >= n && h.count <= n + 4, `qdisc waits counted: ${h.count} (sent ${n})`);
  assert.ok(
    h.sum >= 0.9 * expectedSum,
    `sum ${h.sum.toFixed(3)} s >= 0.9 × expected ${expectedSum.toFixed(3)} s`,
  );
  assert.ok(h.sum <= 2 * expectedSum, `sum ${h.sum.toFixed(3)} s <= 2 × expected`);
  // the longest wait (~ expectedMax) lies in the bucket whose upper bound is the next power of two
  const maxBucketLower = 2 ** Math.floor(Math.log2(expectedMax * 0.9 * 1e9)) / 1e9;
  assert.ok(countAtLeast(h, maxBucketLower) >= 1, `a wait >= ${maxBucketLower} s: ${h.counts}`);
  const over100 = expected.filter((x) => x > 0.1).length;
  const c = (p: typeof p0, th: string) =>
    counterPoint(p, M.qdiscSlow, a.inode, { 'podnet.latency.threshold': th });
  const slow = c(p1, '100ms') - c(p0, '100ms');
  assert.ok(
    slow >= over100 - 1 && slow <= over100 + 4,
    `qdisc waits > 100 ms: ${slow}, token bucket says ${over100}`,
  );
  assert.ok(
    await waitFor(
      () =>
        ctx.events.filter((e) => e.name === EVENT && e.type === 'NETIFTXLAT_QDISC' && e.netns === a.inode)
          .length >= slow,
    ),
  );
  const all = ctx.events.filter((e) => e.name === EVENT && e.netns === a.inode);
  assert.equal(all.length, slow, 'one event per slow packet (no rate limit)');
  // the interface may also send an IPv6 multicast listener report queued behind the burst
  const evs = all.filter((e) => e.attributes['destination.port'] === 9);
  assert.ok(evs.length >= over100 - 1 && evs.length <= over100 + 1, `${evs.length} events of the burst`);
  for (const e of evs) {
    assert.equal(e.type, 'NETIFTXLAT_QDISC');
    assert.equal(e.attributes['destination.address'], pair.b.ipv4);
    assert.equal(e.attributes['source.address'], a.ipv4);
    assert.equal(e.attributes['destination.port'], 9);
    assert.equal(e.attributes['network.transport'], 'udp');
    assert.equal(e.attributes['podnet.interface.index'], a.ifindex);
    assert.equal(e.attributes['podnet.packet.size'], wire);
    assert.ok((e.attributes['podnet.latency.duration'] as number) > 0.1);
  }
  // driver time of a veth is short
  const d = histDelta(histPoint(p1, M.driverTime, a.inode), histPoint(p0, M.driverTime, a.inode));
  assert.ok(d.count >= n, `driver times ${d.count}`);
  assert.ok(d.sum / d.count < 0.001, `mean veth xmit ${(d.sum / d.count) * 1e6} µs`);
  a.exec('tc', ['qdisc', 'del', 'dev', a.ifname, 'root']);
});

test('noqueue veth: the queue-to-driver path is near zero, every packet measured', async () => {
  const b = pair.b;
  assert.match(b.exec('tc', ['qdisc', 'show', 'dev', b.ifname]), /noqueue/);
  const n = 300;
  const p0 = await probe.collect([]);
  b.sendUdp(pair.a.ipv4, 9, n, 200);
  await sleep(50);
  const p1 = await probe.collect([]);
  const q = histDelta(histPoint(p1, M.qdiscWait, b.inode), histPoint(p0, M.qdiscWait, b.inode));
  assert.ok(q.count >= n && q.count <= n + 5, `qdisc waits ${q.count}`);
  assert.ok(countAtMost(q, 0.001) >= 0.99 * q.count, `${q.counts}`);
  const d = histDelta(histPoint(p1, M.driverTime, b.inode), histPoint(p0, M.driverTime, b.inode));
  assert.ok(d.count >= n, `driver times ${d.count}`);
  assert.equal(ctx.events.filter((e) => e.netns === b.inode).length, 0);
});

test('attach: raw_tp twins measure the same paths', async () => {
  const rctx = testContext([sideEntity(pair.a), sideEntity(pair.b)]);
  const raw = await netiftxlatProbe.create(rctx, netiftxlatProbe.args.parse({ attach: 'raw_tp' }));
  try {
    const progs = (raw.status().details?.['programs'] ?? []) as { section: string; state: string }[];
    const attached = progs.filter((p) => p.state === 'attached').map((p) => p.section);
    assert.deepEqual(attached.sort(), [
      'raw_tp/net_dev_start_xmit',
      'raw_tp/net_dev_xmit',
      'raw_tp/qdisc_enqueue',
    ]);
    const b = pair.b;
    const n = 200;
    const p0 = await raw.collect([]);
    b.sendUdp(pair.a.ipv4, 9, n, 200);
    await sleep(50);
    const p1 = await raw.collect([]);
    const q = histDelta(histPoint(p1, M.qdiscWait, b.inode), histPoint(p0, M.qdiscWait, b.inode));
    assert.ok(q.count >= n && q.count <= n + 5, `qdisc waits ${q.count}`);
    const d = histDelta(histPoint(p1, M.driverTime, b.inode), histPoint(p0, M.driverTime, b.inode));
    assert.ok(d.count >= n, `driver times ${d.count}`);
  } finally {
    await raw.close();
  }
});
