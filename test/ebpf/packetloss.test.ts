// packetloss against the kernel's own counters, with real traffic between two test netns:
// UDP to a closed port (Udp/Udp6 NoPorts), an nft drop rule (its rule counter), rate limiting,
// drop-site exclusion, unattributed netns, stacks resolving to kernel symbols.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EVENT, M, type PacketlossArgs, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { SELF_METRIC } from '../../receiver/kit/ebpf/runtime.ts';
import type { Probe, ProbeEvent } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import {
  assertDeclared,
  selfPoint,
  sideEntity,
  sumPoints,
  type TestContext,
  testContext,
  waitFor,
} from './env.ts';

let pair: NetnsPair;
const probes: Probe<PacketlossArgs>[] = [];

before(() => {
  removeStaleNetns('pna');
  pair = createNetnsPair({ prefix: 'pna', tag: 'pl' });
});
after(async () => {
  for (const p of probes) await p.close();
  try {
    pair?.b.exec('nft', ['delete', 'table', 'inet', 'pnatest']);
  } catch {}
  pair?.cleanup();
});

async function start(
  args: Partial<PacketlossArgs> = {},
  entities = [sideEntity(pair.a), sideEntity(pair.b)],
): Promise<{ probe: Probe<PacketlossArgs>; ctx: TestContext }> {
  const ctx = testContext(entities);
  const probe = await packetlossProbe.create(ctx, packetlossProbe.args.parse(args));
  probes.push(probe);
  assert.equal(probe.status().state, 'running', probe.status().reason);
  return { probe, ctx };
}

const mine = (ctx: TestContext, netns: number, reason: string, dport: number): ProbeEvent[] =>
  ctx.events.filter(
    (e) =>
      e.netns === netns &&
      e.attributes['error.type'] === reason &&
      e.attributes['destination.port'] === dport,
  );

test('UDP to a closed port: NO_SOCKET drops == Udp/Udp6 NoPorts, events carry netns, tuple, interface, location', async () => {
  const { probe, ctx } = await start({ rateLimit: 0, stacks: false });
  const b = pair.b;
  const n4 = 73;
  const n6 = 31;
  const before4 = b.snmp('Udp', 'NoPorts');
  const before6 = b.snmp('Udp6', 'NoPorts');
  const p0 = await probe.collect([]);
  const c0 = sumPoints(p0, M.drops, b.inode, { 'error.type': 'NO_SOCKET', 'network.transport': 'udp' });
  pair.a.sendUdp(b.ipv4, 9, n4, 40);
  pair.a.sendUdp(b.ipv6, 9, n6, 40);
  assert.ok(await waitFor(() => mine(ctx, b.inode, 'NO_SOCKET', 9).length >= n4 + n6));
  const k4 = b.snmp('Udp', 'NoPorts') - before4;
  const k6 = b.snmp('Udp6', 'NoPorts') - before6;
  assert.equal(k4, n4);
  assert.equal(k6, n6);
  const p1 = await probe.collect([]);
  const v4 = sumPoints(p1, M.drops, b.inode, {
    'error.type': 'NO_SOCKET',
    'network.type': 'ipv4',
    'network.transport': 'udp',
  });
  const v6 = sumPoints(p1, M.drops, b.inode, {
    'error.type': 'NO_SOCKET',
    'network.type': 'ipv6',
    'network.transport': 'udp',
  });
  assert.equal(v4 + v6 - c0, k4 + k6);
  assert.equal(v4 >= k4 && v6 >= k6, true);

  const ev = mine(ctx, b.inode, 'NO_SOCKET', 9);
  assert.equal(ev.length, k4 + k6, 'one event per drop (rate limit off)');
  const e4 = ev.filter((e) => e.attributes['network.type'] === 'ipv4');
  const e6 = ev.filter((e) => e.attributes['network.type'] === 'ipv6');
  assert.equal(e4.length, n4);
  assert.equal(e6.length, n6);
  for (const e of e4) {
    assert.equal(e.name, EVENT);
    assert.equal(e.type, 'PACKETLOSS');
    assert.equal(e.attributes['source.address'], pair.a.ipv4);
    assert.equal(e.attributes['destination.address'], b.ipv4);
    assert.equal(e.attributes['network.transport'], 'udp');
    assert.equal(e.attributes['network.interface.name'], b.ifname);
    assert.match(String(e.attributes['podnet.drop.location']), /^__udp4_lib_rcv\+0x[0-9a-f]+$/);
    assert.ok(typeof e.attributes['source.port'] === 'number' && e.attributes['source.port'] > 0);
    assert.equal(e.stack, undefined, 'no stacks when switched off');
    const ms = Number(e.timeUnixNano / 1_000_000n);
    assert.ok(Math.abs(ms - Date.now()) < 60_000, `wall clock time ${ms}`);
  }
  for (const e of e6) {
    assert.equal(e.attributes['source.address'], pair.a.ipv6);
    assert.equal(e.attributes['destination.address'], b.ipv6);
    assert.match(String(e.attributes['podnet.drop.location']), /^__udp6_lib_rcv\+0x/);
  }
  assertDeclared(packetlossProbe, ctx.events);
  await probe.close();
});

test('nft drop rule: NETFILTER_DROP == the rule counter, stack shows nft_do_chain', async () => {
  const { probe, ctx } = await start({ rateLimit: 0, stacks: true });
  const b = pair.b;
  b.exec('nft', [
    'add table inet pnatest; add chain inet pnatest in { type filter hook input priority 0; policy accept; }; add rule inet pnatest in udp dport 7777 counter drop',
  ]);
  const n = 57;
  pair.a.sendUdp(b.ipv4, 7777, n, 20);
  assert.ok(await waitFor(() => mine(ctx, b.inode, 'NETFILTER_DROP', 7777).length >= n));
  const rules = JSON.parse(b.exec('nft', ['-j', 'list', 'table', 'inet', 'pnatest'])) as {
    nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[];
  };
  const counter = rules.nftables.flatMap((x) => x.rule?.expr ?? []).find((x) => x.counter)?.counter?.packets;
  assert.equal(counter, n);
  const pts = await probe.collect([]);
  assert.equal(sumPoints(pts, M.drops, b.inode, { 'error.type': 'NETFILTER_DROP' }), counter);
  const ev = mine(ctx, b.inode, 'NETFILTER_DROP', 7777);
  assert.equal(ev.length, n);
  for (const e of ev) {
    assert.ok(e.stack && e.stack.length > 3, 'stack captured');
    assert.match(e.stack[0]!, /^\w+\+0x[0-9a-f]+$/);
    assert.ok(
      e.stack.some((f) => f.startsWith('nft_do_chain+0x')),
      e.stack.join(' / '),
    );
    assert.match(String(e.attributes['podnet.drop.location']), /^nft_do_chain\+0x/);
  }
  assert.equal(selfPoint(pts, SELF_METRIC.stackFailures), 0);
  b.exec('nft', ['delete', 'table', 'inet', 'pnatest']);
  assertDeclared(packetlossProbe, ctx.events);
  await probe.close();
});

test('rate limit per (netns, type): events capped, counters exact, suppressed counted', async () => {
  const { probe, ctx } = await start({ rateLimit: 5, rateWindowMs: 600_000 });
  const b = pair.b;
  const p0 = await probe.collect([]);
  const before = b.snmp('Udp', 'NoPorts');
  const n = 200;
  pair.a.sendUdp(b.ipv4, 10, n, 20);
  const k = b.snmp('Udp', 'NoPorts') - before;
  assert.equal(k, n);
  assert.ok(await waitFor(() => ctx.events.filter((e) => e.netns === b.inode).length >= 5));
  const p1 = await probe.collect([]);
  assert.equal(
    sumPoints(p1, M.drops, b.inode, { 'error.type': 'NO_SOCKET' }) -
      sumPoints(p0, M.drops, b.inode, { 'error.type': 'NO_SOCKET' }),
    n,
  );
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(ctx.events.filter((e) => e.netns === b.inode).length, 5, 'at most 5 events in the window');
  const suppressed = selfPoint(p1, SELF_METRIC.suppressed) - selfPoint(p0, SELF_METRIC.suppressed);
  assert.ok(suppressed >= n - 5, `suppressed ${suppressed}`);
  assertDeclared(packetlossProbe, ctx.events);
  await probe.close();
});

test('excluded drop site: counted, no event', async () => {
  const { probe, ctx } = await start({ rateLimit: 0, excludeLocations: ['__udp4_lib_rcv'] });
  const b = pair.b;
  const p0 = await probe.collect([]);
  pair.a.sendUdp(b.ipv4, 11, 40, 20);
  pair.a.sendUdp(b.ipv6, 11, 3, 20); // not excluded: proves events still flow
  assert.ok(await waitFor(() => mine(ctx, b.inode, 'NO_SOCKET', 11).length >= 3));
  const p1 = await probe.collect([]);
  const d = (p: typeof p1, t: string) =>
    sumPoints(p, M.drops, b.inode, { 'error.type': 'NO_SOCKET', 'network.type': t });
  assert.equal(d(p1, 'ipv4') - d(p0, 'ipv4'), 40);
  assert.equal(d(p1, 'ipv6') - d(p0, 'ipv6'), 3);
  await new Promise((r) => setTimeout(r, 100));
  const ev = mine(ctx, b.inode, 'NO_SOCKET', 11);
  assert.equal(ev.length, 3);
  assert.ok(ev.every((e) => e.attributes['network.type'] === 'ipv6'));
  assertDeclared(packetlossProbe, ctx.events);
  await probe.close();
});

test('netns of no entity: counted as unattributed (0), events keep the origin inode; gone netns keys are deleted', async () => {
  const { probe, ctx } = await start({ rateLimit: 0 }, [sideEntity(pair.a), sideEntity(pair.b)]);
  const b = pair.b;
  pair.a.sendUdp(b.ipv4, 12, 5, 20);
  assert.ok(await waitFor(() => mine(ctx, b.inode, 'NO_SOCKET', 12).length >= 5));
  const p0 = await probe.collect([]);
  assert.ok(sumPoints(p0, M.drops, b.inode) >= 5);
  ctx.source.remove(b.inode); // the pod is gone: its keys go, its traffic counts as unattributed
  const p1 = await probe.collect([]);
  assert.equal(p1.filter((p) => p.netns === b.inode).length, 0, 'no series for a netns that is gone');
  const un0 = sumPoints(p1, M.drops, 0, {
    'error.type': 'NO_SOCKET',
    'network.transport': 'udp',
    'network.type': 'ipv4',
  });
  pair.a.sendUdp(b.ipv4, 12, 17, 20);
  const orphan = () =>
    ctx.events.filter(
      (e) =>
        e.netns === 0 &&
        e.attributes['podnet.netns.origin_inode'] === b.inode &&
        e.attributes['destination.port'] === 12,
    );
  assert.ok(await waitFor(() => orphan().length >= 17));
  const p2 = await probe.collect([]);
  const un1 = sumPoints(p2, M.drops, 0, {
    'error.type': 'NO_SOCKET',
    'network.transport': 'udp',
    'network.type': 'ipv4',
  });
  assert.ok(un1 - un0 >= 17, `unattributed grew by ${un1 - un0}`);
  assert.equal(p2.filter((p) => p.netns === b.inode).length, 0);
  assertDeclared(packetlossProbe, ctx.events);
  await probe.close();
});
