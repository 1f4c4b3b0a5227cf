// podnet outside the node's netns (the DaemonSet: hostNetwork false, the node's netns is /proc/1/ns/net):
// the default hook tc cannot find pods' veths or the node's devices from there (veth.ts and hostdev.ts
// attach by name in podnet's own netns), so it runs as tracepoint, which sees every netns, and says so
// (probes/dns/dns.ts, effectiveHook). This machine's sandbox cannot read /proc/1/ns/net (setns.ts falls
// back to the own netns), so the condition is forced; the counts show the tracepoints do the work.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createDnsProbe, type DnsArgs, dnsProbe, effectiveHook, M } from '../../probes/dns/dns.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { removeStaleNetns } from '../env/netns.ts';
import { counterPoint, testContext, waitFor } from '../latency/env.ts';
import { createPodNetns, type PodNetns } from './hostveth.ts';
import { DnsServer, dig } from './server.ts';

let pod: PodNetns;
let server: DnsServer;
let probe: Probe<DnsArgs>;

before(async () => {
  removeStaleNetns('pnd');
  pod = createPodNetns('o', 76);
  server = await DnsServer.start(pod.host);
  probe = await createDnsProbe({ outsideNodeNetns: true })(
    testContext([pod.entity]),
    dnsProbe.args.parse({ rateLimit: 0 }),
  );
});
after(async () => {
  await probe?.close();
  server?.stop();
  pod?.cleanup();
});

test('outside the node netns the default hook runs as tracepoint, with the reason, and counts', async () => {
  assert.deepEqual(effectiveHook('auto', true), { hook: 'auto' });
  assert.deepEqual(effectiveHook('tc', false), { hook: 'tc' });
  const st = probe.status();
  assert.equal(st.state, 'running', JSON.stringify(st));
  assert.equal(st.details?.['hook'], 'tracepoint');
  assert.match(String(st.details?.['hookReason']), /not in the node's netns/);
  const progs = ((st.details?.['programs'] ?? []) as { name: string; state: string }[])
    .filter((x) => x.state !== 'disabled')
    .map((x) => x.name)
    .sort();
  assert.deepEqual(progs, ['dns_dev_queue', 'dns_receive']);
  for (let i = 0; i < 3; i++) assert.equal(dig(pod.side, pod.host.ipv4, 'a.ok.podnet').status, 'NOERROR');
  const p = await probe.collect([]);
  assert.equal(counterPoint(p, M.responses, pod.side.inode, { 'network.transport': 'udp' }), 3);
  await waitFor(() => server.count(pod.side.ipv4, 'NOERROR') >= 3, 3000); // unbound's log lags
  assert.equal(server.count(pod.side.ipv4, 'NOERROR'), 3);
});
