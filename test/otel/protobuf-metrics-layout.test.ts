// The direct OTLP metrics encoder's fast paths for store series (receiver/otel/protobuf/fields.ts
// seriesNumberPoint: a NumberDataPoint written with its length known in advance; times computed once per
// distinct HrTime; metric-writer.ts wholeMetric: a Metric of one such point written with every length
// computed first — here `l.one`, `l.solo`, and `l.many` of the entity with one series) and its reserved lengths (protobuf/metric-writer.ts: the bytes reserved for a
// ResourceMetrics', ScopeMetrics' or Metric's length are the last one's size) against the SDK's serializer,
// byte for byte, where those guesses are wrong: entities whose ResourceMetrics take 1, 2 and 3 bytes of
// length after one another in both directions, a metric with 1 point next to one with hundreds, point
// attributes of 0 to ~260 bytes (a data point length of 1 and 2 bytes), and series of one run with different
// start times (series first seen in a later round, counters reset) interleaved with the others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { EntityResources } from '../../receiver/otel/entity-resources.ts';
import { StoreMetricData } from '../../receiver/otel/metric-data.ts';
import { MetricStore } from '../../receiver/otel/metric-store.ts';
import { encodeMetricRequests } from '../../receiver/otel/protobuf/metrics.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricDef, MetricPoint } from '../../receiver/probe/types.ts';
import { sdkRequests } from './sdk-path.ts';

const AGENT = resourceFromAttributes({ 'service.name': 'podnet', 'host.name': 'node-1' });

const ENTITIES: Entity[] = Array.from({ length: 5 }, (_, i) => ({
  kind: 'netns',
  netnsInode: 4026540000 + i,
  netnsPath: `/run/netns/layout${i}`,
  netnsName: `layout${i}`,
  displayName: `layout${i}`,
}));
/** Series per entity: ResourceMetrics lengths of 3, 1, 2, 3 and 1 bytes, in that order. */
const SIZES = [400, 1, 30, 250, 0];

const def = (name: string, kind: MetricDef['kind'], attributes: string[] = []): MetricDef => ({
  name,
  kind,
  unit: '{packet}',
  description: `${name} ${'d'.repeat(90)}`,
  attributes,
  enabled: true,
});
const DEFS = [
  def('l.many', 'counter', ['k']),
  def('l.one', 'gauge'),
  def('l.level', 'updowncounter', ['k']),
  def('l.solo', 'counter', ['k']),
];
/**
 * Length of the one `l.solo` point's attribute value per entity: each entity's Metric of it is written whole
 * (metric-writer.ts wholeMetric) with a start kept per attribute length; the lengths change from entity to
 * entity, both ways, and make a data point length of 1 and 2 bytes.
 */
const SOLO = [5, 110, 5, 200, 90];

function points(round: number): MetricPoint[] {
  const out: MetricPoint[] = [];
  for (const [e, entity] of ENTITIES.entries()) {
    const netns = entity.netnsInode;
    // From round 1 on, series k ≡ 1 (mod 3) appear: their start time differs from their neighbours'.
    for (let k = 0; k < SIZES[e]!; k++) {
      if (round === 0 && k % 3 === 1) continue;
      // Every 7th counter goes down in round 2 (a reset: a new start time); values past 2^32 and 2^53 - 1.
      const down = round === 2 && k % 7 === 0;
      out.push({
        metric: 'l.many',
        netns,
        attributes: { k: `${k}-${'x'.repeat(k % 260)}` },
        value: down ? k : k * 2 ** 33 + round * 1000 + (k === 5 ? 2 ** 53 - 2 ** 40 : 0),
      });
      if (k < 3) out.push({ metric: 'l.level', netns, attributes: { k: `${k}` }, value: -(2 ** 34) + k });
    }
    out.push({ metric: 'l.one', netns, value: e + round / 4 });
    out.push({
      metric: 'l.solo',
      netns,
      attributes: { k: 'y'.repeat(SOLO[e]!) },
      value: e * 2 ** 40 + round,
    });
  }
  return out;
}

test('store series: the SDK serializer`s bytes where reserved lengths and cached times do not fit', async () => {
  const store = new MetricStore({ entities: new StaticEntitySource(ENTITIES) });
  store.setDefinitions(DEFS.map((d) => ({ def: d, probe: 'p', enabled: true })));
  let bytes = 0;
  const lengths = new Set<number>();
  for (let round = 0; round < 3; round++) {
    store.update('p', points(round), 1_750_000_000_000 + round * 15_000);
    const direct = { ...(await store.collect()).resourceMetrics, resource: AGENT };
    const other = { ...(await store.collect()).resourceMetrics, resource: AGENT };
    // The SDK path reads data points: made from the second collection of the same state.
    for (const sm of other.scopeMetrics) for (const m of sm.metrics) void m.dataPoints;
    for (const sm of direct.scopeMetrics)
      for (const m of sm.metrics)
        assert.ok(m instanceof StoreMetricData && m.points === undefined, 'written from the series');
    const er = new EntityResources(AGENT);
    for (const rm of er.byEntity(other)) {
      const n = ProtobufMetricsSerializer.serializeRequest(rm)!.length;
      lengths.add(n < 128 ? 1 : n < 16_384 ? 2 : 3);
    }
    for (const entities of [er, undefined])
      for (const max of [1, 4, 250, 5_000]) {
        const want = sdkRequests(other, entities, max);
        const got = encodeMetricRequests(direct, entities, max);
        assert.equal(got.length, want.length, `round ${round}, max ${max}: number of requests`);
        for (let i = 0; i < want.length; i++) {
          assert.equal(got[i]!.points, want[i]!.points);
          assert.ok(
            Buffer.from(got[i]!.bytes).equals(want[i]!.bytes),
            `round ${round}, ${entities ? 'by entity' : 'one Resource'}, max ${max}, request ${i}: bytes differ`,
          );
          bytes += want[i]!.bytes.length;
        }
      }
  }
  // The request of one Resource per entity had lengths of every size (a ResourceMetrics of ~3 bytes of
  // length is ~16 KB and more), so each reservation was both too small and too large at some point.
  assert.deepEqual([...lengths].sort(), [1, 2, 3]);
  assert.ok(bytes > 500_000, `compared ${bytes} bytes`);
});
