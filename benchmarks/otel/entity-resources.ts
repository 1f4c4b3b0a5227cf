// One Resource per entity in OTLP metrics: what the regrouping costs and what it saves, at node scale (1,000
// pods × 170 series = 170,000 points), in one run. Per round, from the same metric store: (a) collect +
// serialize as one Resource with the entity keys on every point (what podnet sent before), (b) collect +
// regroup into one Resource per entity (receiver/otel/entity-resources.ts) + serialize, with the SDK's
// protobuf serializer. CPU ms (this process) and request bytes; medians and the ratio b / a. Exits non-zero
// when the regrouped requests do not hold every point.
//
//   node benchmarks/otel/entity-resources.ts [--pods 1000] [--series 170] [--rounds 7]
import { loadavg } from 'node:os';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { EntityResources } from '../../receiver/otel/entity-resources.ts';
import { MetricStore } from '../../receiver/otel/metric-store.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricPoint } from '../../receiver/probe/types.ts';
import { finish } from '../lib/finish.ts';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const PODS = arg('pods', 1000);
const SERIES = arg('series', 170);
const ROUNDS = arg('rounds', 7);

const entities: Entity[] = Array.from({ length: PODS }, (_, i) => ({
  kind: 'pod',
  netnsInode: 4_100_000_000 + i,
  netnsPath: '',
  displayName: `shop/web-${i}`,
  pod: {
    uid: `0b8f3c2e-1111-2222-3333-${String(i).padStart(12, '0')}`,
    name: `web-${i}`,
    namespace: 'shop',
    labels: {},
    ips: [],
    sandboxId: '',
    hostNetwork: false,
  },
}));
const store = new MetricStore({ entities: new StaticEntitySource(entities) });
store.setDefinitions(
  Array.from({ length: SERIES }, (_, k) => ({
    def: {
      name: `podnet.bench.c${k}`,
      kind: 'counter' as const,
      unit: '{packet}',
      description: '',
      attributes: k % 2 ? ['network.io.direction'] : [],
      enabled: true,
    },
    probe: 'bench',
    enabled: true,
  })),
);
const dir = Object.freeze({ 'network.io.direction': 'receive' });
const points: MetricPoint[] = [];
for (let i = 0; i < PODS; i++)
  for (let k = 0; k < SERIES; k++)
    points.push({
      metric: `podnet.bench.c${k}`,
      netns: entities[i]!.netnsInode,
      ...(k % 2 ? { attributes: dir } : {}),
      value: i * 1000 + k,
    });
store.update('bench', points);
const agent = resourceFromAttributes({ 'service.name': 'podnet', 'host.name': 'node-1' });
const er = new EntityResources(agent);

const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const count = (rms: ResourceMetrics[]) =>
  rms.reduce(
    (n, rm) =>
      n + rm.scopeMetrics.reduce((a, s) => a + s.metrics.reduce((b, m) => b + m.dataPoints.length, 0), 0),
    0,
  );

const one: number[] = [];
const per: number[] = [];
let bytesOne = 0;
let bytesPer = 0;
const failures: string[] = [];
for (let r = 0; r < ROUNDS; r++) {
  let t = cpuMs();
  const a = { ...(await store.collect()).resourceMetrics, resource: agent };
  bytesOne = ProtobufMetricsSerializer.serializeRequest(a)!.length;
  one.push(cpuMs() - t);
  t = cpuMs();
  const b = er.byEntity({ ...(await store.collect()).resourceMetrics, resource: agent });
  bytesPer = 0;
  for (const rm of b) bytesPer += ProtobufMetricsSerializer.serializeRequest(rm)!.length;
  per.push(cpuMs() - t);
  if (b.length !== PODS + 1 || count(b) !== PODS * SERIES)
    failures.push(
      `round ${r}: ${b.length} Resources holding ${count(b)} points, expected ${PODS + 1} holding ${PODS * SERIES}`,
    );
}
const median = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
const result = {
  points: PODS * SERIES,
  rounds: ROUNDS,
  cpuMsPerExport: {
    oneResourceEntityKeysOnPoints: Math.round(median(one)),
    resourcePerEntity: Math.round(median(per)),
  },
  cpuRatioPerEntityOverOne: +(median(per) / median(one)).toFixed(2),
  requestMB: { oneResource: +(bytesOne / 1e6).toFixed(1), perEntity: +(bytesPer / 1e6).toFixed(1) },
  rounds_ms: { one: one.map(Math.round), perEntity: per.map(Math.round) },
  loadavg1m: loadavg()[0],
  everyPointOnce: failures.length === 0,
};
finish(JSON.stringify(result, null, 2), failures);
