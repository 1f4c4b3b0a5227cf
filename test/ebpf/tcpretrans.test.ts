// tcpretrans against the kernel's own counter: random loss on the veth (nft `numgen random mod 10 == 0
// drop`, this kernel has no netem) during a bulk transfer → retransmitted segments == Tcp RetransSegs
// delta, in each netns; events carry the sender's tuple and state.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { M, type TcpretransArgs, tcpretransProbe } from '../../probes/tcpretrans/tcpretrans.ts';
import type { Probe } from '../../receiver/probe/types.ts';
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
  const r0 = { a: nstat(a.name).get('TcpRetransSegs') ?? 0, b: nstat(b.name).get('TcpRetransSegs') ?? 0 };
  const p0 = await probe.collect([]);
  const { result } = await tcpFixture(a, ['bulk', b.ipv4, '7005', String(3 << 20)], 60000);
  assert.equal(result['sent'], 3 << 20);
  const port = result['port'] as number;
  for (const side of [a, b]) side.exec('nft', ['delete', 'table', 'inet', 'pnaloss']);
  const r1 = { a: nstat(a.name).get('TcpRetransSegs') ?? 0, b: nstat(b.name).get('TcpRetransSegs') ?? 0 };
  const kernelA = r1.a - r0.a;
  const kernelB = r1.b - r0.b;
  assert.ok(kernelA > 0, 'the loss caused retransmits');
  const evA = () => ctx.events.filter((e) => e.netns === a.inode);
  assert.ok(await waitFor(() => evA().length > 0));
  const p1 = await probe.collect([]);
  const d = (netns: number) => sumPoints(p1, M.retransmits, netns) - sumPoints(p0, M.retransmits, netns);
  assert.equal(d(a.inode), kernelA, 'client netns');
  assert.equal(d(b.inode), kernelB, 'server netns');
  const segs = evA().reduce((s, e) => s + Number(e.attributes['podnet.tcp.retransmit.segments']), 0);
  assert.equal(segs, kernelA, 'events (rate limit off) carry every segment');
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
