// /status `peers`: without API access the agent says it works from node-local knowledge and why; pointed
// at the protocol-fake API server (test/env/kube-api/server.ts, not a real kube-apiserver) it reports the
// cluster view once every list synced, and a hot reload turning the API off goes back to node-local.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { Agent } from '../../receiver/agent/agent.ts';
import { FakeKubeApi, pod } from '../env/kube-api/server.ts';

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
      assert.equal(api.watchers(), 0, 'watches closed');
    } finally {
      await api.close();
    }
  } finally {
    await agent.stop();
  }
});
