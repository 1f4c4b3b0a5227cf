// The column path (receiver/probe/sink.ts → receiver/otel/point-buffer.ts → MetricStore.update) against the
// point-object path: the same seeded, random collections written through both (values by series key and
// point objects interleaved, duplicates, malformed and disabled points, node-scoped metrics, counters that
// reset, series and netns that come and go, truncated entities, a reload of the definitions, a carried-over
// probe, a label allow-list change, a cardinality limit) must leave the same series (values, start and
// end times, attributes), the same overflow and invalid counts, and the same OTLP bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { EntityResources } from '../../receiver/otel/entity-resources.ts';
import { MetricStore, type RegisteredMetric } from '../../receiver/otel/metric-store.ts';
import { encodeMetricRequests } from '../../receiver/otel/protobuf/metrics.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { type MetricSink, PointArray, SeriesKey } from '../../receiver/probe/sink.ts';
import type { MetricDef, MetricPoint } from '../../receiver/probe/types.ts';

const AGENT = resourceFromAttributes({ 'service.name': 'podnet', 'host.name': 'n1' });
const ENTITIES: Entity[] = [
  { kind: 'host', netnsInode: 100, netnsPath: '/proc/self/ns/net', displayName: 'host' },
  { kind: 'netns', netnsInode: 200, netnsPath: '/run/netns/b', netnsName: 'b', displayName: 'b' },
  {
    kind: 'pod',
    netnsInode: 300,
    netnsPath: '/proc/9/ns/net',
    displayName: 'ns/p',
    pod: {
      uid: 'u',
      name: 'p',
      namespace: 'ns',
      labels: { app: 'a' },
      ips: [],
      sandboxId: 's',
      hostNetwork: false,
    },
  },
];
const NETNS = [100, 200, 300, 0, 999];

const def = (name: string, kind: MetricDef['kind'], extra: Partial<MetricDef> = {}): MetricDef => ({
  name,
  kind,
  unit: '1',
  description: name,
  attributes: ['k'],
  enabled: true,
  ...extra,
});
const DEFS: MetricDef[] = [
  def('t.count', 'counter'),
  def('t.level', 'gauge'),
  def('t.updown', 'updowncounter'),
  def('t.hist', 'histogram'),
  def('t.node', 'gauge', { scope: 'node' }),
  def('t.off', 'counter', { enabled: false }),
];

/** A small deterministic PRNG (mulberry32): the same collections in both paths and in every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Keys: every number metric with and without attributes, two key objects for one series (a duplicate),
// and names the probe did not declare.
const KEYS: SeriesKey[] = [];
for (const m of ['t.count', 't.level', 't.updown', 't.node', 't.off', 't.undeclared', 't.hist']) {
  KEYS.push(new SeriesKey(m));
  for (const v of ['a', 'b', 'c']) KEYS.push(new SeriesKey(m, { k: v }));
}
KEYS.push(new SeriesKey('t.count', { k: 'a' }), new SeriesKey('t.level', Object.freeze({ k: 'b' })));

type Op = (sink: MetricSink) => void;

function collection(r: () => number, round: number): Op[] {
  const ops: Op[] = [];
  const netnsNow = NETNS.filter(() => r() < 0.8);
  for (const netns of netnsNow) {
    for (const key of KEYS) {
      if (r() < 0.25) continue; // series come and go
      const x = r();
      let value: number;
      if (x < 0.03) value = Number.NaN;
      else if (x < 0.05) value = Number.POSITIVE_INFINITY;
      else if (x < 0.1)
        value = -Math.floor(r() * 100); // a counter that goes down: a reset
      else if (x < 0.2)
        value = r() * 1000; // a double
      else value = round * 1000 + Math.floor(r() * 1000);
      if (r() < 0.15) {
        // The same as a point object (unfrozen attributes: the store interns them).
        const p: MetricPoint = key.attributes
          ? { metric: key.metric, netns, attributes: { ...key.attributes }, value }
          : { metric: key.metric, netns, value };
        ops.push((s) => s.point(p));
      } else ops.push((s) => s.value(key, netns, value));
    }
    if (r() < 0.5) {
      const n = Math.floor(r() * 3);
      const counts = [round, n, 1, round + n];
      const value = {
        boundaries: [0.1, 1, 10],
        counts,
        sum: round * 0.5,
        count: counts.reduce((a, b) => a + b),
      };
      ops.push((s) => s.point({ metric: 't.hist', netns, value }));
    }
    if (r() < 0.1) {
      // An entity that fails midway: what it wrote is cut off.
      ops.push((s) => {
        const mark = s.length;
        s.value(KEYS[1]!, netns, 1);
        s.point({ metric: 't.level', netns, value: 2 });
        s.value(KEYS[5]!, netns, 3);
        s.truncate(mark);
      });
    }
  }
  if (r() < 0.7) ops.push((s) => s.point({ metric: 't.node', value: round }));
  return ops;
}

function newStore(cardinalityLimit = 12): MetricStore {
  const s = new MetricStore({
    entities: new StaticEntitySource(ENTITIES),
    cardinalityLimit,
    labelAllowlist: ['app'],
  });
  s.setDefinitions(DEFS.map((d): RegisteredMetric => ({ def: d, probe: 'p1', enabled: d.enabled })));
  return s;
}

function snapshot(s: MetricStore) {
  return s.series().map((x) => ({
    name: x.def.name,
    attributes: x.attributes,
    value: x.value,
    start: x.startTime,
    time: x.time,
  }));
}

async function otlp(s: MetricStore): Promise<Buffer> {
  const rm: ResourceMetrics = { ...(await s.collect()).resourceMetrics, resource: AGENT };
  return Buffer.concat(encodeMetricRequests(rm, new EntityResources(AGENT), 25).map((r) => r.bytes));
}

test('column path = point objects: series, counts and OTLP bytes over 40 random collections', async () => {
  for (const seed of [1, 2, 3]) {
    const r = rng(seed);
    const objects = newStore();
    const columns = newStore();
    let compared = 0;
    for (let round = 0; round < 40; round++) {
      const ops = collection(r, round);
      const array = new PointArray();
      const buffer = columns.sink('p1');
      for (const op of ops) {
        op(array);
        op(buffer);
      }
      assert.equal(buffer.length, array.length, `seed ${seed} round ${round}: points written`);
      const time = 1_750_000_000_000 + round * 15_000;
      objects.update('p1', array.points, time);
      columns.update('p1', buffer, time);
      const what = `seed ${seed} round ${round}`;
      assert.deepEqual(snapshot(columns), snapshot(objects), `${what}: series`);
      assert.deepEqual([...columns.overflowCounts()], [...objects.overflowCounts()], `${what}: overflow`);
      assert.deepEqual([...columns.invalidCounts()], [...objects.invalidCounts()], `${what}: invalid`);
      assert.ok((await otlp(columns)).equals(await otlp(objects)), `${what}: OTLP bytes`);
      compared += objects.seriesCount();
      // Reloads between collections, the same in both stores.
      for (const s of [objects, columns]) {
        if (round === 12) {
          // `t.level` disabled, `t.off` enabled: the slots' cached registrations must follow.
          s.setDefinitions(
            DEFS.map((d): RegisteredMetric => {
              const enabled = d.name === 't.level' ? false : d.name === 't.off' ? true : d.enabled;
              return { def: { ...d, enabled }, probe: 'p1', enabled };
            }),
          );
        }
        if (round === 20) s.carryOverProbe('p1');
        if (round === 27) s.configure({ labelAllowlist: [] });
      }
    }
    assert.ok(compared > 1000, `seed ${seed}: only ${compared} series compared`);
    assert.ok(
      [...objects.overflowCounts().values()].some((n) => n > 0),
      'the limit was reached',
    );
    assert.ok(
      [...objects.invalidCounts().values()].some((n) => n > 0),
      'malformed points were sent',
    );
  }
});

test('a buffer keeps points written as objects in their place among the values, and truncates both', () => {
  const store = newStore(1000);
  const b = store.sink('p1');
  const k = new SeriesKey('t.level');
  for (let i = 0; i < 100; i++) {
    if (i % 7 === 0) b.point({ metric: 't.node', value: i });
    else b.value(k, i, i);
  }
  assert.equal(b.length, 100);
  b.truncate(50);
  assert.equal(b.length, 50);
  assert.equal(b.objects.length, 8); // 0, 7, ..., 49
  store.update('p1', b, 1_750_000_000_000);
  const values = store.series().map((s) => s.value);
  assert.deepEqual(
    values,
    Array.from({ length: 50 }, (_, i) => i).filter((i) => i % 7 !== 0 || i === 0),
  );
});
