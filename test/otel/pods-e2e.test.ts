// End to end with real pods: a private containerd (test/env/cri) runs pods created over CRI; podnet
// discovers them (pods.cri_endpoint), the synthetic probe reports per entity, and the OTLP receiver and
// /metrics show the pod's identity as the kernel knows it. When the pod is removed, its series stop being
// exported within two collection intervals.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { type OtlpReceiver, startOtlpReceiver } from '../env/otlp-receiver/receiver.ts';

const INTERVAL_MS = 500;
let env: CriEnv;
let rx: OtlpReceiver;
let agent: Agent;

function config(labels: readonly string[]): string {
  return `
collection_interval: ${INTERVAL_MS}ms
server: { address: "127.0.0.1:0" }
pods: { cri_endpoint: "${env.endpoint}", label_allowlist: [${labels.join(', ')}] }
probes: { synthetic: { enabled: true, args: { event_rate_per_sec: 50, unattributed: false } } }
exporters: { otlp: { endpoint: "${rx.httpEndpoint}", protocol: http/protobuf, interval: 300ms } }
event_queue: { schedule_delay: 100ms }
`;
}

before(async () => {
  env = await startCriEnv();
  rx = await startOtlpReceiver();
  agent = await Agent.start({
    configText: config(['app']),
    extraSpecs: [syntheticSpec],
    env: {},
  });
});

after(async () => {
  await agent?.stop();
  await rx?.down();
  const report = await env?.teardown();
  if (report) assert.deepEqual(report.leftovers, [], 'CRI env teardown left things behind');
});

async function promPodLines(uid: string): Promise<string[]> {
  const text = await (await fetch(`${agent.serverUrl}/metrics`)).text();
  return text.split('\n').filter((l) => l.includes(`k8s_pod_uid="${uid}"`));
}

test('a real pod: identity on metrics and events; gone within two intervals after removal', async (t) => {
  const web: TestPod = await env.runPod({
    name: 'web',
    namespace: 'shop',
    labels: { app: 'web', tier: 'x' },
  });
  const isWeb = (a: Record<string, unknown>) => a['k8s.pod.uid'] === web.uid;
  await rx.waitFor(
    () =>
      rx.points.some((p) => isWeb(p.resource)) &&
      rx.logs.some((l) => isWeb(l.resource) && l.eventName === 'podnet.synthetic.anomaly'),
    30_000,
    'the pod on OTLP metrics and events',
  );
  // The pod is the Resource of its points and events (the agent's attributes + the pod keys).
  const p = rx.points.find((x) => isWeb(x.resource) && x.name === 'podnet.synthetic.queue.length')!;
  assert.deepEqual(p.attributes, {});
  const agentRes = rx.points.find((x) => x.name === 'podnet.probe.state')!.resource;
  assert.equal(agentRes['k8s.pod.uid'], undefined);
  assert.deepEqual(p.resource, {
    ...agentRes,
    'podnet.entity.kind': 'pod',
    'podnet.netns.inode': web.netnsInode,
    'k8s.pod.uid': web.uid,
    'k8s.pod.name': 'web',
    'k8s.namespace.name': 'shop',
    'k8s.pod.label.app': 'web',
  });
  const ev = rx.logs.find((l) => isWeb(l.resource) && l.eventName === 'podnet.synthetic.anomaly')!;
  assert.deepEqual(ev.resource, p.resource);
  assert.equal(ev.attributes['k8s.pod.uid'], undefined);
  assert.match(
    String(ev.body),
    /^synthetic anomaly NETFILTER_DROP tcp 10\.0\.0\.1:\d+ -> 10\.0\.0\.2:80 in pod shop\/web \(kfree_skb_reason\)$/,
  );
  for (const l of rx.logs) assert.ok(typeof l.body === 'string' && l.body.length > 0, 'non-empty body');
  assert.ok((await promPodLines(web.uid)).length >= 4);
  const st = (await (await fetch(`${agent.serverUrl}/status`)).json()) as {
    discovery: { mode: string };
    entities: Array<{ pod: { uid: string } | null }>;
  };
  assert.equal(st.discovery.mode, 'cri');
  assert.ok(st.entities.some((e) => e.pod?.uid === web.uid));

  await env.removePod(web);
  const removedAt = Date.now();
  while ((await promPodLines(web.uid)).length > 0) {
    if (Date.now() - removedAt > 20_000) throw new Error('pod series still exported 20 s after removal');
    await new Promise((r) => setTimeout(r, 20));
  }
  const goneMs = Date.now() - removedAt;
  t.diagnostic(
    `pod series gone from /metrics ${goneMs} ms after RemovePodSandbox (interval ${INTERVAL_MS} ms)`,
  );
  // Discovery refreshes every interval and the next collection drops the series: ≤ 2 intervals, plus
  // scheduling slack on a busy 2-core machine.
  assert.ok(goneMs <= 2 * INTERVAL_MS + 1000, `pod series gone from /metrics only after ${goneMs} ms`);
  // OTLP exports that start from now on carry no series of the pod.
  const cut = BigInt(Date.now()) * 1_000_000n;
  await rx.waitFor(() => rx.points.some((x) => x.timeUnixNano > cut), 15_000, 'a later export');
  assert.equal(rx.points.filter((x) => x.timeUnixNano > cut && isWeb(x.resource)).length, 0);
});

test('hot reload of the pods section: a new label allow-list applies to a running pod; a bad endpoint is rejected', async () => {
  const api = await env.runPod({ name: 'api', namespace: 'shop', labels: { app: 'api', tier: 'backend' } });
  const apiLines = () => promPodLines(api.uid);
  const deadline = Date.now() + 20_000;
  while ((await apiLines()).length === 0) {
    if (Date.now() > deadline) throw new Error('pod api never exported');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok((await apiLines()).every((l) => !l.includes('k8s_pod_label_tier')));
  const t0 = Date.now();
  assert.deepEqual(await agent.reload(config(['app', 'tier'])), { ok: true });
  while (!(await apiLines()).some((l) => l.includes('k8s_pod_label_tier="backend"'))) {
    if (Date.now() - t0 > 10_000) throw new Error('label tier never appeared');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(Date.now() - t0 < 2000, `new allow-list applied after ${Date.now() - t0} ms`);
  const bad = await agent.reload(config(['app']).replace(env.endpoint, 'tcp://127.0.0.1:1'));
  assert.equal(bad.ok, false);
  assert.match(bad.error ?? '', /pods\.cri_endpoint: got "tcp:\/\/127\.0\.0\.1:1"/);
  await agent.collectNow();
  assert.ok(
    (await apiLines()).some((l) => l.includes('k8s_pod_label_tier="backend"')),
    'old settings kept',
  );
  await env.removePod(api);
});
