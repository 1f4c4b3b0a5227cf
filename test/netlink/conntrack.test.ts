// conntrack probe against `conntrack -S` / `conntrack -C` read in the same netns. Conntrack runs in the
// server netns because an nft rule with `ct state` is loaded there; the client netns has none.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { conntrackProbe, ENTRIES, LIMIT, metricName } from '../../probes/conntrack/conntrack.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { hostNetnsInode } from '../../receiver/netns/setns.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { Probe, ProbeContext } from '../../receiver/probe/types.ts';
import { sh, sleep, TestNetwork } from './env.ts';
import { conntrackTruth, conntrackValues, hostRun, nsRun } from './truth.ts';

const net = new TestNetwork('c');
let A = '';
let B = '';
let probe: Probe;
const BAD = 7;
const ctx = { log: childLogger('test'), entities: undefined as never, emit() {} } as unknown as ProbeContext;
const hostEntity: Entity = {
  kind: 'host',
  netnsInode: hostNetnsInode,
  netnsPath: '/proc/self/ns/net',
  displayName: 'host',
};

async function quiescentRead(
  e: Entity,
  ns: string | null,
): Promise<[Map<string, number>, Map<string, number>]> {
  // Generous (other tests load the machine): retry for up to 30 s.
  for (const end = Date.now() + 30_000; Date.now() < end; ) {
    const p1 = conntrackValues(await probe.collect([e]), e.netnsInode);
    const gt = conntrackTruth(ns === null ? hostRun : nsRun(ns));
    const p2 = conntrackValues(await probe.collect([e]), e.netnsInode);
    if (JSON.stringify([...p1]) === JSON.stringify([...p2])) return [p1, gt];
    await sleep(200);
  }
  throw new Error(`conntrack in ${ns ?? 'host'} never quiesced`);
}

before(async () => {
  A = net.addNetns('a');
  B = net.addNetns('b');
  net.link(A, B, 2);
  sh('ip', [
    'netns',
    'exec',
    A,
    'nft',
    'add table inet pnl; add chain inet pnl in { type filter hook input priority 0; }; add rule inet pnl in ct state established,related accept; add rule inet pnl in ct state invalid drop',
  ]);
  await net.run(A, ['server', '8080']);
  await net.run(A, ['sink', '9090', '16']);
  await net.run(B, ['client', '10.200.2.1', '8080', '4', '2000']);
  await net.run(B, ['client', 'fd00:2::1', '8080', '2', '100']);
  await net.run(B, ['udp', '10.200.2.1', '9090', '20', '100']);
  await net.run(B, ['badtcp', '10.200.2.1', '8080', String(BAD)]);
  probe = await conntrackProbe.create(ctx, conntrackProbe.args.parse({}));
});

after(async () => {
  await probe?.close();
  net.cleanup();
});

test('conntrack: availability on this kernel', async () => {
  assert.deepEqual(await conntrackProbe.availability(), { available: true });
});

test('conntrack: netns with conntrack in use equals conntrack -S / -C', async () => {
  const [got, want] = await quiescentRead(net.entity(A), A);
  assert.deepEqual(got, want);
  // 6 TCP connections + 1 UDP flow. (This kernel counts `insert` only for entries created over
  // ctnetlink, so it stays 0 here; equality with conntrack -S above covers every stat.)
  assert.ok(got.get(ENTRIES)! >= 7, `entries ${got.get(ENTRIES)}`);
  assert.ok(got.has(metricName('found')) && got.has(metricName('insert_failed')));
  assert.equal(got.get(metricName('invalid')), BAD, 'each SYN+FIN segment is one invalid packet');
  assert.ok(got.get(LIMIT)! > 0);
});

test('conntrack: netns without conntrack rules gives zeros, entries 0 (and still equals conntrack -S)', async () => {
  const [got, want] = await quiescentRead(net.entity(B), B);
  assert.deepEqual(got, want);
  assert.equal(got.get(ENTRIES), 0);
  assert.equal(got.get(metricName('insert')), 0);
});

test('conntrack: host netns equals conntrack -S / -C', async () => {
  const [got, want] = await quiescentRead(hostEntity, null);
  assert.deepEqual(got, want);
});

test('conntrack: per-CPU mode gives one point per CPU that sums to the totals', async () => {
  const perCpu = await conntrackProbe.create(ctx, conntrackProbe.args.parse({ perCpu: true }));
  const e = net.entity(A);
  // Generous (other tests load the machine): retry for up to 30 s.
  for (const end = Date.now() + 30_000; Date.now() < end; ) {
    const sum = conntrackValues(await probe.collect([e]), e.netnsInode);
    const pts = await perCpu.collect([e]);
    const again = conntrackValues(await probe.collect([e]), e.netnsInode);
    if (JSON.stringify([...sum]) !== JSON.stringify([...again])) {
      await sleep(200);
      continue;
    }
    const cpus = Number(sh('nproc', ['--all']).trim());
    for (const stat of ['found', 'invalid', 'insert', 'drop', 'search_restart']) {
      const per = pts.filter((p) => p.metric === metricName(stat));
      assert.equal(per.length, cpus, stat);
      assert.deepEqual(
        per.map((p) => p.attributes?.['cpu.logical_number']),
        Array.from({ length: cpus }, (_, i) => i),
      );
      assert.equal(
        per.reduce((s, p) => s + (p.value as number), 0),
        sum.get(metricName(stat)),
      );
    }
    await perCpu.close();
    return;
  }
  assert.fail('never quiesced');
});
