// tcpreset against the kernel's own counters with real TCP between two test netns: connects to a closed
// port (NOSOCK in the server netns == Tcp OutRsts delta, RECEIVE in the client netns) and an SO_LINGER 0
// close (ACTIVE from the client, RECEIVE at the server), ports in host order on both sides.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { M, type TcpresetArgs, tcpresetProbe } from '../../probes/tcpreset/tcpreset.ts';
import type { Probe, ProbeEvent } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import {
  assertDeclared,
  killChild,
  nstat,
  sideEntity,
  sumPoints,
  type TestContext,
  tcpFixture,
  testContext,
  waitFor,
} from './env.ts';

let pair: NetnsPair;
const probes: Probe<TcpresetArgs>[] = [];
const children: ChildProcess[] = [];

before(() => {
  removeStaleNetns('pna');
  pair = createNetnsPair({ prefix: 'pna', tag: 'rs' });
});
after(async () => {
  for (const c of children) killChild(c);
  for (const p of probes) await p.close();
  pair?.cleanup();
});

async function start(
  args: Partial<TcpresetArgs> = {},
): Promise<{ probe: Probe<TcpresetArgs>; ctx: TestContext }> {
  const ctx = testContext([sideEntity(pair.a), sideEntity(pair.b)]);
  const probe = await tcpresetProbe.create(ctx, tcpresetProbe.args.parse(args));
  probes.push(probe);
  assert.equal(probe.status().state, 'running', probe.status().reason);
  return { probe, ctx };
}

const ofType = (ctx: TestContext, netns: number, type: string): ProbeEvent[] =>
  ctx.events.filter((e) => e.netns === netns && e.type === type);

test('N SYNs to a closed port: N TCPRESET_NOSOCK == Tcp OutRsts delta in the server netns, N RECEIVE at the client', async () => {
  const { probe, ctx } = await start({ rateLimit: 0 });
  const { a, b } = pair;
  const n = 25;
  const rst0 = nstat(b.name).get('TcpOutRsts') ?? 0;
  const p0 = await probe.collect([]);
  const { result } = await tcpFixture(a, ['refused', b.ipv4, '7001', String(n), '41000']);
  assert.equal(result['refused'], n);
  const ports = result['ports'] as number[];
  assert.ok(await waitFor(() => ofType(ctx, b.inode, 'TCPRESET_NOSOCK').length >= n));
  assert.ok(await waitFor(() => ofType(ctx, a.inode, 'TCPRESET_RECEIVE').length >= n));
  const rst = (nstat(b.name).get('TcpOutRsts') ?? 0) - rst0;
  assert.equal(rst, n, 'kernel: Tcp OutRsts in the server netns');
  const p1 = await probe.collect([]);
  const d = (netns: number, kind: string, dir: string) =>
    sumPoints(p1, M.resets, netns, { 'podnet.tcp.reset.kind': kind, 'network.io.direction': dir }) -
    sumPoints(p0, M.resets, netns, { 'podnet.tcp.reset.kind': kind, 'network.io.direction': dir });
  assert.equal(d(b.inode, 'nosock', 'transmit'), rst);
  assert.equal(d(a.inode, 'receive', 'receive'), n);
  assert.equal(d(b.inode, 'process', 'transmit') + d(b.inode, 'active', 'transmit'), 0);

  const nosock = ofType(ctx, b.inode, 'TCPRESET_NOSOCK');
  assert.equal(nosock.length, n);
  for (const e of nosock) {
    assert.equal(e.name, 'podnet.tcp.reset');
    assert.equal(e.attributes['network.local.address'], b.ipv4);
    assert.equal(e.attributes['network.local.port'], 7001);
    assert.equal(e.attributes['network.peer.address'], a.ipv4);
    assert.equal(e.attributes['network.transport'], 'tcp');
    assert.equal(e.attributes['network.io.direction'], 'transmit');
    assert.equal(e.attributes['error.type'], 'NO_SOCKET');
  }
  assert.deepEqual(
    nosock.map((e) => e.attributes['network.peer.port']).sort(),
    [...ports].sort(),
    'peer ports in host order = the client sockets local ports',
  );
  const recv = ofType(ctx, a.inode, 'TCPRESET_RECEIVE');
  for (const e of recv) {
    assert.equal(e.attributes['network.local.address'], a.ipv4);
    assert.equal(e.attributes['network.peer.address'], b.ipv4);
    assert.equal(e.attributes['network.peer.port'], 7001);
    assert.equal(e.attributes['network.connection.state'], 'syn_sent');
    assert.equal(e.attributes['network.io.direction'], 'receive');
  }
  assert.deepEqual(recv.map((e) => e.attributes['network.local.port']).sort(), [...ports].sort());
  assertDeclared(tcpresetProbe, ctx.events);
  await probe.close();
});

test('IPv6 closed port: NOSOCK with IPv6 tuple', async () => {
  const { probe, ctx } = await start({ rateLimit: 0 });
  const { a, b } = pair;
  const rst0 = nstat(b.name).get('TcpOutRsts') ?? 0;
  const { result } = await tcpFixture(a, ['refused', b.ipv6, '7002', '4', '41100']);
  assert.equal(result['refused'], 4);
  assert.ok(await waitFor(() => ofType(ctx, b.inode, 'TCPRESET_NOSOCK').length >= 4));
  assert.equal((nstat(b.name).get('TcpOutRsts') ?? 0) - rst0, 4);
  for (const e of ofType(ctx, b.inode, 'TCPRESET_NOSOCK')) {
    assert.equal(e.attributes['network.type'], 'ipv6');
    assert.equal(e.attributes['network.local.address'], b.ipv6);
    assert.equal(e.attributes['network.peer.address'], a.ipv6);
    assert.equal(e.attributes['network.local.port'], 7002);
  }
  assertDeclared(tcpresetProbe, ctx.events);
  await probe.close();
});

test('SO_LINGER 0 close: TCPRESET_ACTIVE from the client (Tcp OutRsts +1), TCPRESET_RECEIVE at the server', async () => {
  const { probe, ctx } = await start({ rateLimit: 0, stacks: true });
  const { a, b } = pair;
  const srv = await tcpFixture(b, ['server', '7003']);
  children.push(srv.child);
  const rstA0 = nstat(a.name).get('TcpOutRsts') ?? 0;
  const { result } = await tcpFixture(a, ['abort', b.ipv4, '7003', '1000']);
  const port = result['port'] as number;
  assert.ok(port > 0);
  assert.ok(await waitFor(() => ofType(ctx, a.inode, 'TCPRESET_ACTIVE').length >= 1));
  assert.ok(await waitFor(() => ofType(ctx, b.inode, 'TCPRESET_RECEIVE').length >= 1));
  assert.equal((nstat(a.name).get('TcpOutRsts') ?? 0) - rstA0, 1);
  const act = ofType(ctx, a.inode, 'TCPRESET_ACTIVE');
  assert.equal(act.length, 1);
  const e = act[0]!;
  assert.equal(e.attributes['network.local.address'], a.ipv4);
  assert.equal(e.attributes['network.local.port'], port);
  assert.equal(e.attributes['network.peer.address'], b.ipv4);
  assert.equal(e.attributes['network.peer.port'], 7003);
  assert.equal(e.attributes['podnet.tcp.reset.kind'], 'active');
  assert.match(String(e.attributes['error.type']), /^[A-Z_]+$/);
  assert.ok(!String(e.attributes['error.type']).startsWith('UNKNOWN'));
  assert.ok(
    e.stack?.some((f) => /^tcp_(send_active_reset|disconnect|close)\+0x/.test(f)),
    e.stack?.join(' / '),
  );
  const rcv = ofType(ctx, b.inode, 'TCPRESET_RECEIVE');
  assert.equal(rcv.length, 1);
  assert.equal(rcv[0]!.attributes['network.local.port'], 7003);
  assert.equal(rcv[0]!.attributes['network.peer.port'], port);
  assert.equal(rcv[0]!.attributes['network.connection.state'], 'established');
  const pts = await probe.collect([]);
  assert.equal(sumPoints(pts, M.resets, a.inode, { 'podnet.tcp.reset.kind': 'active' }), 1);
  assert.equal(sumPoints(pts, M.resets, b.inode, { 'podnet.tcp.reset.kind': 'receive' }), 1);
  killChild(srv.child);
  assertDeclared(tcpresetProbe, ctx.events);
  await probe.close();
});

test('data to an orphaned socket: TCPRESET_PROCESS from the server socket, with its state', async () => {
  const { probe, ctx } = await start({ rateLimit: 0 });
  const { a, b } = pair;
  const srv = await tcpFixture(b, ['closer', '7004']);
  children.push(srv.child);
  const rst0 = nstat(b.name).get('TcpOutRsts') ?? 0;
  const { result } = await tcpFixture(a, ['latewrite', b.ipv4, '7004']);
  const port = result['port'] as number;
  assert.ok(await waitFor(() => ofType(ctx, b.inode, 'TCPRESET_PROCESS').length >= 1));
  assert.ok(await waitFor(() => ofType(ctx, a.inode, 'TCPRESET_RECEIVE').length >= 1));
  assert.equal((nstat(b.name).get('TcpOutRsts') ?? 0) - rst0, 1);
  const ev = ofType(ctx, b.inode, 'TCPRESET_PROCESS');
  assert.equal(ev.length, 1);
  const e = ev[0]!;
  assert.equal(e.attributes['network.local.address'], b.ipv4);
  assert.equal(e.attributes['network.local.port'], 7004);
  assert.equal(e.attributes['network.peer.port'], port);
  // the orphan is a full socket in FIN_WAIT, or already a TIME_WAIT mini socket (substate FIN_WAIT2)
  assert.match(
    String(e.attributes['network.connection.state']),
    /^(fin_wait_2|fin_wait_1|closed|time_wait)$/,
  );
  const pts = await probe.collect([]);
  assert.equal(sumPoints(pts, M.resets, b.inode, { 'podnet.tcp.reset.kind': 'process' }), 1);
  killChild(srv.child);
  assertDeclared(tcpresetProbe, ctx.events);
  await probe.close();
});
