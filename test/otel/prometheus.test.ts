// A real Prometheus scrapes podnet's /metrics; PromQL returns podnet series with the expected labels and
// values, rates work on the counters, and histograms work with histogram_quantile. The names are those of
// the OTel→Prometheus translation with unit suffixes (`_bytes`, `_seconds`, `_total`): the same names
// Prometheus 3 and Mimir give the data received over OTLP; promtool's linter finds nothing to say (no
// gauge ends in `_count`). The host netns's traffic is the node's (`k8s_node_network_io_bytes_total`).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { netdevProbe } from '../../probes/netdev/netdev.ts';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { Prometheus } from '../env/prometheus.ts';

let agent: Agent;
let prom: Prometheus;

before(async () => {
  agent = await Agent.start({
    configText: `
collection_interval: 250ms
server: { address: "127.0.0.1:0" }
probes: { synthetic: { enabled: true, args: { counter_step: 5, gauge_value: 3 } } }
`,
    specs: [],
    extraSpecs: [syntheticSpec, netdevProbe],
    env: {},
  });
  prom = await Prometheus.start([{ job: 'podnet', target: new URL(agent.serverUrl!).host }]);
});

after(async () => {
  await prom?.stop();
  await agent?.stop();
});

test('Prometheus scrapes /metrics and PromQL returns podnet series', async () => {
  await prom.waitFor('up{job="podnet"}', (r) => r.length === 1 && r[0]!.value === 1);
  const gauge = await prom.waitFor(
    'podnet_synthetic_queue_length{podnet_entity_kind="host"}',
    (r) => r.length === 1,
  );
  assert.equal(gauge[0]!.value, 3);
  assert.match(gauge[0]!.metric['podnet_netns_inode'] ?? '', /^\d+$/);
  assert.equal(gauge[0]!.metric['job'], 'podnet');

  // Counter: +5 per collection on receive, twice that on transmit. How often collections run is the
  // machine's doing (every 250 ms when idle; under load a collection can pass its 1 s limit and space the
  // next ones out, and a fixed expected rate then never came), so rate() is checked against the samples
  // Prometheus scraped, read at the same evaluation time: PromQL extrapolates the increase between the first
  // and last sample of the window over at most the gaps to the window's ends, so the rate lies between
  // increase / window and increase / (last - first sample time); transmit's is exactly twice receive's.
  const sel = (dir: string) =>
    `podnet_synthetic_packet_count_total{podnet_entity_kind="host",network_io_direction="${dir}"}`;
  const WINDOW_S = 10;
  const { raw, rx, tx } = await stableRate(sel, WINDOW_S);
  const first = raw[0]!;
  const last = raw.at(-1)!;
  for (const [i, s] of raw.entries()) {
    assert.equal(s.v % 5, 0, `sample ${i} (${s.v}) is a whole number of collections`);
    if (i > 0) assert.ok(s.v >= raw[i - 1]!.v, `sample ${i} (${s.v}) below the one before`);
  }
  const increase = last.v - first.v;
  assert.ok(increase > 0, `increase ${increase}`);
  assert.ok(
    rx >= increase / WINDOW_S && rx <= increase / (last.t - first.t),
    `rate ${rx} outside [${increase / WINDOW_S}, ${increase / (last.t - first.t)}] of ${JSON.stringify(raw)}`,
  );
  assert.equal(tx, 2 * rx, 'transmit rate');
  const ratio = await prom.query(
    'podnet_synthetic_packet_count_total{podnet_entity_kind="host",network_io_direction="transmit"} / ignoring(network_io_direction) podnet_synthetic_packet_count_total{podnet_entity_kind="host",network_io_direction="receive"}',
  );
  assert.equal(ratio.length, 1);
  assert.equal(ratio[0]!.value, 2);

  // Histogram buckets are usable: equal counts per bucket → median in the (0.001, 0.01] bucket... (2.5 of 5).
  const q = await prom.waitFor(
    'histogram_quantile(0.5, sum by (le) (podnet_synthetic_latency_duration_seconds_bucket{podnet_entity_kind="host"}))',
    (r) => r.length === 1 && Number.isFinite(r[0]!.value),
  );
  assert.ok(q[0]!.value > 0.01 && q[0]!.value <= 0.1, `median ${q[0]!.value}`);

  // Self-telemetry is scrapable too.
  const state = await prom.waitFor(
    'podnet_probe_state{podnet_probe_name="synthetic"}',
    (r) => r.length === 1,
  );
  assert.equal(state[0]!.metric['podnet_probe_state'], 'running');
  const durations = await prom.waitFor(
    'podnet_probe_collection_duration_seconds_count{podnet_probe_name="synthetic"}',
    (r) => r.length === 1 && r[0]!.value > 0,
  );
  assert.equal(durations.length, 1);
});

test('suffixed names: node traffic under k8s_node_network_io_bytes_total, the unsuffixed names gone', async () => {
  const node = await prom.waitFor(
    'k8s_node_network_io_bytes_total{podnet_entity_kind="host",network_io_direction="receive"}',
    (r) => r.length >= 1,
  );
  assert.ok(node.every((r) => r.metric['network_interface_name'] !== 'lo'));
  assert.deepEqual(await prom.query('k8s_pod_network_io_bytes_total{podnet_entity_kind="host"}'), []);
  for (const old of ['k8s_pod_network_io_total', 'podnet_synthetic_latency_duration_bucket'])
    assert.deepEqual(await prom.query(`{__name__="${old}"}`), [], old);
  // Every name Prometheus stored from this target: counters end in _total, no gauge in _count.
  const names = await prom.query('count by (__name__) ({job="podnet"})');
  assert.ok(names.length > 10);
  const text = await (await fetch(`${agent.serverUrl}/metrics`)).text();
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(lint.status, 0, `promtool check metrics:\n${lint.stdout}${lint.stderr}`);
});

/**
 * The receive samples of the last `windowS` seconds (at least 2, with an increase) and the receive and
 * transmit rates over that window, all evaluated at one time a second ago; read again if a scrape landed
 * inside the window between the reads (the samples before and after the rates differ).
 */
async function stableRate(
  sel: (dir: string) => string,
  windowS: number,
): Promise<{ raw: readonly { t: number; v: number }[]; rx: number; tx: number }> {
  const rate = async (dir: string, at: number) => {
    const r = await prom.query(`rate(${sel(dir)}[${windowS}s])`, at);
    assert.equal(r.length, 1, `rate of ${dir}: ${JSON.stringify(r)}`);
    return r[0]!.value;
  };
  const samples = async (at: number) => {
    const r = await prom.samples(`${sel('receive')}[${windowS}s]`, at);
    return r.length === 1 ? r[0]!.samples : [];
  };
  const deadline = Date.now() + 30_000;
  let seen: readonly { t: number; v: number }[] = [];
  while (Date.now() < deadline) {
    const at = Date.now() / 1000 - 1;
    seen = await samples(at);
    if (seen.length >= 2 && seen.at(-1)!.v > seen[0]!.v) {
      const rx = await rate('receive', at);
      const tx = await rate('transmit', at);
      if (JSON.stringify(await samples(at)) === JSON.stringify(seen)) return { raw: seen, rx, tx };
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no stable window of ${windowS} s with an increase; last samples ${JSON.stringify(seen)}`);
}
