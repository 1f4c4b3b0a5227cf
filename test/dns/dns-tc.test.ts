// dns probe with `hook: tc` (the default) on the pod's host-side veth against unbound in the host netns: UDP and TCP,
// IPv4 and IPv6; counts equal what dig saw and what the server logged. TCP DNS is complete here (the TC
// programs read payload in page frags; the tracepoint hooks cannot, see docs/probes-dns.md). Attached as
// TCX links (this kernel's `auto`) and, forced, as a clsact filter next to flow's own clsact filter on the
// same veth (each probe owns its filter: neither replaces the other; both gone after close).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { createDnsProbe, type DnsArgs, dnsProbe, M } from '../../probes/dns/dns.ts';
import { type FlowArgs, flowProbe } from '../../probes/flow/flow.ts';
import type { MetricPoint, Probe } from '../../receiver/probe/types.ts';
import { removeStaleNetns } from '../env/netns.ts';
import { counterPoint, testContext } from '../latency/env.ts';
import { createPodNetns, type PodNetns } from './hostveth.ts';
import { DnsServer, dig } from './server.ts';

const RC = 'podnet.dns.response_code';
let pod: PodNetns;
let server: DnsServer;
let probe: Probe<DnsArgs>;
let auto: Probe<DnsArgs>;
let byDefault: Probe<DnsArgs>;
let clsact: Probe<DnsArgs>;
let flow: Probe<FlowArgs>;
const filters = (dir: string) =>
  execFileSync('tc', ['filter', 'show', 'dev', pod.entity.hostVeth!, dir], { encoding: 'utf8' }).trim();

before(async () => {
  removeStaleNetns('pnd');
  pod = createPodNetns('t', 71);
  server = await DnsServer.start(pod.host);
  probe = await dnsProbe.create(
    testContext([pod.entity]),
    dnsProbe.args.parse({ hook: 'tc', attachMode: 'tcx' }),
  );
  // `auto` at the same time: TC for this pod (it has a veth), so TCP is seen too; the tracepoints leave it alone
  auto = await dnsProbe.create(testContext([pod.entity]), dnsProbe.args.parse({ hook: 'auto' }));
  // the default (`tc`): the same counts without the tracepoint programs on every packet of the node
  byDefault = await dnsProbe.create(testContext([pod.entity]), dnsProbe.args.parse({}));
  // clsact (the fallback before 6.6), with flow's clsact filter on the same veth
  clsact = await dnsProbe.create(
    testContext([pod.entity]),
    dnsProbe.args.parse({ hook: 'tc', attachMode: 'tc' }),
  );
  flow = await flowProbe.create(
    testContext([pod.entity]),
    flowProbe.args.parse({ attachMode: 'tc', ports: true }),
  );
});

after(async () => {
  await probe?.close();
  await auto?.close();
  await byDefault?.close();
  await clsact?.close();
  await flow?.close();
  server?.stop();
  pod?.cleanup();
});

test('tc and auto hooks: UDP and TCP, IPv4 and IPv6, answered / NXDOMAIN / SERVFAIL equal dig and the server log', async () => {
  for (const [pr, mode] of [
    [probe, 'tcx'],
    [auto, 'tcx'],
    [byDefault, 'tcx'],
    [clsact, 'tc'],
  ] as const) {
    const st = pr.status();
    assert.equal(st.state, 'running', JSON.stringify(st));
    assert.equal(st.details?.['attachMode'], mode);
  }
  // the default loads no per-packet tracepoint: TC for pods' veths and for the host's own devices
  const progs = (pr: Probe<DnsArgs>) =>
    ((pr.status().details?.['programs'] ?? []) as { name: string; state: string }[])
      .filter((p) => p.state !== 'disabled')
      .map((p) => p.name)
      .sort();
  assert.equal(byDefault.status().details?.['hook'], 'tc');
  assert.deepEqual(
    progs(byDefault),
    ['dns_host_egress', 'dns_host_ingress', 'dns_tc_egress', 'dns_tc_ingress'],
    JSON.stringify(byDefault.status()),
  );
  assert.deepEqual(progs(auto), ['dns_dev_queue', 'dns_receive', 'dns_tc_egress', 'dns_tc_ingress']);
  // two cls_bpf filters per direction: flow's and dns's
  assert.equal(filters('ingress').match(/direct-action/g)?.length, 2, filters('ingress'));
  assert.equal(filters('egress').match(/direct-action/g)?.length, 2, filters('egress'));
  const seen: Record<string, number> = {};
  const ask = (server: string, name: string, o: Parameters<typeof dig>[3] = {}) => {
    const r = dig(pod.side, server, name, o);
    seen[r.status] = (seen[r.status] ?? 0) + 1;
  };
  const h = pod.host;
  for (let i = 0; i < 4; i++) ask(h.ipv4, 'a.ok.podnet');
  for (let i = 0; i < 3; i++) ask(h.ipv4, 'a.ok.podnet', { tcp: true });
  for (let i = 0; i < 2; i++) ask(h.ipv6, 'a.ok.podnet', { type: 'AAAA', tcp: true });
  for (let i = 0; i < 2; i++) ask(h.ipv6, `nx${i}.ok.podnet`);
  for (let i = 0; i < 2; i++) ask(h.ipv4, `s${i}.fail.podnet`, { tcp: true });
  assert.deepEqual(seen, { NOERROR: 9, NXDOMAIN: 2, SERVFAIL: 2 });
  const logged = (rc: string) => server.count(pod.side.ipv4, rc) + server.count(pod.side.ipv6, rc);
  const start = Date.now();
  while (server.replies.length < 13 && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual([logged('NOERROR'), logged('NXDOMAIN'), logged('SERVFAIL')], [9, 2, 2]);
  for (const [hook, pr] of [
    ['tc (TCX)', probe],
    ['auto', auto],
    ['default', byDefault],
    ['tc (clsact)', clsact],
  ] as const) {
    const p = await pr.collect([]);
    const n = (metric: string, m: Record<string, string>) => counterPoint(p, metric, pod.side.inode, m);
    assert.deepEqual(
      [
        n(M.responses, { [RC]: 'NOERROR' }),
        n(M.responses, { [RC]: 'NXDOMAIN' }),
        n(M.responses, { [RC]: 'SERVFAIL' }),
        n(M.responses, { 'network.transport': 'tcp' }),
        n(M.queries, { 'network.transport': 'tcp' }),
        n(M.queries, { 'network.transport': 'udp' }),
      ],
      [9, 2, 2, 7, 7, 6],
      hook,
    );
  }
  // flow's filter still counts beside dns's: the UDP queries the pod sent to port 53 over IPv4 (4) and IPv6 (2)
  const fp = await flow.collect([]);
  const udp53 = (addr: string) =>
    counterPoint(fp, 'podnet.flow.packet.count', pod.side.inode, {
      'network.io.direction': 'transmit',
      'network.transport': 'udp',
      'network.peer.address': addr,
      'network.peer.port': 53,
    });
  assert.deepEqual([udp53(h.ipv4), udp53(h.ipv6)], [4, 2]);
});

test('close() removes the clsact filters of dns and flow from the veth', async () => {
  await clsact.close();
  assert.equal(filters('ingress').match(/direct-action/g)?.length, 1, 'flow keeps its own');
  await flow.close();
  assert.equal(filters('ingress'), '');
  assert.equal(filters('egress'), '');
});

test('one tracepoint program refused: the other is detached too (no false timeouts), TC keeps counting', async () => {
  const without = createDnsProbe({ withoutPrograms: ['dns_receive'] });
  // a query seen without its response would be swept as a timeout within 200 ms
  const tp = await without(
    testContext([pod.entity]),
    dnsProbe.args.parse({ hook: 'tracepoint', timeoutMs: 200, sweepMs: 100 }),
  );
  const au = await without(testContext([pod.entity]), dnsProbe.args.parse({ hook: 'auto' }));
  try {
    const state = (pr: Probe<DnsArgs>, n: string) =>
      ((pr.status().details?.['programs'] ?? []) as { name: string; state: string; reason?: string }[]).find(
        (p) => p.name === n,
      );
    assert.equal(tp.status().state, 'unavailable');
    assert.equal(state(tp, 'dns_dev_queue')?.state, 'unavailable');
    assert.match(String(state(tp, 'dns_dev_queue')?.reason), /^detached: dns_receive does not run/);
    assert.equal(au.status().state, 'degraded');
    assert.equal(state(au, 'dns_tc_ingress')?.state, 'loaded');
    const before = await tp.collect([]);
    assert.equal(dig(pod.side, pod.host.ipv4, 'a.ok.podnet').status, 'NOERROR');
    await new Promise((r) => setTimeout(r, 1000)); // 5 timeout windows
    const n = (p: readonly MetricPoint[], m: string) => counterPoint(p, m, pod.side.inode);
    const after = await tp.collect([]);
    assert.deepEqual(
      [n(after, M.queries) - n(before, M.queries), n(after, M.timeouts) - n(before, M.timeouts)],
      [0, 0],
    );
    const a = await au.collect([]);
    assert.equal(counterPoint(a, M.responses, pod.side.inode, { [RC]: 'NOERROR' }), 1, 'TC counted it');
  } finally {
    await tp.close();
    await au.close();
  }
});
