// dns on a real pod: a private containerd with a CNI bridge (test/env/cri), the pod found by the real pod
// discovery (EntityRegistry over CRI, which also reports its host-side veth), busybox `nslookup` in the
// pod's container against unbound listening on the bridge gateway in the host netns. The three hook
// settings run at once (separate objects); each counts what unbound logged for the pod's address.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type DnsArgs, dnsProbe, M } from '../../probes/dns/dns.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { EntityRegistry } from '../../receiver/pods/registry.ts';
import type { Probe, ProbeContext } from '../../receiver/probe/types.ts';
import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { counterPoint, waitFor } from '../latency/env.ts';
import { hostSide } from './hostveth.ts';
import { DnsServer } from './server.ts';

const RC = 'podnet.dns.response_code';
let env: CriEnv | undefined;
let reg: EntityRegistry | undefined;
let pod: TestPod;
let server: DnsServer | undefined;
const probes: Probe<DnsArgs>[] = [];

before(async () => {
  env = await startCriEnv();
  pod = await env.runPod({ name: 'pnd-client', namespace: 'pnd', containers: [{ name: 'c' }] });
  reg = new EntityRegistry({ criEndpoint: env.endpoint, refreshIntervalMs: 60_000 });
  await reg.start();
  const gw = env.gateway;
  server = await DnsServer.start(hostSide(gw, '::1'));
});

after(async () => {
  for (const p of probes) await p.close();
  server?.stop();
  reg?.stop();
  const report = await env?.teardown();
  if (report) assert.deepEqual(report.leftovers, []);
});

test('a real pod: nslookup answers and NXDOMAINs counted by every hook setting as unbound logged them', async () => {
  const e = reg!.entities().find((x) => x.pod?.uid === pod.uid) as Entity;
  assert.ok(e?.hostVeth, 'the pod and its host-side veth are discovered');
  const ctx: ProbeContext = { log: childLogger('test'), entities: reg!, emit() {} };
  for (const hook of ['tracepoint', 'tc', 'auto'] as const)
    probes.push(await dnsProbe.create(ctx, dnsProbe.args.parse({ hook })));
  const gw = env!.gateway;
  for (let i = 0; i < 3; i++) {
    const r = await env!.exec(pod, ['nslookup', 'a.ok.podnet', gw]);
    assert.match(r.stdout, /10\.99\.0\.1/, r.stdout + r.stderr);
  }
  for (let i = 0; i < 2; i++) await env!.exec(pod, ['nslookup', `nx${i}.ok.podnet`, gw]);
  const logged = (rc: string) => server!.count(pod.ip, rc);
  await waitFor(() => logged('NXDOMAIN') >= 2, 3000);
  assert.ok(logged('NOERROR') >= 3 && logged('NXDOMAIN') >= 2, JSON.stringify(server!.replies));
  for (const p of probes) {
    const pts = [...(await p.collect([e]))];
    assert.equal(counterPoint(pts, M.responses, e.netnsInode, { [RC]: 'NOERROR' }), logged('NOERROR'));
    assert.equal(counterPoint(pts, M.responses, e.netnsInode, { [RC]: 'NXDOMAIN' }), logged('NXDOMAIN'));
  }
});
