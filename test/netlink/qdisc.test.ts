// qdisc probe against `tc -s -j qdisc show` read in the same netns: htb with a tbf child and an ingress
// qdisc on one veth, pfifo_fast and a very slow tbf on a second pair; UDP/TCP traffic makes bytes, drops,
// overlimits, and a standing backlog in the slow tbf.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { qdiscProbe } from '../../probes/qdisc/qdisc.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { Probe, ProbeContext } from '../../receiver/probe/types.ts';
import { sh, sleep, TestNetwork } from './env.ts';
import { nsRun, qdiscKey, qdiscTruth, qdiscValues, sortedRows } from './truth.ts';

const net = new TestNetwork('q');
let A = '';
let B = '';
let probe: Probe;
const ctx = { log: childLogger('test'), entities: undefined as never, emit() {} } as unknown as ProbeContext;

async function quiescentRead(e: Entity, ns: string): Promise<[Map<string, number[]>, Map<string, number[]>]> {
  // Generous (other tests load the machine): retry for up to 30 s.
  for (const end = Date.now() + 30_000; Date.now() < end; ) {
    const p1 = qdiscValues(await probe.collect([e]), e.netnsInode);
    const gt = qdiscTruth(nsRun(ns));
    const p2 = qdiscValues(await probe.collect([e]), e.netnsInode);
    if (JSON.stringify(sortedRows(p1)) === JSON.stringify(sortedRows(p2))) return [p1, gt];
    await sleep(100);
  }
  throw new Error(`qdiscs in ${ns} never quiesced`);
}

before(async () => {
  A = net.addNetns('a');
  B = net.addNetns('b');
  net.link(A, B, 3);
  net.link(A, B, 4, 'pnlc', 'pnld');
  const tc = (ns: string, args: string) => sh('tc', ['-n', ns, ...args.split(' ')]);
  tc(B, 'qdisc add dev pnlb root handle 1: htb default 10');
  tc(B, 'class add dev pnlb parent 1: classid 1:10 htb rate 20mbit');
  tc(B, 'qdisc add dev pnlb parent 1:10 handle 10: tbf rate 2mbit burst 4kb limit 12kb');
  tc(B, 'qdisc add dev pnlb ingress');
  // 8 kbit/s: one 1000-byte datagram leaves per second, the rest stands in the queue.
  tc(B, 'qdisc add dev pnld root handle 2: tbf rate 8kbit burst 1600 limit 40000');
  tc(A, 'qdisc add dev pnlc root pfifo_fast');
  await net.run(A, ['server', '8080']);
  await net.run(A, ['sink', '9090', '8']);
  await net.run(B, ['udp', '10.200.3.1', '9090', '300', '1000']);
  await net.run(B, ['client', '10.200.3.1', '8080', '2', '50000']);
  await net.run(B, ['udp', '10.200.4.1', '9090', '20', '1000']);
  probe = await qdiscProbe.create(ctx, qdiscProbe.args.parse({}));
});

after(async () => {
  await probe?.close();
  net.cleanup();
});

test('qdisc: availability on this kernel', async () => {
  assert.deepEqual(await qdiscProbe.availability(), { available: true });
});

test('qdisc: client netns equals tc -s qdisc (htb+tbf child, ingress, slow tbf with backlog)', async () => {
  // The 2 x 50 kB TCP exchange crosses the 2 mbit tbf child; on a loaded machine its tail can still be in
  // retransmission backoff when the counters first look quiet. Wait (by tc's own numbers) until it is through.
  const shaped = qdiscKey('pnlb', 'tbf', '10:', '1:10');
  for (const end = Date.now() + 30_000; Date.now() < end; await sleep(200))
    if ((qdiscTruth(nsRun(B)).get(shaped)?.[0] ?? 0) > 100_000) break;
  const [got, want] = await quiescentRead(net.entity(B), B);
  assert.deepEqual(sortedRows(got), sortedRows(want));
  const tbf = got.get(shaped)!;
  assert.ok(tbf[0]! > 100_000, 'bytes through the shaped child');
  assert.ok(tbf[2]! > 0, 'tbf dropped the UDP burst');
  assert.ok(tbf[3]! > 0, 'tbf overlimits');
  assert.ok(got.get(qdiscKey('pnlb', 'htb', '1:', 'root'))![1]! >= tbf[1]!, 'htb root counts its child');
  assert.ok(got.has(qdiscKey('pnlb', 'ingress', 'ffff:', 'ffff:fff1')));
  const slow = got.get(qdiscKey('pnld', 'tbf', '2:', 'root'))!;
  assert.ok(
    slow[5]! > 0 && slow[6]! > 0,
    `standing queue in the slow tbf: qlen ${slow[5]} backlog ${slow[6]}`,
  );
});

test('qdisc: server netns equals tc -s qdisc (noqueue veth, pfifo_fast), lo excluded', async () => {
  const [got, want] = await quiescentRead(net.entity(A), A);
  assert.deepEqual(sortedRows(got), sortedRows(want));
  assert.ok(got.has(qdiscKey('pnla', 'noqueue', '0:', 'root')));
  assert.ok([...got.keys()].some((k) => k.startsWith('pnlc|pfifo_fast|')));
  assert.ok(![...got.keys()].some((k) => k.startsWith('lo|')));
});
