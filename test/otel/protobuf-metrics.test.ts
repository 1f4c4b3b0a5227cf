// The direct OTLP metrics encoder (receiver/otel/protobuf/metrics.ts) against the SDK: for every shape
// podnet exports (cumulative and delta monotonic sums, non-monotonic sums, int and double gauges, explicit
// bucket histograms; pods with labels, the host, a named netns, unattributed points, node-scoped metrics
// and podnet's own telemetry on the agent's Resource) plus the shapes the SDK's types allow beyond them
// (several scopes with version, attributes and schema URL; a Resource schema URL; histograms with min,
// max, no sum, no buckets; array, boolean, negative, 64-bit and non-integer attribute values; non-ASCII
// text; metrics without points), the requests must be the SDK path's bytes exactly:
// EntityResources.byEntity → splitResourceMetrics → @opentelemetry/otlp-transformer's
// ProtobufMetricsSerializer per ResourceMetrics, concatenated. Request sizes from 1 point upwards cover
// the cuts of a Resource, a scope and a metric across requests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValueType } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type MetricData,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { DeltaProducer } from '../../receiver/otel/delta.ts';
import { EntityResources } from '../../receiver/otel/entity-resources.ts';
import { StoreMetricData } from '../../receiver/otel/metric-data.ts';
import { MetricStore } from '../../receiver/otel/metric-store.ts';
import { encodeMetricRequests, metricRequests } from '../../receiver/otel/protobuf/metrics.ts';
import { SelfTelemetry } from '../../receiver/otel/self-telemetry.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricDef, MetricPoint } from '../../receiver/probe/types.ts';
import { podEntity } from '../env/pod-entity.ts';
import { sdkRequests, twin } from './sdk-path.ts';

const AGENT = resourceFromAttributes(
  { 'service.name': 'podnet', 'k8s.node.name': 'node-1', 'host.name': 'node-1' },
  { schemaUrl: 'https://opentelemetry.io/schemas/1.37.0' },
);

// a non-ASCII namespace every other pod, and labels
const pod = (i: number): Entity =>
  podEntity(i, {
    namespace: i % 2 ? 'shop' : 'café',
    labels: { app: `web${i}`, 'app.kubernetes.io/name': 'web' },
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
  ...Array.from({ length: 6 }, (_, i) => pod(i)),
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
  def('t.counter.double', 'counter', { unit: 's' }),
  def('t.updown', 'updowncounter', { unit: '' }),
  def('t.gauge.int', 'gauge', { attributes: ['network.connection.state'] }),
  def('t.gauge.double', 'gauge', { description: '' }),
  def('t.hist', 'histogram', { unit: 's', attributes: ['network.transport'] }),
  def('t.node', 'gauge', { scope: 'node', attributes: ['cpu'] }),
];

function points(round: number): MetricPoint[] {
  const out: MetricPoint[] = [];
  // Entities, plus netns 0 (unattributed) and an unknown netns (unattributed with its inode).
  const netns = [...ENTITIES.map((e) => e.netnsInode), 0, 4026539999];
  for (const [i, n] of netns.entries()) {
    for (const dir of ['receive', 'transmit'])
      out.push({
        metric: 't.counter.int',
        netns: n,
        attributes: Object.freeze({ 'network.io.direction': dir }),
        value: (i + 1) * 2 ** 33 + round * 7,
      });
    out.push({ metric: 't.counter.double', netns: n, value: i * 0.25 + round });
    out.push({ metric: 't.updown', netns: n, value: i - 3 - round });
    for (const state of ['established', 'time_wait'])
      out.push({
        metric: 't.gauge.int',
        netns: n,
        attributes: { 'network.connection.state': state },
        value: -(2 ** 40) + i,
      });
    out.push({ metric: 't.gauge.double', netns: n, value: i === 2 ? Number.NaN : i / 3 });
    const boundaries = [0.001, 0.01, 0.1, 1];
    out.push({
      metric: 't.hist',
      netns: n,
      attributes: { 'network.transport': 'tcp' },
      value: {
        boundaries,
        counts: [i, round, 1, 0, 2 ** 32 + 5],
        sum: i * 0.5,
        count: i + round + 3 + 2 ** 32,
      },
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
  store.setDefinitions([
    ...DEFS.map((d) => ({ def: d, probe: 'p', enabled: true })),
    { def: def('t.q', 'counter'), probe: 'q', enabled: true },
  ]);
  const self = new SelfTelemetry();
  self.recordCollection('p', 0.012, true);
  self.recordCollection('q', 1.5, false);
  store.addSource(() => self.metrics());
  return store;
}

async function storeCollections(): Promise<ResourceMetrics[]> {
  const store = newStore();
  const delta = new DeltaProducer(store);
  const out: ResourceMetrics[] = [];
  for (let round = 0; round < 3; round++) {
    store.update('p', points(round), 1_750_000_000_000 + round * 15_000);
    out.push({ ...(await store.collect()).resourceMetrics, resource: AGENT });
    out.push({ ...(await delta.collect()).resourceMetrics, resource: AGENT });
  }
  return out;
}

/** Shapes the SDK's types allow that the store does not make. */
function handMade(): ResourceMetrics {
  const t0: [number, number] = [1_750_000_000, 123_456_789];
  const t1: [number, number] = [4_294_967_296 + 17, 999_999_999];
  const desc = (name: string, valueType: ValueType, unit = 'By') => ({
    name,
    description: `ünïcode ${name}`,
    unit,
    valueType,
  });
  const attrs = {
    str: 'x'.repeat(200),
    bool: true,
    neg: -5,
    big: 2 ** 53 - 1,
    dbl: 1.5,
    arr: ['a', 'b'],
    nums: [1, 2.5],
    ключ: 'значение',
  };
  const m1: MetricData = {
    descriptor: desc('h.full', ValueType.DOUBLE),
    aggregationTemporality: AggregationTemporality.DELTA,
    dataPointType: DataPointType.HISTOGRAM,
    dataPoints: [
      {
        startTime: t0,
        endTime: t1,
        attributes: attrs,
        value: { buckets: { boundaries: [1, 2], counts: [1, 2, 3] }, count: 6, sum: 9, min: 0.5, max: 7 },
      },
      {
        startTime: t0,
        endTime: t1,
        attributes: {},
        value: { buckets: { boundaries: [], counts: [] }, count: 0 },
      },
    ],
  };
  const m2: MetricData = {
    descriptor: desc('s.nonmono', ValueType.INT, ''),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    isMonotonic: false,
    dataPoints: Array.from({ length: 40 }, (_, i) => ({
      startTime: t0,
      endTime: t1,
      attributes: Object.freeze({ i: `v${i % 3}` }),
      value: (i - 20) * 2 ** 35,
    })),
  };
  const empty: MetricData = {
    descriptor: desc('g.empty', ValueType.DOUBLE),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints: [],
  };
  return {
    resource: AGENT,
    scopeMetrics: [
      { scope: { name: 'a', version: '1.0', schemaUrl: 'https://example.com/s' }, metrics: [m1, empty] },
      { scope: { name: 'b' }, metrics: [m2] },
      { scope: { name: 'c', version: '' }, metrics: [empty] },
    ],
  };
}

function same(rm: ResourceMetrics, entities: EntityResources | undefined, what: string): number {
  let compared = 0;
  for (const max of [1, 2, 3, 5, 7, 13, 50, 5_000]) {
    const want = sdkRequests(rm, entities, max);
    const got = encodeMetricRequests(rm, entities, max);
    assert.equal(got.length, want.length, `${what}, ${max} points per request: number of requests`);
    for (let i = 0; i < want.length; i++) {
      assert.equal(got[i]!.points, want[i]!.points, `${what}, max ${max}, request ${i}: points`);
      assert.ok(
        Buffer.from(got[i]!.bytes).equals(want[i]!.bytes),
        `${what}, max ${max}, request ${i}: bytes differ (${got[i]!.bytes.length} vs ${want[i]!.bytes.length})`,
      );
      compared += want[i]!.bytes.length;
    }
  }
  return compared;
}

test('the direct encoder writes the SDK serializer`s bytes for every collection shape, split or not', async () => {
  const collections = await storeCollections();
  let bytes = 0;
  for (const [i, rm] of collections.entries()) {
    const kind = i % 2 ? 'delta' : 'cumulative';
    // A fresh EntityResources per comparison: both paths then build the same Resource objects.
    const er = new EntityResources(AGENT);
    bytes += same(rm, er, `store collection ${i} (${kind}), one Resource per entity`);
    bytes += same(rm, undefined, `store collection ${i} (${kind}), one Resource`);
  }
  // Every shape was there: pods, host, netns, unattributed Resources; delta and cumulative; int and double.
  const rms = new EntityResources(AGENT).byEntity(collections[1]!);
  const kinds = new Set(rms.map((r) => String(r.resource.attributes['podnet.entity.kind'] ?? 'agent')));
  assert.deepEqual([...kinds].sort(), ['agent', 'host', 'netns', 'pod', 'unattributed']);
  const all = collections.flatMap((c) => c.scopeMetrics.flatMap((s) => s.metrics));
  const shapes = new Set(
    all.map(
      (m) =>
        `${m.dataPointType}/${m.aggregationTemporality}/${'isMonotonic' in m ? m.isMonotonic : '-'}/${m.descriptor.valueType}`,
    ),
  );
  for (const s of [
    `${DataPointType.SUM}/${AggregationTemporality.CUMULATIVE}/true/${ValueType.INT}`,
    `${DataPointType.SUM}/${AggregationTemporality.DELTA}/true/${ValueType.INT}`,
    `${DataPointType.SUM}/${AggregationTemporality.CUMULATIVE}/true/${ValueType.DOUBLE}`,
    `${DataPointType.SUM}/${AggregationTemporality.CUMULATIVE}/false/${ValueType.INT}`,
    `${DataPointType.GAUGE}/${AggregationTemporality.CUMULATIVE}/-/${ValueType.INT}`,
    `${DataPointType.GAUGE}/${AggregationTemporality.CUMULATIVE}/-/${ValueType.DOUBLE}`,
    `${DataPointType.HISTOGRAM}/${AggregationTemporality.CUMULATIVE}/-/${ValueType.DOUBLE}`,
    `${DataPointType.HISTOGRAM}/${AggregationTemporality.DELTA}/-/${ValueType.DOUBLE}`,
  ])
    assert.ok(shapes.has(s), `shape ${s} covered (have ${[...shapes].join(', ')})`);
  assert.ok(bytes > 100_000, `compared ${bytes} bytes`);
});

/** The store's metrics of `rm` whose data points were not made (the encoder then reads the series). */
function unmade(rm: ResourceMetrics): number {
  let n = 0;
  for (const sm of rm.scopeMetrics)
    for (const m of sm.metrics) if (m instanceof StoreMetricData && m.points === undefined) n++;
  return n;
}

async function collect(store: MetricStore): Promise<ResourceMetrics> {
  return { ...(await store.collect()).resourceMetrics, resource: AGENT };
}

test('written from the store`s series (no data point objects): the SDK serializer`s bytes', async () => {
  const store = newStore();
  let bytes = 0;
  for (let round = 0; round < 3; round++) {
    store.update('p', points(round), 1_750_000_000_000 + round * 15_000);
    // Two collections of the same state: one written from the series, one through the SDK's objects
    // (with the first one's self-telemetry, which reads the clock).
    const direct = await collect(store);
    const sdk = twin(direct, await collect(store));
    const storeMetrics = unmade(direct);
    assert.equal(storeMetrics, DEFS.length, 'every store metric is a StoreMetricData');
    for (const entities of [new EntityResources(AGENT), undefined]) {
      for (const max of [1, 2, 3, 5, 7, 13, 50, 5_000]) {
        const want = sdkRequests(sdk, entities, max);
        const got = encodeMetricRequests(direct, entities, max);
        assert.equal(got.length, want.length, `round ${round}, max ${max}: number of requests`);
        for (let i = 0; i < want.length; i++) {
          assert.equal(got[i]!.points, want[i]!.points, `round ${round}, max ${max}, request ${i}: points`);
          assert.ok(
            Buffer.from(got[i]!.bytes).equals(want[i]!.bytes),
            `round ${round}, ${entities ? 'by entity' : 'one Resource'}, max ${max}, request ${i}: bytes differ`,
          );
          bytes += want[i]!.bytes.length;
        }
      }
    }
    assert.equal(unmade(direct), storeMetrics, 'the encoder read the series, not data points');
  }
  assert.ok(bytes > 100_000, `compared ${bytes} bytes`);
});

test('an export streamed across an update sends the values it was collected with', async () => {
  const store = newStore();
  store.update('p', points(0), 1_750_000_000_000);
  const direct = await collect(store);
  const sdk = twin(direct, await collect(store));
  const er = new EntityResources(AGENT);
  const it = metricRequests(direct, er, 7);
  const first = it.next().value!;
  // The next collection changes every series in place: the collections still read keep their values.
  store.update('p', points(1), 1_750_000_015_000);
  assert.equal(unmade(direct), 0, 'the open collection made its data points before the update');
  const got = [first, ...it];
  const want = sdkRequests(sdk, er, 7);
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++)
    assert.ok(Buffer.from(got[i]!.bytes).equals(want[i]!.bytes), `request ${i}: bytes differ`);
  // One buffer for every request (the exporter's form): each request, read before the next is asked for,
  // is the same bytes.
  const reused = [
    ...(function* () {
      for (const q of metricRequests(direct, er, 7, true)) yield Buffer.from(q.bytes);
    })(),
  ];
  assert.equal(reused.length, want.length);
  for (let i = 0; i < want.length; i++) assert.ok(reused[i]!.equals(want[i]!.bytes), `reused, request ${i}`);
  // And the values did change: a collection after the update is other bytes.
  const after = encodeMetricRequests(await collect(store), er, 7);
  assert.ok(!Buffer.from(after.at(-1)!.bytes).equals(want.at(-1)!.bytes));
  // A collection whose export is done is released: the next update does not make its points.
  const done = await collect(store);
  encodeMetricRequests(done, er, 7);
  store.update('p', points(2), 1_750_000_030_000);
  assert.equal(unmade(done), DEFS.length);
});

test('an update freezes only its own probe`s metrics; the export still sends the collected values', async () => {
  const store = newStore();
  const q = (v: number): MetricPoint[] =>
    ENTITIES.map((e) => ({ metric: 't.q', netns: e.netnsInode, value: v }));
  store.update('p', points(0), 1_750_000_000_000);
  store.update('q', q(5), 1_750_000_000_000);
  const direct = await collect(store);
  const sdk = twin(direct, await collect(store));
  const er = new EntityResources(AGENT);
  const it = metricRequests(direct, er, 13);
  const first = it.next().value!;
  store.update('q', q(9), 1_750_000_015_000);
  // Probe q's metric was made into data points (with the collected values); probe p's are still series.
  assert.equal(unmade(direct), DEFS.length);
  const got = [first, ...it];
  const want = sdkRequests(sdk, er, 13);
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++)
    assert.ok(Buffer.from(got[i]!.bytes).equals(want[i]!.bytes), `request ${i}: bytes differ`);
  const after = encodeMetricRequests(await collect(store), er, 5_000);
  assert.ok(!Buffer.from(after[0]!.bytes).equals(want[0]!.bytes), 'the update changed the values');
});

test('the direct encoder writes the SDK serializer`s bytes for hand-made shapes beyond the store`s', () => {
  const rm = handMade();
  same(rm, undefined, 'hand-made, one Resource');
  same(rm, new EntityResources(AGENT), 'hand-made, by entity');
});

test('an empty collection is one request with the agent`s Resource, as the SDK path sends', () => {
  const rm: ResourceMetrics = { resource: AGENT, scopeMetrics: [] };
  same(rm, new EntityResources(AGENT), 'empty');
  assert.equal(encodeMetricRequests(rm, undefined, 10).length, 1);
});

test('a test that cannot fail is a defect: a changed value changes the bytes', async () => {
  const [rm] = await storeCollections();
  const before = encodeMetricRequests(rm!, new EntityResources(AGENT), 5_000)[0]!.bytes;
  const m = rm!.scopeMetrics[0]!.metrics[0]!;
  (m.dataPoints[0] as { value: number }).value += 1;
  const after = encodeMetricRequests(rm!, new EntityResources(AGENT), 5_000)[0]!.bytes;
  assert.ok(!Buffer.from(before).equals(after));
  assert.ok(Buffer.from(after).equals(sdkRequests(rm!, new EntityResources(AGENT), 5_000)[0]!.bytes));
});
