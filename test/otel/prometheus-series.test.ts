// /metrics rendered straight from the store's series (receiver/otel/prometheus-text.ts writePoints, while a
// collection has made no data points) must be the text of the data point path byte for byte, for every
// shape the store holds: int and double counters, up-down counters, gauges, histograms (a +Inf boundary, a
// NaN sum), pods with labels needing escape (\ " newline, non-ASCII), the host, a named netns, unattributed
// points (netns 0, an unknown netns), peer attributes, point attributes that are not joinable with the
// entity's (a key in both, an integer-like key), array/boolean/number values, node-scoped metrics, and
// podnet's self-telemetry (plain MetricData next to the store's). The data point path itself is checked
// against the SDK's PrometheusSerializer in prometheus-text.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { StoreMetricData } from '../../receiver/otel/metric-data.ts';
import { MetricStore } from '../../receiver/otel/metric-store.ts';
import { renderPrometheus, serializePrometheus } from '../../receiver/otel/prometheus-text.ts';
import { SelfTelemetry } from '../../receiver/otel/self-telemetry.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricDef, MetricPoint } from '../../receiver/probe/types.ts';
import { podEntity } from '../env/pod-entity.ts';

const AGENT = resourceFromAttributes({ 'service.name': 'podnet', 'k8s.node.name': 'node-"1"' });

// escaping cases in the pod name (1) and a label value (2), a non-ASCII namespace every other pod
const pod = (i: number): Entity =>
  podEntity(i, {
    uid: `0b8f3c2e-${i}`,
    name: i === 1 ? 'we\\ird\n"name"' : `web-${i}`,
    namespace: i % 2 ? 'shop' : 'café',
    labels: { app: `web${i}`, 'app.kubernetes.io/name': i === 2 ? 'x"y\\z' : 'web' },
  });
const ENTITIES: Entity[] = [
  { kind: 'host', netnsInode: 4026531840, netnsPath: '/proc/1/ns/net', displayName: 'host' },
  {
    kind: 'netns',
    netnsInode: 4026532999,
    netnsPath: '/run/netns/blue',
    netnsName: 'blue',
    displayName: 'blue',
  },
  ...Array.from({ length: 5 }, (_, i) => pod(i)),
];

const def = (name: string, kind: MetricDef['kind'], extra: Partial<MetricDef> = {}): MetricDef => ({
  name,
  kind,
  unit: '{packet}',
  description: `${name} description`,
  attributes: [],
  enabled: true,
  ...extra,
});
const DEFS: MetricDef[] = [
  def('t.counter.int', 'counter', { attributes: ['network.io.direction'] }),
  def('t.counter.double', 'counter', { unit: 's', description: 'line1\nline2 \\ back' }),
  def('t.updown', 'updowncounter', { unit: '' }),
  def('t.gauge.int', 'gauge', { attributes: ['network.connection.state'] }),
  def('t.gauge.double', 'gauge', { description: '', unit: 'By' }),
  def('t.hist', 'histogram', { unit: 's', attributes: ['network.transport'] }),
  def('t.node', 'gauge', { scope: 'node', attributes: ['cpu'] }),
  def('t.peer', 'counter', {
    attributes: ['podnet.peer.kind', 'podnet.peer.k8s.pod.name', 'podnet.peer.k8s.namespace.name'],
  }),
  def('t.odd', 'counter', { attributes: ['n', 'arr', 'b', '7', 'k8s.pod.name'] }),
];

const PEER = Object.freeze({
  'podnet.peer.kind': 'pod',
  'podnet.peer.k8s.pod.name': 'db-0',
  'podnet.peer.k8s.namespace.name': 'data',
});

/** Points of every shape; `extra` more counter series per entity (a long exposition). */
function points(round: number, extra = 0): MetricPoint[] {
  const out: MetricPoint[] = [];
  const netns = [...ENTITIES.map((e) => e.netnsInode), 0, 4026539999];
  for (const [i, n] of netns.entries()) {
    for (const dir of ['receive', 'transmit'])
      out.push({
        metric: 't.counter.int',
        netns: n,
        attributes: Object.freeze({ 'network.io.direction': dir }),
        value: (i + 1) * 2 ** 33 + round * 7,
      });
    out.push({ metric: 't.counter.double', netns: n, value: i * 0.25 + round + 1e-7 });
    out.push({ metric: 't.updown', netns: n, value: i - 3 - round });
    for (const state of ['established', 'time_wait'])
      out.push({
        metric: 't.gauge.int',
        netns: n,
        attributes: { 'network.connection.state': state }, // unfrozen: interned by the store
        value: -(2 ** 40) + i + round,
      });
    out.push({ metric: 't.gauge.double', netns: n, value: i / 3 + (round + 1) * 1e21 });
    out.push({
      metric: 't.hist',
      netns: n,
      attributes: { 'network.transport': 'tcp' },
      value: {
        boundaries: i % 2 ? [0.001, 0.01, 0.1, 1] : [0.5, Number.POSITIVE_INFINITY],
        counts: i % 2 ? [i, round, 1, 0, 2 ** 32 + 5] : [1, 2 + round, 0],
        sum: i === 3 ? Number.NaN : i * 0.5 + round,
        count: i % 2 ? i + round + 1 + 2 ** 32 + 5 : 3 + round,
      },
    });
    out.push({ metric: 't.peer', netns: n, attributes: PEER, value: i + round });
    // Not joinable with the entity keys: a key in both, an integer-like key; array, boolean, number values.
    out.push({ metric: 't.odd', netns: n, attributes: { 'k8s.pod.name': 'x', n: 1 }, value: 1 + round });
    out.push({ metric: 't.odd', netns: n, attributes: { '7': 'seven', b: false }, value: 2 + round });
    out.push({ metric: 't.odd', netns: n, attributes: { n: 5, arr: ['a', 'b"c'], b: true }, value: 3 });
    for (let k = 0; k < extra; k++)
      out.push({
        metric: 't.counter.int',
        netns: n,
        attributes: Object.freeze({ 'network.io.direction': `d${k}` }),
        value: k + round,
      });
  }
  for (const cpu of ['0', '1'])
    out.push({ metric: 't.node', attributes: { cpu }, value: Number(cpu) + round });
  return out;
}

function newStore(): MetricStore {
  const store = new MetricStore({
    entities: new StaticEntitySource(ENTITIES),
    labelAllowlist: ['app', 'app.kubernetes.io/*'],
  });
  store.setDefinitions(DEFS.map((d) => ({ def: d, probe: 'p', enabled: true })));
  const self = new SelfTelemetry();
  self.recordCollection('p', 0.012, true);
  self.recordCollection('q', 1.5, false);
  store.addSource(() => self.metrics());
  return store;
}

async function collect(store: MetricStore): Promise<ResourceMetrics> {
  return { ...(await store.collect()).resourceMetrics, resource: AGENT };
}

/** Store metrics of `rm` whose data points were not made (the render then reads the series). */
function unmade(rm: ResourceMetrics): number {
  let n = 0;
  for (const sm of rm.scopeMetrics)
    for (const m of sm.metrics) if (m instanceof StoreMetricData && m.points === undefined) n++;
  return n;
}

/** `rm` with every data point made: the render reads the points, not the series. */
function made(rm: ResourceMetrics): ResourceMetrics {
  for (const sm of rm.scopeMetrics) for (const m of sm.metrics) void m.dataPoints;
  assert.equal(unmade(rm), 0);
  return rm;
}

/** Two collections of the same state, rendered: from the series, and from data points. */
async function both(store: MetricStore): Promise<{ series: string; points: string; rm: ResourceMetrics }> {
  const rm = await collect(store);
  const twin = made(await collect(store));
  // The self-telemetry of both: the first collection's (it reads the clock).
  const points = serializePrometheus({
    ...twin,
    scopeMetrics: twin.scopeMetrics.map((sm, i) => ({
      scope: sm.scope,
      metrics: sm.metrics.map((m, j) => (m instanceof StoreMetricData ? m : rm.scopeMetrics[i]!.metrics[j]!)),
    })),
  });
  assert.equal(unmade(rm), DEFS.length, 'every store metric is a StoreMetricData with no points yet');
  const series = serializePrometheus(rm);
  assert.equal(unmade(rm), DEFS.length, 'the render read the series, not data points');
  return { series, points, rm };
}

test('/metrics from the series = /metrics from the data points, byte for byte, every shape', async () => {
  const store = newStore();
  for (let round = 0; round < 3; round++) {
    store.update('p', points(round), 1_750_000_000_000 + round * 15_000);
    const { series, points: fromPoints } = await both(store);
    assert.equal(series, fromPoints, `round ${round}`);
    // The sample covers what it claims.
    for (const needle of [
      't_hist_seconds_bucket{',
      'le="+Inf"',
      't_hist_seconds_sum{',
      ' NaN\n',
      'k8s_pod_name="we\\\\ird\\n\\"name\\""',
      'k8s_node_name="node-\\"1\\""',
      'podnet_peer_kind="pod"',
      'arr="[\\"a\\",\\"b\\\\\\"c\\"]"',
      '7="seven"',
      't_node{cpu="0"',
      'podnet_probe_collection_duration_seconds_count{',
      'café',
      'e+21',
    ])
      assert.ok(series.includes(needle), `round ${round}: the exposition has ${needle}`);
  }
});

test('a long exposition (lines from encoded parts, 2,700 series) = the data points, byte for byte', async () => {
  const store = newStore();
  for (let round = 0; round < 2; round++) {
    // 9 netns × 300 extra series: several chunks, entity label bytes reused across thousands of lines.
    store.update('p', points(round, 300), 1_750_000_000_000 + round * 15_000);
    const { series, points: fromPoints } = await both(store);
    assert.ok(series.split('\n').length > 2_700, 'a long exposition');
    assert.equal(series, fromPoints, `round ${round}`);
    for (const needle of ['k8s_pod_name="we\\\\ird\\n\\"name\\""', 'network_io_direction="d299"', 'café'])
      assert.ok(series.includes(needle), `round ${round}: the exposition has ${needle}`);
  }
});

test('a test that cannot fail is a defect: a changed value changes the text', async () => {
  const store = newStore();
  store.update('p', points(0), 1_750_000_000_000);
  const before = (await both(store)).series;
  store.update('p', points(1), 1_750_000_015_000);
  assert.notEqual((await both(store)).series, before);
});

test('an exposition streamed across an update has the values it was collected with; a done one is released', async () => {
  const store = newStore();
  store.update('p', points(0, 400), 1_750_000_000_000);
  const rm = await collect(store);
  const want = serializePrometheus(made(await collect(store))).split('\n');
  const it = renderPrometheus(rm);
  const first = it.next();
  assert.ok(!first.done && first.value.length > 40_000, 'a full chunk first');
  // The next collection changes every series in place: the open collection made its points first.
  store.update('p', points(1, 400), 1_750_000_015_000);
  assert.equal(unmade(rm), 0, 'the open collection made its data points before the update');
  const rest = [...it];
  assert.ok(rest.length > 1, 'more chunks after the update');
  const got = Buffer.concat([first.value, ...rest])
    .toString('utf8')
    .split('\n');
  // Self-telemetry reads the clock: compare the store's lines.
  const storeLines = (lines: string[]) => lines.filter((l) => /^(# (HELP|TYPE) )?t_/.test(l));
  assert.deepEqual(storeLines(got), storeLines(want));
  assert.ok(storeLines(want).length > 3_000);
  // A rendered collection is released: the next update does not make its points.
  const done = await collect(store);
  serializePrometheus(done);
  store.update('p', points(2, 400), 1_750_000_030_000);
  assert.equal(unmade(done), DEFS.length);
});
