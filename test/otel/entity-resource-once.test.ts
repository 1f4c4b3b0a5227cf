// One Resource per entity over OTLP whatever the number of probes (docs/receiver.md, «One Resource per
// entity»): the series of several probes about one netns share its entity keys, so the encoder writes one
// ResourceMetrics per entity holding every probe's points. Decoded with protobufjs and the vendored
// opentelemetry-proto definitions (test/env/otlp-receiver/proto), not with podnet's encoder.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import protobuf from 'protobufjs';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { EntityResources } from '../../receiver/otel/entity-resources.ts';
import { MetricStore } from '../../receiver/otel/metric-store.ts';
import { encodeMetricRequests } from '../../receiver/otel/protobuf/metrics.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { SeriesKey } from '../../receiver/probe/sink.ts';
import type { MetricDef } from '../../receiver/probe/types.ts';

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
      labels: {},
      ips: [],
      sandboxId: 's',
      hostNetwork: false,
    },
  },
];
// The entities, netns 0 (unattributed) and an unknown inode (unattributed with it).
const NETNS = [100, 200, 300, 0, 999];

const def = (name: string, attributes: string[] = []): MetricDef => ({
  name,
  kind: 'counter',
  unit: '1',
  description: name,
  attributes,
  enabled: true,
});

const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), '../env/otlp-receiver/proto');
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : join(PROTO_DIR, target));
root.loadSync(['opentelemetry/proto/collector/metrics/v1/metrics_service.proto']);
const Request = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');

interface KV {
  key: string;
  value: Record<string, unknown>;
}
interface Decoded {
  resourceMetrics: {
    resource: { attributes: KV[] };
    scopeMetrics: { metrics: { name: string; sum: { dataPoints: unknown[] } }[] }[];
  }[];
}

test('three probes (columns and point objects) about five netns: one ResourceMetrics per entity', async () => {
  const store = new MetricStore({ entities: new StaticEntitySource(ENTITIES) });
  store.setDefinitions([
    { def: def('t.a', ['d']), probe: 'a', enabled: true },
    { def: def('t.b'), probe: 'b', enabled: true },
    { def: def('t.c', ['d']), probe: 'c', enabled: true },
  ]);
  const keys = ['rx', 'tx'].map((d) => new SeriesKey('t.a', { d }));
  for (let round = 0; round < 2; round++) {
    const sink = store.sink('a');
    for (const n of NETNS) for (const k of keys) sink.value(k, n, round + n);
    store.update('a', sink);
    store.update(
      'b',
      NETNS.map((n) => ({ metric: 't.b', netns: n, value: n })),
    );
    store.update(
      'c',
      NETNS.map((n) => ({ metric: 't.c', netns: n, attributes: { d: 'rx' }, value: n })),
    );
  }
  const agent = resourceFromAttributes({ 'service.name': 'podnet', 'host.name': 'n1' });
  const collected = await store.collect();
  const rm: ResourceMetrics = { resource: agent, scopeMetrics: collected.resourceMetrics.scopeMetrics };
  const requests = encodeMetricRequests(rm, new EntityResources(agent), 5000);
  assert.equal(requests.length, 1);
  const decoded = Request.toObject(Request.decode(requests[0]!.bytes), {
    longs: Number,
    defaults: false,
  }) as Decoded;
  const resources = decoded.resourceMetrics.map((r) =>
    JSON.stringify(
      Object.fromEntries(r.resource.attributes.map((kv) => [kv.key, Object.values(kv.value)[0]])),
    ),
  );
  // The agent's Resource holds no point here (every metric is per entity): 5 entity Resources, each once.
  assert.equal(new Set(resources).size, resources.length, `a Resource repeated: ${resources.join('\n')}`);
  assert.equal(resources.length, NETNS.length);
  for (const r of decoded.resourceMetrics) {
    const points = new Map<string, number>();
    for (const sm of r.scopeMetrics)
      for (const m of sm.metrics) points.set(m.name, (points.get(m.name) ?? 0) + m.sum.dataPoints.length);
    assert.deepEqual(Object.fromEntries(points), { 't.a': 2, 't.b': 1, 't.c': 1 });
  }
});
