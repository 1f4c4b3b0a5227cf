// ctevents against the kernel: closed-port SYNs through a netns whose nft rule uses conntrack → one
// ConntrackNew per connection (== the `ct state new` rule counter) with original and reply tuples, and
// one ConntrackDestroy each (the kernel kills the unassured entry on the RST: `conntrack -C` is 0); a UDP
// flow stays in the table until `conntrack -F` destroys it; a netns that goes away is unsubscribed; an
// ICMP echo in a non-default conntrack zone carries the type, code and zone `conntrack -L` shows.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cteventsProbe, M } from '../../probes/ctevents/ctevents.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import { assertDeclared, sideEntity, sumPoints, tcpFixture, testContext, waitFor } from './env.ts';

let pair: NetnsPair;
/** Every probe created here, closed in after() even when a test fails before closing its own. */
const probes: Probe<unknown>[] = [];

before(() => {
  removeStaleNetns('pna');
  pair = createNetnsPair({ prefix: 'pna', tag: 'ct' });
});
after(async () => {
  for (const p of probes) await p.close();
  pair?.cleanup();
});

test('conntrack NEW and DESTROY events per connection, equal to the kernel table and the nft ct counter', async () => {
  const { a, b } = pair;
  b.exec('nft', [
    'add table inet pnact; add chain inet pnact in { type filter hook input priority 0; policy accept; }; add rule inet pnact in ct state new counter accept',
  ]);
  const ctx = testContext([sideEntity(a), sideEntity(b)]);
  const probe = (await cteventsProbe.create(
    ctx,
    cteventsProbe.args.parse({ rateLimit: 0 }),
  )) as Probe<unknown>;
  probes.push(probe);
  assert.equal(probe.status().state, 'running', probe.status().reason);
  const n = 9;
  const { result } = await tcpFixture(a, ['refused', b.ipv4, '7401', String(n), '44000']);
  assert.equal(result['refused'], n);
  const of = (type: string) => ctx.events.filter((e) => e.netns === b.inode && e.type === type);
  assert.ok(await waitFor(() => of('ConntrackNew').length >= n));
  const rules = JSON.parse(b.exec('nft', ['-j', 'list', 'table', 'inet', 'pnact'])) as {
    nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[];
  };
  const counter = rules.nftables.flatMap((x) => x.rule?.expr ?? []).find((x) => x.counter)?.counter?.packets;
  assert.equal(counter, n, 'nft: ct state new');
  assert.equal(of('ConntrackNew').length, n);
  assert.ok(await waitFor(() => of('ConntrackDestroy').length >= n));
  assert.equal(Number(b.exec('conntrack', ['-C']).trim()), 0, 'conntrack -C: the reset entries are gone');
  const ports = of('ConntrackNew')
    .map((e) => e.attributes['source.port'])
    .sort();
  assert.deepEqual(
    ports,
    Array.from({ length: n }, (_, i) => 44000 + i),
  );
  for (const e of of('ConntrackNew')) {
    assert.equal(e.name, 'podnet.conntrack.event');
    assert.equal(e.attributes['source.address'], a.ipv4);
    assert.equal(e.attributes['destination.address'], b.ipv4);
    assert.equal(e.attributes['destination.port'], 7401);
    assert.equal(e.attributes['network.transport'], 'tcp');
    assert.equal(e.attributes['podnet.conntrack.reply.source.address'], b.ipv4);
    assert.equal(e.attributes['podnet.conntrack.reply.source.port'], 7401);
    assert.equal(e.attributes['podnet.conntrack.reply.destination.port'], e.attributes['source.port']);
    assert.equal(e.attributes['podnet.conntrack.tcp.state'], 'SYN_SENT');
  }
  for (const e of of('ConntrackDestroy')) assert.equal(e.attributes['podnet.conntrack.tcp.state'], 'CLOSE');

  // a UDP flow: one entry that stays until the table is flushed
  a.sendUdp(b.ipv4, 7402, 5, 20);
  const udp = (type: string) => of(type).filter((e) => e.attributes['network.transport'] === 'udp');
  assert.ok(await waitFor(() => udp('ConntrackNew').length >= 1));
  assert.equal(Number(b.exec('conntrack', ['-C']).trim()), 1);
  b.exec('conntrack', ['-F']);
  assert.ok(await waitFor(() => udp('ConntrackDestroy').length >= 1));
  assert.equal(udp('ConntrackNew').length, 1);
  assert.equal(udp('ConntrackDestroy')[0]!.attributes['destination.port'], 7402);
  assert.equal(udp('ConntrackDestroy')[0]!.attributes['source.address'], a.ipv4);
  const pts = await probe.collect([sideEntity(a), sideEntity(b)]);
  assert.equal(sumPoints(pts, M.events, b.inode, { 'podnet.conntrack.event.type': 'new' }), n + 1);
  assert.equal(
    sumPoints(pts, M.events, b.inode, { 'podnet.conntrack.event.type': 'destroy' }),
    of('ConntrackDestroy').length,
  );
  assert.equal(sumPoints(pts, M.overruns, b.inode), 0);
  assertDeclared(cteventsProbe, ctx.events);

  ctx.source.remove(b.inode);
  const after = await probe.collect([sideEntity(a)]);
  assert.equal(after.filter((p) => p.netns === b.inode).length, 0);
  assert.equal((probe.status().details as { netns: number }).netns, 1);
  await probe.close();
  b.exec('nft', ['delete', 'table', 'inet', 'pnact']);
});

test('IPv6 tuples; rate limit per (netns, type) with suppressed counted and counters exact', async () => {
  const { a, b } = pair;
  b.exec('nft', [
    'add table inet pnact; add chain inet pnact in { type filter hook input priority 0; policy accept; }; add rule inet pnact in ct state new counter accept',
  ]);
  const ctx = testContext([sideEntity(a), sideEntity(b)]);
  const p = (await cteventsProbe.create(
    ctx,
    cteventsProbe.args.parse({ rateLimit: 2, rateWindowMs: 600_000 }),
  )) as Probe<unknown>;
  probes.push(p);
  const { result } = await tcpFixture(a, ['refused', b.ipv6, '7403', '6', '45000']);
  assert.equal(result['refused'], 6);
  const pts = async () => p.collect([sideEntity(a), sideEntity(b)]);
  assert.ok(await waitFor(() => ctx.events.filter((e) => e.type === 'ConntrackDestroy').length >= 2));
  await new Promise((r) => setTimeout(r, 200));
  const x = await pts();
  assert.equal(sumPoints(x, M.events, b.inode, { 'podnet.conntrack.event.type': 'new' }), 6);
  assert.equal(sumPoints(x, M.events, b.inode, { 'podnet.conntrack.event.type': 'destroy' }), 6);
  const news = ctx.events.filter((e) => e.netns === b.inode && e.type === 'ConntrackNew');
  assert.equal(news.length, 2);
  assert.equal(ctx.events.filter((e) => e.netns === b.inode && e.type === 'ConntrackDestroy').length, 2);
  const suppressed = x.find((q) => q.metric === M.suppressed)?.value;
  assert.equal(suppressed, 8);
  for (const e of news) {
    assert.equal(e.attributes['network.type'], 'ipv6');
    assert.equal(e.attributes['source.address'], a.ipv6);
    assert.equal(e.attributes['destination.address'], b.ipv6);
    assert.equal(e.attributes['podnet.conntrack.reply.source.address'], b.ipv6);
  }
  await p.close();
  b.exec('nft', ['delete', 'table', 'inet', 'pnact']);
});

test('ICMP echo in conntrack zone 7: type, code and zone as conntrack -L shows them', async () => {
  const { a, b } = pair;
  // The zone is set before conntrack sees the packet (priority raw, -300).
  b.exec('nft', [
    'add table inet pnazone; add chain inet pnazone pre { type filter hook prerouting priority -300; policy accept; }; add rule inet pnazone pre ip protocol icmp ct zone set 7',
  ]);
  const ctx = testContext([sideEntity(a), sideEntity(b)]);
  const p = (await cteventsProbe.create(ctx, cteventsProbe.args.parse({ rateLimit: 0 }))) as Probe<unknown>;
  probes.push(p);
  try {
    a.exec('busybox', ['ping', '-c', '1', '-W', '2', b.ipv4]);
    const icmp = () =>
      ctx.events.filter(
        (e) =>
          e.netns === b.inode && e.type === 'ConntrackNew' && e.attributes['network.transport'] === 'icmp',
      );
    assert.ok(await waitFor(() => icmp().length >= 1));
    assert.equal(icmp().length, 1);
    // e.g. `icmp 1 29 src=A dst=B type=8 code=0 id=N src=B dst=A type=0 code=0 id=N mark=0 zone=7 use=1`
    const line = b.exec('conntrack', ['-L', '-p', 'icmp']).trim().split('\n')[0]!;
    const field = (k: string) => Number(new RegExp(`\\b${k}=(\\d+)`).exec(line)?.[1]);
    const e = icmp()[0]!;
    assert.equal(e.attributes['source.address'], a.ipv4);
    assert.equal(e.attributes['destination.address'], b.ipv4);
    assert.equal(e.attributes['podnet.icmp.type'], field('type'));
    assert.equal(e.attributes['podnet.icmp.type'], 8, 'echo request');
    assert.equal(e.attributes['podnet.icmp.code'], field('code'));
    assert.equal(e.attributes['podnet.conntrack.zone'], field('zone'));
    assert.equal(e.attributes['podnet.conntrack.zone'], 7);
    assert.equal(e.attributes['source.port'], undefined, 'no ports on an ICMP tuple');
    assertDeclared(cteventsProbe, ctx.events);
  } finally {
    await p.close();
    b.exec('nft', ['delete', 'table', 'inet', 'pnazone']);
    b.exec('conntrack', ['-F']);
  }
});
