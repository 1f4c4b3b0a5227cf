// sockets probe against `ss` read in the same netns: real TCP/UDP traffic between two test netns over a
// veth pair (tbf on the client side makes drops and retransmits). Read probe, ss, probe again; when both
// probe reads agree the netns was quiet across the ss read, and the values must equal ss exactly.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { M, socketsProbe, summarize } from '../../probes/sockets/sockets.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { NETLINK_SOCK_DIAG, withNetlinkSocket } from '../../receiver/netlink/socket.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { HistogramValue, Probe, ProbeContext } from '../../receiver/probe/types.ts';
import { sh, sleep, TestNetwork } from './env.ts';
import { nsRun, rttStep, socketValues, ssTruth } from './truth.ts';

const net = new TestNetwork('s');
let A = '';
let B = '';
let probe: Probe;
const ctx = {
  log: childLogger('test'),
  entities: undefined as never,
  emit() {},
} as unknown as ProbeContext;

/** Probe values with the RTT histogram replaced by what the latest collection added to it. */
async function collectStep(
  e: Entity,
  prev: HistogramValue | undefined,
): Promise<[Map<string, unknown>, HistogramValue]> {
  const m = socketValues(await probe.collect([e]), e.netnsInode);
  const cum = m.get(M.rtt) as HistogramValue;
  m.set(M.rtt, rttStep(prev, cum));
  return [m, cum];
}

/**
 * Probe, ss, probe until the two probe reads agree; returns [probe values, ss values]. The RTT histogram
 * is cumulative (each collection adds the live connections), so its per-collection step is compared.
 */
async function quiescentRead(e: Entity, ns: string): Promise<[Map<string, unknown>, Map<string, unknown>]> {
  let [, cum] = await collectStep(e, undefined);
  // Generous (other tests load the machine): retry for up to 30 s.
  for (const end = Date.now() + 30_000; Date.now() < end; ) {
    const [p1, c1] = await collectStep(e, cum);
    const ss = ssTruth(nsRun(ns));
    const [p2, c2] = await collectStep(e, c1);
    cum = c2;
    if (JSON.stringify([...p1]) === JSON.stringify([...p2])) return [p1, ss];
    await sleep(250);
  }
  throw new Error(`netns ${ns} never quiesced`);
}

before(async () => {
  A = net.addNetns('a');
  B = net.addNetns('b');
  net.link(A, B, 1);
  // Client side egress shaped with a small queue limit: bursts are dropped → TCP retransmits.
  sh('tc', [
    '-n',
    B,
    'qdisc',
    'add',
    'dev',
    'pnlb',
    'root',
    'tbf',
    'rate',
    '20mbit',
    'burst',
    '6kb',
    'limit',
    '8kb',
  ]);
  await net.run(A, ['server', '8080']);
  await net.run(A, ['sink', '9090', '4']);
  await net.run(B, ['client', '10.200.1.1', '8080', '5', '400000']);
  await net.run(B, ['client', 'fd00:1::1', '8080', '3', '1500']);
  await net.run(B, ['client', '10.200.1.1', '9090', '5', '100']);
  // Datagrams over lo inside A (the shaped veth would drop most of them before they arrive).
  await net.run(A, ['udp', '127.0.0.1', '9090', '400', '1000']);
  probe = await socketsProbe.create(ctx, socketsProbe.args.parse({}));
});

after(async () => {
  await probe?.close();
  net.cleanup();
});

test('sockets: availability on this kernel', async () => {
  assert.deepEqual(await socketsProbe.availability(), { available: true });
});

test('sockets: server netns equals ss -tanmi / -uanm (states, queues, skmem, listen queue, RTT, UDP)', async () => {
  const e = net.entity(A);
  const [got, want] = await quiescentRead(e, A);
  assert.deepEqual(got, want);
  // The scenario is not trivial: these would be 0 in an idle netns.
  assert.equal(got.get(`${M.connections}|listen`), 2); // dual-stack server + stuck listener
  assert.equal(got.get(`${M.connections}|established`), 13); // 5 + 3 accepted, 5 in the accept queue
  assert.ok((got.get(M.rxQueue) as number) > 100_000, 'unread bytes in receive queues');
  assert.equal(got.get(M.listenQueue), 5);
  assert.equal(got.get(M.listenFillMax), 5 / 4);
  assert.equal(got.get(M.listenAtRisk), 1);
  assert.equal(got.get(M.udpCount), 2); // the never-reading sink and the sender
  assert.ok((got.get(M.udpRx) as number) > 0);
  assert.ok((got.get(M.udpDrops) as number) > 0, 'UDP receive buffer overflowed');
  assert.equal((got.get(M.rtt) as HistogramValue).count, 13);
});

test('sockets: client netns equals ss (send queues, retransmits over the shaped link)', async () => {
  const e = net.entity(B);
  const [got, want] = await quiescentRead(e, B);
  assert.deepEqual(got, want);
  assert.equal(got.get(`${M.connections}|established`), 13);
  assert.ok((got.get(M.txQueue) as number) > 100_000, 'unsent/unacked bytes in send queues');
  assert.ok((got.get(M.mem('wmem_queued')) as number) > 100_000);
  assert.ok((got.get(M.retrans) as number) > 0, 'tbf drops caused retransmits');
  assert.equal(got.get(M.udpCount), 0);
});

test('sockets: the one-walk v1 TCP dump and the per-family v2 dumps give the same summary', async () => {
  const e = net.entity(A);
  const args = socketsProbe.args.parse({});
  // Generous (other tests load the machine): retry for up to 30 s.
  for (const end = Date.now() + 30_000; Date.now() < end; ) {
    const [v1a, v2, v1b] = withNetlinkSocket(e.netnsPath, NETLINK_SOCK_DIAG, (sock) => [
      summarize(sock, { ...args, tcpAllFamiliesRequest: true }),
      summarize(sock, { ...args, tcpAllFamiliesRequest: false }),
      summarize(sock, { ...args, tcpAllFamiliesRequest: true }),
    ]);
    const j = (x: unknown) => JSON.stringify(x, (_k, v) => (v instanceof Map ? [...v] : v));
    if (j(v1a) !== j(v1b)) {
      await sleep(200);
      continue;
    }
    assert.equal(j(v2), j(v1a));
    assert.ok(v1a!.states.get('established')! > 0);
    return;
  }
  assert.fail('never quiesced');
});

test('sockets: the RTT histogram is cumulative per netns (one observation per live connection per collection)', async () => {
  const args = socketsProbe.args.parse({});
  const p = await socketsProbe.create(ctx, args);
  try {
    const e = net.entity(A);
    const rtt = async (entities: Entity[] = [e]) =>
      (await p.collect(entities)).find((x) => x.metric === M.rtt && x.netns === e.netnsInode)?.value as
        | HistogramValue
        | undefined;
    const h1 = (await rtt())!;
    assert.ok(h1.count >= 13, `first collection: one observation per connection (${h1.count})`);
    const h2 = (await rtt())!;
    const h3 = (await rtt())!;
    for (const [a, b] of [
      [h1, h2],
      [h2, h3],
    ] as const) {
      assert.ok(b.count > a.count, 'every collection adds observations');
      assert.ok(b.sum > a.sum);
      for (const [i, c] of b.counts.entries()) assert.ok(c >= a.counts[i]!, `bucket ${i} never decreases`);
      assert.equal(
        b.counts.reduce((x, y) => x + y, 0),
        b.count,
      );
    }
    // Same bucket bounds (a reconfigure that parses the same config): the series goes on.
    p.reconfigure?.(socketsProbe.args.parse({}));
    const h4 = (await rtt())!;
    assert.ok(h4.count > h3.count);
    // Other bounds: the series restarts.
    p.reconfigure?.(socketsProbe.args.parse({ rttBoundaries: [0.001, 1] }));
    const h5 = (await rtt())!;
    assert.deepEqual(h5.boundaries, [0.001, 1]);
    assert.ok(h5.count < h4.count && h5.count >= 13);
    // The netns stops being watched, then comes back: a new series.
    assert.equal(await rtt([]), undefined);
    const h6 = (await rtt())!;
    assert.ok(h6.count < h5.count + 13, `restarted after the netns left (${h6.count} vs ${h5.count})`);
    assert.ok(h6.count >= 13);
  } finally {
    await p.close();
  }
});
