// MetricStore: latest-collection semantics, start times, cardinality limit with a counted overflow,
// malformed points dropped and counted, unattributed entities, label allow-list.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { MetricStore, type RegisteredMetric } from '../../receiver/otel/metric-store.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricDef } from '../../receiver/probe/types.ts';

const HOST: Entity = { kind: 'host', netnsInode: 100, netnsPath: '/proc/self/ns/net', displayName: 'host' };
const NETNS: Entity = {
  kind: 'netns',
  netnsInode: 200,
  netnsPath: '/run/netns/blue',
  netnsName: 'blue',
  displayName: 'blue',
};
const POD: Entity = {
  kind: 'pod',
  netnsInode: 300,
  netnsPath: '/proc/9/ns/net',
  displayName: 'ns/p',
  pod: {
    uid: 'u',
    name: 'p',
    namespace: 'ns',
    labels: { app: 'a', team: 't' },
    ips: [],
    sandboxId: 's',
    hostNetwork: false,
  },
};

const counter: MetricDef = {
  name: 'podnet.t.count',
  kind: 'counter',
  unit: '{x}',
  description: 'c',
  attributes: ['k'],
  enabled: true,
};
const gauge: MetricDef = {
  name: 'podnet.t.level',
  kind: 'gauge',
  unit: '1',
  description: 'g',
  attributes: [],
  enabled: true,
};
const hist: MetricDef = {
  name: 'podnet.t.duration',
  kind: 'histogram',
  unit: 's',
  description: 'h',
  attributes: [],
  enabled: true,
};
const off: MetricDef = {
  name: 'podnet.t.off',
  kind: 'counter',
  unit: '1',
  description: 'o',
  attributes: [],
  enabled: false,
};

function store(limit = 100) {
  const s = new MetricStore({
    entities: new StaticEntitySource([HOST, NETNS, POD]),
    cardinalityLimit: limit,
    labelAllowlist: ['app'],
  });
  const defs: RegisteredMetric[] = [counter, gauge, hist, off].map((def) => ({
    def,
    probe: 'p1',
    enabled: def.enabled,
  }));
  s.setDefinitions(defs);
  return s;
}

async function metrics(s: MetricStore) {
  const r = await s.collect();
  return r.resourceMetrics.scopeMetrics.flatMap((sm) => sm.metrics);
}

test('entity keys: pod, named netns, host, unattributed (0 and unknown inode); label allow-list', () => {
  const s = store();
  s.update('p1', [
    { metric: 'podnet.t.level', netns: 300, value: 1 },
    { metric: 'podnet.t.level', netns: 200, value: 2 },
    { metric: 'podnet.t.level', netns: 100, value: 3 },
    { metric: 'podnet.t.level', netns: 0, value: 4 },
    { metric: 'podnet.t.level', netns: 999, value: 5 },
  ]);
  const by = new Map(s.series().map((x) => [x.value, x.attributes]));
  assert.deepEqual(by.get(1), {
    'podnet.entity.kind': 'pod',
    'podnet.netns.inode': 300,
    'k8s.pod.uid': 'u',
    'k8s.pod.name': 'p',
    'k8s.namespace.name': 'ns',
    'k8s.pod.label.app': 'a',
  });
  assert.deepEqual(by.get(2), {
    'podnet.entity.kind': 'netns',
    'podnet.netns.inode': 200,
    'podnet.netns.name': 'blue',
  });
  assert.deepEqual(by.get(3), { 'podnet.entity.kind': 'host', 'podnet.netns.inode': 100 });
  assert.deepEqual(by.get(4), { 'podnet.entity.kind': 'unattributed' });
  assert.deepEqual(by.get(5), { 'podnet.entity.kind': 'unattributed', 'podnet.netns.inode': 999 });
});

test('latest collection only; start time kept while the counter grows, reset when it goes down', async () => {
  const s = store();
  s.update('p1', [{ metric: 'podnet.t.count', netns: 100, attributes: { k: 'a' }, value: 10 }], 1_000_000);
  s.update('p1', [{ metric: 'podnet.t.count', netns: 100, attributes: { k: 'a' }, value: 15 }], 1_010_000);
  let m = (await metrics(s)).find((x) => x.descriptor.name === 'podnet.t.count')!;
  assert.equal(m.dataPoints.length, 1);
  assert.deepEqual(m.dataPoints[0]!.startTime, [1000, 0]);
  assert.deepEqual(m.dataPoints[0]!.endTime, [1010, 0]);
  assert.equal(m.dataPoints[0]!.value, 15);
  s.update('p1', [{ metric: 'podnet.t.count', netns: 100, attributes: { k: 'a' }, value: 2 }], 1_020_000);
  m = (await metrics(s)).find((x) => x.descriptor.name === 'podnet.t.count')!;
  assert.deepEqual(m.dataPoints[0]!.startTime, [1020, 0], 'a counter that went down starts a new series');
  // A series not reported any more is gone from the next collect.
  s.update('p1', [{ metric: 'podnet.t.count', netns: 100, attributes: { k: 'b' }, value: 1 }], 1_030_000);
  m = (await metrics(s)).find((x) => x.descriptor.name === 'podnet.t.count')!;
  assert.deepEqual(
    m.dataPoints.map((d) => d.attributes['k']),
    ['b'],
  );
  s.removeProbe('p1');
  assert.equal((await metrics(s)).length, 0);
});

test('a probe re-created by a reload: counters and histograms continue, gauges do not; a later reset is a reset', async () => {
  const s = store();
  const h = (counts: number[], bounds = [1, 2]) => ({
    boundaries: bounds,
    counts,
    sum: counts.reduce((a, b) => a + b, 0),
    count: counts.reduce((a, b) => a + b, 0),
  });
  const c = (value: number) => ({ metric: 'podnet.t.count', netns: 100, attributes: { k: 'a' }, value });
  s.update(
    'p1',
    [
      c(10),
      { metric: 'podnet.t.level', netns: 100, value: 7 },
      { metric: 'podnet.t.duration', netns: 100, value: h([1, 2, 3]) },
    ],
    1_000_000,
  );
  s.carryOverProbe('p1');
  // The new instance's kernel counters start again from 0.
  s.update(
    'p1',
    [
      c(4),
      { metric: 'podnet.t.level', netns: 100, value: 1 },
      { metric: 'podnet.t.duration', netns: 100, value: h([0, 1, 0]) },
    ],
    1_010_000,
  );
  const by = async (name: string) =>
    (await metrics(s)).find((x) => x.descriptor.name === name)!.dataPoints[0]!;
  let cp = await by('podnet.t.count');
  assert.equal(cp.value, 14);
  assert.deepEqual(cp.startTime, [1000, 0], 'same series: start time kept');
  assert.equal((await by('podnet.t.level')).value, 1);
  const hp = (await by('podnet.t.duration')).value as { buckets: { counts: number[] }; count: number };
  assert.deepEqual(hp.buckets.counts, [1, 3, 3]);
  assert.equal(hp.count, 7);
  s.update('p1', [c(6)], 1_020_000);
  assert.equal((await by('podnet.t.count')).value, 16);
  // The new instance's counter itself goes down: a real reset, the carry is dropped.
  s.update('p1', [c(1)], 1_030_000);
  cp = await by('podnet.t.count');
  assert.equal(cp.value, 1);
  assert.deepEqual(cp.startTime, [1030, 0]);
  s.update('p1', [c(3)], 1_040_000);
  assert.equal((await by('podnet.t.count')).value, 3);
  // Re-created again; the new instance reports the counter only from its second collection.
  s.carryOverProbe('p1');
  assert.equal((await by('podnet.t.count')).value, 3, 'still exported until the first collection');
  s.update('p1', [{ metric: 'podnet.t.level', netns: 100, value: 1 }], 1_050_000);
  s.update('p1', [c(2)], 1_060_000);
  cp = await by('podnet.t.count');
  assert.equal(cp.value, 5);
  assert.deepEqual(cp.startTime, [1030, 0]);
});

test('cardinality limit per metric: overflow dropped and counted', () => {
  const s = store(3);
  const points = Array.from({ length: 10 }, (_, i) => ({
    metric: 'podnet.t.count',
    netns: 100,
    attributes: { k: `v${i}` },
    value: i,
  }));
  s.update('p1', [...points, { metric: 'podnet.t.level', netns: 100, value: 1 }]);
  assert.equal(s.series().filter((x) => x.def.name === 'podnet.t.count').length, 3);
  assert.equal(s.series().filter((x) => x.def.name === 'podnet.t.level').length, 1);
  assert.equal(s.overflowCounts().get('podnet.t.count'), 7);
  s.update('p1', points);
  assert.equal(s.overflowCounts().get('podnet.t.count'), 14, 'counted per collection, cumulatively');
});

test('malformed points are dropped and counted; disabled metrics are not exported', () => {
  const s = store();
  s.update('p1', [
    { metric: 'podnet.t.undeclared', netns: 100, value: 1 },
    {
      metric: 'podnet.t.duration',
      netns: 100,
      value: { boundaries: [1, 2], counts: [1, 1], sum: 1, count: 2 },
    },
    {
      metric: 'podnet.t.duration',
      netns: 100,
      value: { boundaries: [2, 1], counts: [1, 1, 1], sum: 1, count: 3 },
    },
    { metric: 'podnet.t.level', netns: 100, value: Number.NaN },
    { metric: 'podnet.t.off', netns: 100, value: 5 },
    {
      metric: 'podnet.t.duration',
      netns: 100,
      value: { boundaries: [1, 2], counts: [1, 0, 2], sum: 4.5, count: 3 },
    },
  ]);
  assert.deepEqual(Object.fromEntries(s.invalidCounts()), {
    'podnet.t.undeclared': 1,
    'podnet.t.duration': 2,
    'podnet.t.level': 1,
  });
  assert.deepEqual(
    s.series().map((x) => x.def.name),
    ['podnet.t.duration'],
  );
  // Points of another probe's metric are refused too.
  s.update('p2', [{ metric: 'podnet.t.level', netns: 100, value: 1 }]);
  assert.equal(s.invalidCounts().get('podnet.t.level'), 2);
});

test('a metric declared by several probes with the same definition is shared; a conflicting one is refused', () => {
  const s = new MetricStore({ entities: new StaticEntitySource([HOST]) });
  const shared: MetricDef = {
    ...counter,
    name: 'podnet.shared.count',
    attributes: ['podnet.probe.name'],
    scope: 'node',
  };
  s.setDefinitions([
    { def: shared, probe: 'a', enabled: true },
    { def: shared, probe: 'b', enabled: true },
    { def: { ...shared, unit: 'By' }, probe: 'c', enabled: true },
  ]);
  s.update('a', [{ metric: 'podnet.shared.count', attributes: { 'podnet.probe.name': 'a' }, value: 1 }]);
  s.update('b', [{ metric: 'podnet.shared.count', attributes: { 'podnet.probe.name': 'b' }, value: 2 }]);
  s.update('c', [{ metric: 'podnet.shared.count', attributes: { 'podnet.probe.name': 'c' }, value: 3 }]);
  assert.deepEqual(
    s
      .series()
      .map((x) => x.value)
      .sort(),
    [1, 2],
  );
  assert.equal(s.invalidCounts().get('podnet.shared.count'), 1);
});

test('series state kept between collections: returning series, entity changes, frozen shared attributes', async () => {
  const entities = new StaticEntitySource([HOST, NETNS]);
  const s = new MetricStore({ entities, cardinalityLimit: 100 });
  s.setDefinitions([counter, gauge].map((def) => ({ def, probe: 'p1', enabled: true })));
  const shared = Object.freeze({ k: 'x' });
  const pts = (v: number) => [
    { metric: 'podnet.t.count', netns: 200, attributes: shared, value: v },
    { metric: 'podnet.t.count', netns: 200, attributes: { k: 'y' }, value: v },
    { metric: 'podnet.t.level', netns: 200, value: v },
    { metric: 'podnet.t.level', netns: 200, value: 99 }, // duplicate: the first wins
  ];
  s.update('p1', pts(1), 1_000_000);
  s.update('p1', pts(2), 1_010_000);
  assert.equal(s.seriesCount(), 3);
  let m = (await metrics(s)).find((x) => x.descriptor.name === 'podnet.t.count')!;
  assert.deepEqual(
    m.dataPoints.map((d) => [d.attributes['k'], d.value, d.startTime[0]]),
    [
      ['x', 2, 1000],
      ['y', 2, 1000],
    ],
  );
  assert.equal(s.series().find((x) => x.def.name === 'podnet.t.level')!.value, 2);
  // Gone for one collection: back with a new start time.
  s.update('p1', [{ metric: 'podnet.t.level', netns: 200, value: 3 }], 1_020_000);
  assert.equal(s.seriesCount(), 1);
  s.update('p1', pts(4), 1_030_000);
  m = (await metrics(s)).find((x) => x.descriptor.name === 'podnet.t.count')!;
  assert.deepEqual(
    m.dataPoints.map((d) => d.startTime[0]),
    [1030, 1030],
  );
  // The netns now belongs to a pod: every series carries the new entity keys.
  entities.add({ ...POD, netnsInode: 200 });
  s.update('p1', pts(5), 1_040_000);
  for (const x of s.series()) assert.equal(x.attributes['k8s.pod.name'], 'p', x.def.name);
  const level = s.series().find((x) => x.def.name === 'podnet.t.level')!;
  assert.equal(level.attributes['podnet.entity.kind'], 'pod');
  assert.equal(s.series().find((x) => x.attributes['k'] === 'x')!.attributes['podnet.entity.kind'], 'pod');
  // A new label allow-list applies to existing series.
  s.configure({ labelAllowlist: ['team'] });
  s.update('p1', pts(6), 1_050_000);
  for (const x of s.series()) assert.equal(x.attributes['k8s.pod.label.team'], 't');
  // Start times survived the entity change (same series, counter kept growing).
  m = (await metrics(s)).find((x) => x.descriptor.name === 'podnet.t.count')!;
  assert.deepEqual(
    m.dataPoints.map((d) => d.startTime[0]),
    [1030, 1030],
  );
  // Empty attributes are the same series as none.
  s.update('p1', [
    { metric: 'podnet.t.level', netns: 200, attributes: {}, value: 7 },
    { metric: 'podnet.t.level', netns: 200, value: 8 },
  ]);
  assert.equal(s.seriesCount(), 1);
});
