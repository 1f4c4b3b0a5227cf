// dns probe with `hook: tc` (TCX on the pod's host-side veth) against unbound in the host netns: UDP and
// TCP, IPv4 and IPv6; counts equal what dig saw and what the server logged. TCP DNS is complete here (the
// TC programs read payload in page frags; the tracepoint hooks cannot, see docs/probes-dns.md).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type DnsArgs, dnsProbe, M } from '../../probes/dns/dns.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { removeStaleNetns } from '../env/netns.ts';
import { counterPoint, testContext } from '../latency/env.ts';
import { createPodNetns, type PodNetns } from './hostveth.ts';
import { DnsServer, dig } from './server.ts';

const RC = 'podnet.dns.response_code';
let pod: PodNetns;
let server: DnsServer;
let probe: Probe<DnsArgs>;
let auto: Probe<DnsArgs>;

before(async () => {
  removeStaleNetns('pnd');
  pod = createPodNetns('t', 71);
  server = await DnsServer.start(pod.host);
  probe = await dnsProbe.create(testContext([pod.entity]), dnsProbe.args.parse({ hook: 'tc' }));
  // the default, `auto`, at the same time: TC for this pod (it has a veth), so TCP is seen too
  auto = await dnsProbe.create(testContext([pod.entity]), dnsProbe.args.parse({}));
});

after(async () => {
  await probe?.close();
  await auto?.close();
  server?.stop();
  pod?.cleanup();
});

test('tc and auto hooks: UDP and TCP, IPv4 and IPv6, answered / NXDOMAIN / SERVFAIL equal dig and the server log', async () => {
  const st = probe.status();
  assert.equal(st.state, 'running', JSON.stringify(st));
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
    ['tc', probe],
    ['auto', auto],
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
});
