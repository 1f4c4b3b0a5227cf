// The /metrics serializer must produce exactly what the official OTel PrometheusSerializer produces, but for
// the metric names, which are those of the OTel→Prometheus translation with unit suffixes (checked against
// the reference implementation's expectations in prometheus-names.test.ts), and no `# UNIT` lines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { DataPointType } from '@opentelemetry/sdk-metrics';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { Pipeline } from '../../receiver/otel/pipeline.ts';
import { prometheusName } from '../../receiver/otel/prometheus-names.ts';
import { serializePrometheus } from '../../receiver/otel/prometheus-text.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { HOST_ENTITY } from '../../receiver/pods/entity.ts';
import type { MetricDef } from '../../receiver/probe/types.ts';

const POD: Entity = {
  kind: 'pod',
  netnsInode: 77,
  netnsPath: '/x',
  displayName: 'a/b',
  pod: {
    uid: 'u"1',
    name: 'we\\ird\nname',
    namespace: 'ns',
    labels: { 'app.kubernetes.io/name': 'x"y' },
    ips: [],
    sandboxId: '',
    hostNetwork: false,
  },
};

const extra: MetricDef[] = [
  {
    name: 'podnet.odd-name.total',
    kind: 'counter',
    unit: '',
    description: '',
    attributes: ['n', 'arr', 'b'],
    enabled: true,
  },
  {
    name: 'podnet.updown',
    kind: 'updowncounter',
    unit: '{x}',
    description: 'line1\nline2 \\ back',
    attributes: [],
    enabled: true,
  },
  {
    name: 'podnet.inf.duration',
    kind: 'histogram',
    unit: 's',
    description: 'h',
    attributes: [],
    enabled: true,
  },
];

test('serializePrometheus equals the SDK PrometheusSerializer on every metric shape and awkward values', async () => {
  const p = new Pipeline({
    entities: new StaticEntitySource([HOST_ENTITY, POD]),
    log: childLogger('test'),
    labelAllowlist: ['app.kubernetes.io/*'],
  });
  p.store.setDefinitions([
    ...syntheticSpec.metrics.map((def) => ({ def, probe: 'synthetic', enabled: true })),
    ...extra.map((def) => ({ def, probe: 'x', enabled: true })),
  ]);
  await p.applyExports({
    resource: resourceFromAttributes({ 'service.name': 'podnet', 'weird key.x': 'v"\\\n', n: 3 }),
    prometheus: true,
  });
  const probe = await syntheticSpec.create(
    { log: childLogger('t'), entities: new StaticEntitySource([HOST_ENTITY, POD]), emit: () => undefined },
    syntheticSpec.args.parse({ gauge_value: 1.25 }),
  );
  for (let i = 0; i < 2; i++) p.store.update('synthetic', await probe.collect([HOST_ENTITY, POD]));
  await probe.close();
  p.store.update('x', [
    {
      metric: 'podnet.odd-name.total',
      netns: 77,
      attributes: { n: 5, arr: ['a', 'b"c'], b: true },
      value: 3,
    },
    { metric: 'podnet.odd-name.total', netns: 0, value: 2.5 },
    // Point attributes that collide with an entity key, integer-like keys, a frozen shared object.
    { metric: 'podnet.odd-name.total', netns: 77, attributes: { 'podnet.entity.kind': 'x', n: 1 }, value: 1 },
    { metric: 'podnet.odd-name.total', netns: 77, attributes: { '7': 'seven', b: false }, value: 1 },
    { metric: 'podnet.odd-name.total', netns: 77, attributes: Object.freeze({ n: 9 }), value: 1 },
    { metric: 'podnet.odd-name.total', netns: 0, attributes: Object.freeze({ n: 9 }), value: 1 },
    { metric: 'podnet.updown', netns: 77, value: -4 },
    {
      metric: 'podnet.inf.duration',
      netns: 77,
      value: { boundaries: [0.5, Number.POSITIVE_INFINITY], counts: [1, 2, 0], sum: 9, count: 3 },
    },
  ]);
  p.self.recordCollection('synthetic', 0.003, true);
  const { resourceMetrics } = await p.prometheus!.collect();
  const sdk = new PrometheusSerializer().serialize(resourceMetrics);
  // The SDK's names (sanitized, `_total` on counters) → the translation's, and no `# UNIT` lines.
  const renames = new Map<string, string>();
  for (const sm of resourceMetrics.scopeMetrics)
    for (const m of sm.metrics) {
      let old = m.descriptor.name.replace(/[^a-z0-9_]/gi, '_').replace(/_{2,}/g, '_');
      const monotonic = m.dataPointType === DataPointType.SUM && m.isMonotonic;
      if (monotonic && !old.endsWith('_total')) old += '_total';
      const type =
        m.dataPointType === DataPointType.HISTOGRAM
          ? 'histogram'
          : m.dataPointType === DataPointType.SUM
            ? monotonic
              ? 'counter'
              : 'updowncounter'
            : 'gauge';
      renames.set(old, prometheusName(m.descriptor.name, m.descriptor.unit, type));
    }
  const rename = (n: string): string => renames.get(n) ?? n;
  const expected = sdk
    .split('\n')
    .filter((l) => !l.startsWith('# UNIT '))
    .map((l) => {
      const meta = /^# (HELP|TYPE) (\S+)(.*)$/.exec(l);
      if (meta) return `# ${meta[1]} ${rename(meta[2]!)}${meta[3]}`;
      const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*?)(_bucket|_sum|_count)?([{ ].*)$/.exec(l);
      if (!sample) return l;
      const whole = sample[1]! + (sample[2] ?? '');
      if (renames.has(whole)) return rename(whole) + sample[3];
      return rename(sample[1]!) + (sample[2] ?? '') + sample[3];
    })
    .join('\n');
  const got = serializePrometheus(resourceMetrics);
  assert.ok(sdk.includes('podnet_synthetic_latency_duration_bucket'), 'sample covers histograms');
  assert.ok(got.includes('podnet_synthetic_latency_duration_seconds_bucket{'), 'unit suffix');
  assert.ok(got.includes('podnet_probe_collection_duration_seconds_count{'), 'unit suffix (self-telemetry)');
  assert.ok(expected.includes('\\"'), 'sample covers escaping');
  assert.equal(got, expected);
  await p.shutdown();
});
