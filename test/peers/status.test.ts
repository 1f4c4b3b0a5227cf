// /status `peers`: without API access the agent says it works from node-local knowledge and why; pointed
// at the protocol-fake API server (test/env/kube-api/server.ts, not a real kube-apiserver) it reports the
// cluster view once every list synced, and a hot reload turning the API off goes back to node-local.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { peersProbe } from '../../probes/peers/peers.ts';
import type { AnyProbeSpec } from '../../probes/registry.ts';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { tcpresetProbe } from '../../probes/tcpreset/tcpreset.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { endpointSlice, FakeKubeApi, pod, service } from '../env/kube-api/server.ts';

const tokenFile = `/tmp/podnet-peers-status-token-${process.pid}`;
after(() => rmSync(tokenFile, { force: true }));

async function status(agent: Agent): Promise<Record<string, unknown>> {
  const r = await fetch(`${agent.serverUrl}/status`);
  assert.equal(r.status, 200);
  return ((await r.json()) as { peers: Record<string, unknown> }).peers;
}

test('/status peers: node-local without API access; cluster with it; back to node-local when switched off', async () => {
  const base =
    'collection_interval: 1h\nserver: { address: "127.0.0.1:0" }\npods: { netns_discovery: never }\n';
  const agent = await Agent.start({ configText: base, specs: [], env: {} });
  try {
    const s0 = await status(agent);
    assert.equal(s0['view'], 'node-local');
    assert.match(String((s0['kubernetes'] as { reason: string }).reason), /KUBERNETES_SERVICE_HOST unset/);

    const api = await FakeKubeApi.start({ token: 't0k' });
    writeFileSync(tokenFile, 't0k');
    api.apply('pods', pod({ name: 'a', namespace: 'n', ips: ['10.9.0.1'] }));
    try {
      await agent.reload(
        `${base}peers: { kubernetes: { mode: on, api_server: "${api.url}", token_file: "${tokenFile}" } }\n`,
      );
      const deadline = Date.now() + 10_000;
      while ((await status(agent))['view'] !== 'cluster' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const s1 = await status(agent);
      assert.equal(s1['view'], 'cluster');
      const k = s1['kubernetes'] as { server: string; objects: { pods: number }; addresses: number };
      assert.equal(k.server, api.url);
      assert.equal(k.objects.pods, 1);
      assert.equal(agent.peers.resolve('10.9.0.1').info.pod, 'a');
      await agent.reload(`${base}peers: { kubernetes: { mode: off } }\n`);
      const s2 = await status(agent);
      assert.equal(s2['view'], 'node-local');
      // the agent closed its watch requests; the server sees each connection's close a moment later
      const closedBy = Date.now() + 10_000;
      while (api.watchers() > 0 && Date.now() < closedBy) await new Promise((r) => setTimeout(r, 20));
      assert.equal(api.watchers(), 0, 'watches closed');
    } finally {
      await api.close();
    }
  } finally {
    await agent.stop();
  }
});

test('per-peer counters end to end: events → peer resolution → probe peers → /metrics, keyed by the peer Service', async () => {
  const api = await FakeKubeApi.start({ token: 't0k' });
  writeFileSync(tokenFile, 't0k');
  api.apply(
    'pods',
    pod({
      name: 'api-5f-x',
      namespace: 'pay',
      ips: ['10.9.1.1'],
      replicaSet: { name: 'api-5f', hash: '5f' },
    }),
  );
  api.apply('pods', pod({ name: 'db-0', namespace: 'pay', ips: ['10.9.1.2'] }));
  api.apply('services', service({ name: 'api', namespace: 'pay', clusterIPs: ['10.96.9.1'] }));
  api.apply(
    'endpointslices',
    endpointSlice({ name: 'api-a', namespace: 'pay', service: 'api', addresses: ['10.9.1.1'] }),
  );
  // a probe that emits resets the way tcpreset does (socket tuple), to the Service's pod and to db-0
  let emit: ((peer: string) => void) | undefined;
  const resetSpec: AnyProbeSpec = {
    ...syntheticSpec,
    name: 'fake-resets',
    metrics: [],
    events: [{ ...tcpresetProbe.events[0]! }],
    async create(ctx) {
      emit = (peer) =>
        ctx.emit({
          name: 'podnet.tcp.reset',
          type: 'TCPRESET_RECEIVE',
          netns: 0,
          timeUnixNano: BigInt(Date.now()) * 1_000_000n,
          attributes: {
            'network.local.address': '10.9.9.9',
            'network.peer.address': peer,
            'network.peer.port': 80,
          },
        });
      return { collect: async () => [], status: () => ({ state: 'running' }), close: async () => {} };
    },
  };
  const agent = await Agent.start({
    configText: `collection_interval: 1h
server: { address: "127.0.0.1:0" }
pods: { netns_discovery: never }
probes: { fake-resets: { enabled: true }, peers: { enabled: true } }
peers: { kubernetes: { mode: on, api_server: "${api.url}", token_file: "${tokenFile}" } }
`,
    specs: [peersProbe, resetSpec],
    env: {},
  });
  try {
    const deadline = Date.now() + 10_000;
    while ((await status(agent))['view'] !== 'cluster' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 3; i++) emit!('10.9.1.1');
    emit!('10.9.1.2');
    emit!('10.96.9.1');
    await agent.collectNow();
    const text = await (await fetch(`${agent.serverUrl}/metrics`)).text();
    const line = (re: RegExp) =>
      text.split('\n').find((l) => l.startsWith('podnet_peer_tcp_reset_events_total') && re.test(l));
    // the pod behind the Service and the ClusterIP itself both count under the Service
    assert.match(line(/podnet_peer_k8s_service_name="api"/) ?? '', /podnet_peer_kind="pod".* 3$/);
    assert.match(line(/podnet_peer_kind="service"/) ?? '', /podnet_peer_k8s_service_name="api".* 1$/);
    // a pod without a Service counts under its workload
    assert.match(line(/podnet_peer_k8s_workload_name="db-0"/) ?? '', / 1$/);
  } finally {
    await agent.stop();
    await api.close();
  }
});
