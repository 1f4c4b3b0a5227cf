// kernellatency with real traffic between two test netns: TCP both ways (rx in the receiver's netns, tx in
// the sender's), UDP receive; stack times on an idle veth are microseconds. Events are checked with a
// 1 µs threshold (every packet is "slow"), since a 10 ms stack delay cannot be provoked on this kernel.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  EVENT,
  type KernelLatencyArgs,
  kernellatencyProbe,
  M,
} from '../../probes/kernellatency/kernellatency.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import {
  App,
  countAtLeast,
  countAtMost,
  histDelta,
  histPoint,
  sideEntity,
  sleep,
  type TestContext,
  tcpPair,
  testContext,
  waitFor,
} from './env.ts';

let pair: NetnsPair;
const apps: App[] = [];
const probes: Probe<KernelLatencyArgs>[] = [];

before(() => {
  removeStaleNetns('pnt');
  pair = createNetnsPair({ prefix: 'pnt', tag: 'kl' });
});
after(async () => {
  for (const a of apps) a.kill();
  for (const p of probes) await p.close();
  pair?.cleanup();
});

async function start(
  args: Partial<KernelLatencyArgs> = {},
): Promise<{ probe: Probe<KernelLatencyArgs>; ctx: TestContext }> {
  const ctx = testContext([sideEntity(pair.a), sideEntity(pair.b)]);
  const probe = await kernellatencyProbe.create(ctx, kernellatencyProbe.args.parse(args));
  probes.push(probe);
  assert.equal(probe.status().state, 'running', probe.status().reason);
  return { probe, ctx };
}

const tcp = { 'network.transport': 'tcp' };
const udp = { 'network.transport': 'udp' };

for (const [attach, port] of [
  ['auto', 7201],
  ['raw_tp', 7204],
] as const) {
  test(`TCP (attach ${attach}): rx stack time in the receiver netns, tx stack time in the sender netns, microseconds on a veth`, async () => {
    const { probe } = await start({ attach });
    const sections = ((probe.status().details?.['programs'] ?? []) as { section: string; state: string }[])
      .filter((p) => p.state === 'attached')
      .map((p) => p.section.split('/')[0]);
    assert.equal(sections.length, 4);
    assert.ok(
      sections.every((s) => s === (attach === 'raw_tp' ? 'raw_tp' : 'tp_btf')),
      sections.join(','),
    );
    const { server, client } = await tcpPair(pair, apps, port);
    const p0 = await probe.collect([]);
    await client.cmd('every 2 1000 200', /^done/, 20000);
    await server.waitLine(/^read 200000$/, 5000, 0);
    await sleep(50);
    const p1 = await probe.collect([]);
    const rx = histDelta(histPoint(p1, M.rx, pair.b.inode, tcp), histPoint(p0, M.rx, pair.b.inode, tcp));
    assert.ok(rx.count >= 100, `rx packets measured in b: ${rx.count}`);
    assert.ok(countAtMost(rx, 0.001) >= 0.95 * rx.count, `${rx.counts}`);
    assert.equal(countAtLeast(rx, 0.1), 0, 'no stale start matched');
    const tx = histDelta(histPoint(p1, M.tx, pair.a.inode, tcp), histPoint(p0, M.tx, pair.a.inode, tcp));
    assert.ok(tx.count >= 200, `tx segments measured in a: ${tx.count}`);
    assert.ok(countAtMost(tx, 0.001) >= 0.95 * tx.count, `${tx.counts}`);
    assert.ok(tx.sum / tx.count < 0.001);
    // the receiver's ACKs are TCP segments sent from b
    const ackTx = histPoint(p1, M.tx, pair.b.inode, tcp);
    assert.ok(ackTx && ackTx.count > 0, 'ACKs from b measured on transmit');
    client.kill();
    server.kill();
  });
}

test('UDP receive is measured; UDP transmit has no departure time and is not', async () => {
  const { probe } = await start();
  const u = new App(pair.b, ['udp', '7202']);
  apps.push(u);
  await u.waitLine(/^ready/);
  const p0 = await probe.collect([]);
  for (let i = 0; i < 100; i++) pair.a.sendUdp(pair.b.ipv4, 7202, 1, 100);
  await u.waitLine(/^udp 100$/, 5000, 0);
  const p1 = await probe.collect([]);
  const rx = histDelta(histPoint(p1, M.rx, pair.b.inode, udp), histPoint(p0, M.rx, pair.b.inode, udp));
  // Exactly one rx time per datagram: a veth without XDP or GRO hands each packet to the backlog and
  // process_backlog() runs it alone from netif_receive_skb to the socket's sk_data_ready (which 6.18 calls
  // for every UDP enqueue, also onto a non-empty queue), so the per-CPU slot is never overwritten in
  // between. The probe's documented misses (list/GRO receive, TCP backlog) do not occur on this path;
  // 20 runs, 8 of them beside two busy loops, all measured 100.
  assert.equal(rx.count, 100, `udp rx measured: ${rx.count}`);
  assert.equal(histPoint(p1, M.tx, pair.a.inode, udp), undefined);
  u.kill();
});

test('slow events: tuple, direction, size, interface (1 µs threshold)', async () => {
  const { probe, ctx } = await start({
    slowThresholdMs: 0.001,
    counterThresholdsMs: [0.001, 100],
    rateLimit: 0,
  });
  const { server, client } = await tcpPair(pair, apps, 7203);
  await client.cmd('every 5 500 20', /^done/, 10000);
  await server.waitLine(/^read 10000$/, 5000, 0);
  const port = (e: (typeof ctx.events)[number]) =>
    e.attributes['destination.port'] === 7203 || e.attributes['source.port'] === 7203;
  const txPayload = () =>
    ctx.events
      .filter((e) => e.name === EVENT && e.type === 'TXKERNEL_SLOW' && e.netns === pair.a.inode && port(e))
      .map((e) => e.attributes['podnet.packet.size'] as number)
      .filter((n) => n > 500)
      .reduce((s, n) => s + n - 66, 0);
  assert.ok(await waitFor(() => txPayload() >= 20 * 500), `tx payload seen ${txPayload()}`);
  // (the handshake's last ACK wakes the listener: that event has no peer; keep the connection's)
  const rx = ctx.events.filter(
    (e) =>
      e.type === 'RXKERNEL_SLOW' && e.netns === pair.b.inode && port(e) && e.attributes['source.port'] !== 0,
  );
  const tx = ctx.events.filter((e) => e.type === 'TXKERNEL_SLOW' && e.netns === pair.a.inode && port(e));
  assert.ok(rx.length >= 1 && tx.length >= 1, `rx ${rx.length} tx ${tx.length}`);
  for (const e of rx) {
    assert.equal(e.attributes['network.io.direction'], 'receive');
    assert.equal(e.attributes['source.address'], pair.a.ipv4);
    assert.equal(e.attributes['destination.address'], pair.b.ipv4);
    assert.equal(e.attributes['destination.port'], 7203);
    assert.equal(e.attributes['podnet.interface.index'], pair.b.ifindex);
  }
  // segments carrying the 20 writes of 500 bytes (TCP may coalesce writes under load): Ethernet 14 +
  // IPv4 20 + TCP with timestamps 32 = 66 bytes of headers
  const data = tx.filter((e) => (e.attributes['podnet.packet.size'] as number) > 500);
  const payload = data.reduce((s, e) => s + (e.attributes['podnet.packet.size'] as number) - 66, 0);
  assert.ok(
    data.length >= 1 && payload >= 20 * 500,
    `${data.length} data segments, ${payload} payload bytes`,
  );
  for (const e of data) {
    assert.equal(e.attributes['network.io.direction'], 'transmit');
    assert.equal(e.attributes['source.address'], pair.a.ipv4);
    assert.equal(e.attributes['destination.address'], pair.b.ipv4);
    assert.equal(e.attributes['destination.port'], 7203);
    assert.equal(e.attributes['podnet.interface.index'], pair.a.ifindex);
    assert.ok((e.attributes['podnet.latency.duration'] as number) > 1e-6);
  }
  const p = await probe.collect([]);
  assert.ok(
    p.some(
      (x) =>
        x.metric === M.txSlow &&
        x.netns === pair.a.inode &&
        x.attributes?.['podnet.latency.threshold'] === '0.001ms' &&
        (x.value as number) >= data.length,
    ),
    'counter over the first threshold',
  );
  client.kill();
  server.kill();
});

for (const [attach, port] of [
  ['auto', 7205],
  ['raw_tp', 7206],
] as const) {
  test(`UDP receive through a bridge (attach ${attach}): one rx time per datagram (the bridge port's entry is not timed, the bridge's is)`, async () => {
    // b's veth becomes the port of a bridge inside b, its address moves onto the bridge: a datagram enters
    // the stack twice (the port, whose rx_handler hands it to the bridge, then the bridge device) in one
    // softirq. kernellatency.bpf.c clears the start on the bridge port instead of timing it; the entry on
    // the bridge is timed. Reverted at the end (later tests use the plain veth).
    const br = `pnbr${process.pid % 100000}`;
    const b = pair.b;
    const ip = (...args: string[]) => b.exec('ip', args);
    ip('link', 'add', br, 'address', b.mac, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    try {
      ip('addr', 'flush', 'dev', b.ifname);
      ip('link', 'set', b.ifname, 'master', br);
      ip('addr', 'add', `${b.ipv4}/24`, 'dev', br);
      ip('link', 'set', br, 'up');
      assert.ok(
        await waitFor(() => /forwarding/.test(ip('-d', 'link', 'show', b.ifname))),
        'bridge port forwarding',
      );
      const brRx = () =>
        (JSON.parse(ip('-j', '-s', 'link', 'show', br)) as { stats64: { rx: { packets: number } } }[])[0]
          ?.stats64.rx.packets ?? 0;
      const { probe } = await start({ attach });
      const u = new App(b, ['udp', String(port)]);
      apps.push(u);
      await u.waitLine(/^ready/);
      const rx0 = brRx();
      const p0 = await probe.collect([]);
      for (let i = 0; i < 100; i++) pair.a.sendUdp(b.ipv4, port, 1, 100);
      await u.waitLine(/^udp 100$/, 5000, 0);
      const p1 = await probe.collect([]);
      // the kernel's own count: the datagrams were received by the bridge device (after its port)
      assert.ok(brRx() - rx0 >= 100, `bridge rx packets ${brRx() - rx0}`);
      const rx = histDelta(histPoint(p1, M.rx, b.inode, udp), histPoint(p0, M.rx, b.inode, udp));
      assert.equal(rx.count, 100, `udp rx measured through the bridge: ${rx.count}`);
      assert.ok(countAtMost(rx, 0.001) >= 95, `${rx.counts}`);
      u.kill();
    } finally {
      ip('link', 'del', br);
      ip('addr', 'add', `${b.ipv4}/24`, 'dev', b.ifname);
      ip('addr', 'add', `${b.ipv6}/64`, 'dev', b.ifname, 'nodad');
      ip('link', 'set', b.ifname, 'up');
    }
  });
}
