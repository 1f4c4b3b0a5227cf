// The direct OTLP metrics encoder keeps its grouping of points by entity across collections
// (receiver/otel/protobuf/metric-grouping.ts) and reuses it while the series set is the same. Collection
// after collection of one store, with one EntityResources kept as the exporter keeps it, the requests must
// be the SDK path's bytes (EntityResources.byEntity → splitResourceMetrics → the SDK serializer), also
// when the series set changes in ways a too-weak check would miss: the same point counts per metric with
// the points moved to other pods, a pod relabelled (same series, new entity keys and Resource), a pod gone.
// A grouping made anew writes over the last one's arrays, but not while an export still reads them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { EntityResources } from '../../receiver/otel/entity-resources.ts';
import { MetricStore } from '../../receiver/otel/metric-store.ts';
import { groupings } from '../../receiver/otel/protobuf/metric-grouping.ts';
import { encodeMetricRequests, metricRequests } from '../../receiver/otel/protobuf/metrics.ts';
import { SelfTelemetry } from '../../receiver/otel/self-telemetry.ts';
import type { MetricDef, MetricPoint } from '../../receiver/probe/types.ts';
import { podEntity } from '../env/pod-entity.ts';
import { sdkRequests, twin } from './sdk-path.ts';

const AGENT = resourceFromAttributes({ 'service.name': 'podnet', 'host.name': 'node-1' });
const def = (name: string, kind: MetricDef['kind'], attributes: string[] = []): MetricDef => ({
  name,
  kind,
  unit: '{packet}',
  description: name,
  attributes,
  enabled: true,
});
const DEFS = [
  def('t.bytes', 'counter', ['network.io.direction']),
  def('t.state', 'gauge', ['network.connection.state']),
  def('t.rtt', 'histogram'),
  def('t.node', 'gauge', ['cpu']),
];
const PODS = 5;

/** Pod i reports `states[i]` connection states (default 2); the rest is the same every round. */
function points(round: number, pods: number, states: readonly number[] = []): MetricPoint[] {
  const out: MetricPoint[] = [];
  for (let i = 0; i < pods; i++) {
    const netns = 4026600000 + i;
    for (const dir of ['receive', 'transmit'])
      out.push({
        metric: 't.bytes',
        netns,
        attributes: Object.freeze({ 'network.io.direction': dir }),
        value: i * 1000 + round,
      });
    for (const state of ['established', 'time_wait', 'close_wait'].slice(0, states[i] ?? 2))
      out.push({ metric: 't.state', netns, attributes: { 'network.connection.state': state }, value: i });
    out.push({
      metric: 't.rtt',
      netns,
      value: { boundaries: [0.001, 0.01], counts: [i, round, 1], sum: i * 0.5, count: i + round + 1 },
    });
  }
  out.push({ metric: 't.node', netns: 0, attributes: { cpu: '0' }, value: round });
  return out;
}

test('the grouping kept across collections: reused while the series set holds, the SDK`s bytes always', async () => {
  const source = new StaticEntitySource(Array.from({ length: PODS }, (_, i) => podEntity(i)));
  const store = new MetricStore({ entities: source, labelAllowlist: ['app'] });
  store.setDefinitions(DEFS.map((d) => ({ def: d, probe: 'p', enabled: true })));
  const self = new SelfTelemetry();
  self.recordCollection('p', 0.012, true);
  store.addSource(() => self.metrics());
  // As the exporter: one EntityResources for the agent's life, so the grouping is kept between collections.
  const er = new EntityResources(AGENT);
  const rounds: { what: string; change: () => MetricPoint[]; reused: boolean }[] = [
    { what: 'first', change: () => points(0, PODS), reused: false },
    { what: 'same series set', change: () => points(1, PODS), reused: true },
    { what: 'again', change: () => points(2, PODS), reused: true },
    // Same number of t.state points (2+2 → 3+1), in other pods: only the entity of each point tells.
    { what: 'points moved between pods', change: () => points(3, PODS, [2, 3, 1]), reused: false },
    {
      what: 'a pod relabelled',
      change: () => {
        source.add(podEntity(1, { labels: { app: 'relabelled' } }));
        return points(4, PODS, [2, 3, 1]);
      },
      reused: false,
    },
    { what: 'unchanged after the relabel', change: () => points(5, PODS, [2, 3, 1]), reused: true },
    { what: 'a pod gone', change: () => points(6, PODS - 1, [2, 3, 1]), reused: false },
  ];
  let compared = 0;
  for (const [r, round] of rounds.entries()) {
    store.update('p', round.change(), 1_750_000_000_000 + r * 15_000);
    const direct = { ...(await store.collect()).resourceMetrics, resource: AGENT };
    const sdk = twin(direct, { ...(await store.collect()).resourceMetrics, resource: AGENT });
    for (const [n, max] of [5_000, 7, 1].entries()) {
      const want = sdkRequests(sdk, er, max);
      const { made, reused } = groupings;
      const got = encodeMetricRequests(direct, er, max);
      // The first encoding of a collection tells; the next ones (same collection) always reuse it.
      const again = n > 0 || round.reused;
      assert.deepEqual(
        [groupings.made - made, groupings.reused - reused],
        again ? [0, 1] : [1, 0],
        `${round.what}, max ${max}: grouping ${again ? 'reused' : 'made'}`,
      );
      assert.equal(got.length, want.length, `${round.what}, max ${max}: number of requests`);
      for (let i = 0; i < want.length; i++) {
        assert.equal(got[i]!.points, want[i]!.points, `${round.what}, max ${max}, request ${i}: points`);
        assert.ok(
          Buffer.from(got[i]!.bytes).equals(want[i]!.bytes),
          `${round.what}, max ${max}, request ${i}: bytes differ`,
        );
        compared += want[i]!.bytes.length;
      }
    }
  }
  assert.ok(compared > 10_000, `compared ${compared} bytes`);
});

test('a grouping made while an export still reads the last one does not write over it', async () => {
  const source = new StaticEntitySource(Array.from({ length: PODS }, (_, i) => podEntity(i)));
  const store = new MetricStore({ entities: source, labelAllowlist: ['app'] });
  store.setDefinitions(DEFS.map((d) => ({ def: d, probe: 'p', enabled: true })));
  const er = new EntityResources(AGENT);
  store.update('p', points(0, PODS), 1_750_000_000_000);
  const first = { ...(await store.collect()).resourceMetrics, resource: AGENT };
  const want = sdkRequests(first, er, 7);
  const it = metricRequests(first, er, 7);
  const got = [Buffer.from(it.next().value!.bytes)];
  // Meanwhile: the series set changes (points move between pods) and the next collection is exported whole.
  store.update('p', points(1, PODS, [2, 3, 1]), 1_750_000_015_000);
  const { made } = groupings;
  const second = { ...(await store.collect()).resourceMetrics, resource: AGENT };
  encodeMetricRequests(second, er, 7);
  assert.equal(groupings.made - made, 1, 'the second collection made its own grouping');
  for (const r of it) got.push(Buffer.from(r.bytes));
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++)
    assert.ok(got[i]!.equals(want[i]!.bytes), `request ${i}: bytes differ`);
});
