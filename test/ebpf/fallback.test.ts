// The raw_tp variants of every probe (used where tp_btf cannot load) pass the verifier, attach and count
// exactly like the tp_btf ones: closed-port UDP (Udp NoPorts), closed-port SYNs (Tcp OutRsts), a flooded
// tiny UDP receive buffer (Udp RcvbufErrors).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { M as PL, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { M as SO, sockoverflowProbe } from '../../probes/sockoverflow/sockoverflow.ts';
import { M as RS, tcpresetProbe } from '../../probes/tcpreset/tcpreset.ts';
import { tcpretransProbe } from '../../probes/tcpretrans/tcpretrans.ts';
import { SELF_METRIC } from '../../receiver/kit/ebpf/runtime.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import {
  assertDeclared,
  killChild,
  nstat,
  selfPoint,
  sideEntity,
  sumPoints,
  tcpFixture,
  testContext,
  waitFor,
} from './env.ts';

let pair: NetnsPair;
const probes: Probe<unknown>[] = [];
const children: ChildProcess[] = [];

before(() => {
  removeStaleNetns('pna');
  pair = createNetnsPair({ prefix: 'pna', tag: 'fb' });
});
after(async () => {
  for (const c of children) killChild(c);
  for (const p of probes) await p.close();
  pair?.cleanup();
});

type Programs = { name: string; section: string; state: string }[];
const attached = (p: Probe<unknown>) =>
  ((p.status().details?.['programs'] ?? []) as Programs)
    .filter((x) => x.state === 'attached')
    .map((x) => x.section);

test('attach: raw_tp — every probe runs on raw tracepoints and counts exactly', async () => {
  const { a, b } = pair;
  const ctx = testContext([sideEntity(a), sideEntity(b)]);
  const pl = (await packetlossProbe.create(
    ctx,
    packetlossProbe.args.parse({ attach: 'raw_tp', rateLimit: 0 }),
  )) as Probe<unknown>;
  const rs = (await tcpresetProbe.create(
    ctx,
    tcpresetProbe.args.parse({ attach: 'raw_tp', rateLimit: 0 }),
  )) as Probe<unknown>;
  const rt = (await tcpretransProbe.create(
    ctx,
    tcpretransProbe.args.parse({ attach: 'raw_tp' }),
  )) as Probe<unknown>;
  const so = (await sockoverflowProbe.create(
    ctx,
    sockoverflowProbe.args.parse({ attach: 'raw_tp', rateLimit: 0 }),
  )) as Probe<unknown>;
  probes.push(pl, rs, rt, so);
  for (const p of [pl, rs, rt, so]) {
    assert.equal(p.status().state, 'running', p.status().reason);
    const secs = attached(p);
    assert.ok(secs.length > 0 && secs.every((s) => s.startsWith('raw_tp/')), secs.join(', '));
  }
  const noports0 = b.snmp('Udp', 'NoPorts');
  const rst0 = nstat(b.name).get('TcpOutRsts') ?? 0;
  pair.a.sendUdp(b.ipv4, 9, 33, 20);
  const { result } = await tcpFixture(a, ['refused', b.ipv4, '7301', '7', '43000']);
  assert.equal(result['refused'], 7);
  assert.equal(b.snmp('Udp', 'NoPorts') - noports0, 33);
  assert.equal((nstat(b.name).get('TcpOutRsts') ?? 0) - rst0, 7);
  assert.ok(
    await waitFor(
      () => ctx.events.filter((e) => e.netns === b.inode && e.type === 'TCPRESET_NOSOCK').length >= 7,
    ),
  );
  const plp = await pl.collect([]);
  assert.equal(
    sumPoints(plp, PL.drops, b.inode, { 'error.type': 'NO_SOCKET', 'network.transport': 'udp' }),
    33,
  );
  const rsp = await rs.collect([]);
  assert.equal(sumPoints(rsp, RS.resets, b.inode, { 'podnet.tcp.reset.kind': 'nosock' }), 7);
  assert.equal(sumPoints(rsp, RS.resets, a.inode, { 'podnet.tcp.reset.kind': 'receive' }), 7);
  const ev = ctx.events.find((e) => e.netns === b.inode && e.type === 'TCPRESET_NOSOCK');
  assert.equal(ev?.attributes['network.local.port'], 7301);
  assert.equal(ev?.attributes['error.type'], 'NO_SOCKET');

  const sink = await tcpFixture(b, ['udpsink', '7302', '1']);
  children.push(sink.child);
  const k0 = nstat(b.name).get('UdpRcvbufErrors') ?? 0;
  pair.a.sendUdp(b.ipv4, 7302, 400, 300);
  const k = (nstat(b.name).get('UdpRcvbufErrors') ?? 0) - k0;
  assert.ok(k > 300);
  const overflowEvents = () =>
    ctx.events.filter((e) => e.netns === b.inode && e.type === 'UDP_RCVBUF_OVERFLOW').length;
  const ok = await waitFor(() => overflowEvents() >= k);
  const sop = await so.collect([]);
  assert.ok(
    ok,
    `${overflowEvents()} overflow events for ${k} overflows; ring lost ${selfPoint(sop, SELF_METRIC.lost)}, suppressed ${selfPoint(sop, SELF_METRIC.suppressed)}, read ${selfPoint(sop, SELF_METRIC.read)}; status ${JSON.stringify(so.status().details?.['events'])}`,
  );
  assert.equal(sumPoints(sop, SO.udp, b.inode, { 'podnet.udp.overflow.reason': 'receive_buffer' }), k);
  killChild(sink.child);
  assertDeclared(
    {
      events: [
        ...packetlossProbe.events,
        ...tcpresetProbe.events,
        ...tcpretransProbe.events,
        ...sockoverflowProbe.events,
      ],
    },
    ctx.events,
  );
});
