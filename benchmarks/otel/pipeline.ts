// Cost of the metric pipeline per collection at node scale: N entities × S series each through
// MetricStore.update (entity resolution, series keys, start times), one /metrics scrape (Prometheus text)
// and one OTLP export (http/protobuf, to the test receiver).
//
//   node_modules/.bin/node benchmarks/otel/pipeline.ts [--entities 300] [--series 60] [--rounds 20]
// The /metrics text is built by receiver/otel/prometheus-text.ts; the SDK serializer is timed on the same
// data for comparison (and the two outputs are checked to be identical).
import { performance } from 'node:perf_hooks';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { applyHeapSettings } from '../../receiver/otel/heap.ts';
import { Pipeline } from '../../receiver/otel/pipeline.ts';
import { serializePrometheus } from '../../receiver/otel/prometheus-text.ts';
import { buildResource } from '../../receiver/otel/resource.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricDef, MetricPoint } from '../../receiver/probe/types.ts';
import { startOtlpReceiver } from '../../test/env/otlp-receiver/receiver.ts';

applyHeapSettings(); // as `podnet run` does (Agent.start)
const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('entities', 300);
const S = arg('series', 60);
const ROUNDS = arg('rounds', 20);

const entities: Entity[] = Array.from({ length: N }, (_, i) => ({
  kind: 'pod',
  netnsInode: 4026600000 + i,
  netnsPath: `/proc/${i}/ns/net`,
  displayName: `ns${i % 10}/pod-${i}`,
  pod: {
    uid: `uid-${i}`,
    name: `pod-${i}`,
    namespace: `ns${i % 10}`,
    labels: { app: `app${i % 7}` },
    ips: [],
    sandboxId: `s${i}`,
    hostNetwork: false,
  },
}));
// S series per entity: S/4 counters × 2 directions × 2 interfaces... simplified to S counters keyed by `k`.
const defs: MetricDef[] = [
  {
    name: 'podnet.bench.count',
    kind: 'counter',
    unit: '{packet}',
    description: 'bench',
    attributes: ['podnet.bench.k'],
    enabled: true,
  },
  {
    name: 'podnet.bench.level',
    kind: 'gauge',
    unit: '{socket}',
    description: 'bench',
    attributes: [],
    enabled: true,
  },
  {
    name: 'podnet.bench.duration',
    kind: 'histogram',
    unit: 's',
    description: 'bench',
    attributes: [],
    enabled: true,
  },
];
const bounds = Array.from({ length: 16 }, (_, i) => 2 ** i / 1e6);

function points(round: number): MetricPoint[] {
  const out: MetricPoint[] = [];
  for (const e of entities) {
    for (let k = 0; k < S - 2; k++)
      out.push({
        metric: 'podnet.bench.count',
        netns: e.netnsInode,
        attributes: { 'podnet.bench.k': `k${k}` },
        value: round * 10 + k,
      });
    out.push({ metric: 'podnet.bench.level', netns: e.netnsInode, value: round });
    out.push({
      metric: 'podnet.bench.duration',
      netns: e.netnsInode,
      value: { boundaries: bounds, counts: new Array(17).fill(round), sum: round, count: 17 * round },
    });
  }
  return out;
}

const rx = await startOtlpReceiver({ maxKept: 10 });
const pipeline = new Pipeline({
  entities: new StaticEntitySource(entities),
  log: childLogger('bench'),
  labelAllowlist: ['app'],
  cardinalityLimit: 1_000_000,
});
pipeline.store.setDefinitions(defs.map((def) => ({ def, probe: 'bench', enabled: true })));
await pipeline.applyExports({
  resource: buildResource({ env: {} }),
  prometheus: true,
  metrics: {
    protocol: 'http/protobuf',
    endpoint: rx.httpEndpoint,
    headers: {},
    timeoutMs: 30_000,
    intervalMs: 3_600_000,
  },
});

const t = {
  update: [] as number[],
  scrape: [] as number[],
  sdkSerializer: [] as number[],
  export: [] as number[],
};
const sdkSerializer = new PrometheusSerializer();
let bytes = 0;
for (let r = 1; r <= ROUNDS; r++) {
  const pts = points(r);
  let t0 = performance.now();
  pipeline.store.update('bench', pts);
  t.update.push(performance.now() - t0);
  t0 = performance.now();
  const { resourceMetrics } = await pipeline.prometheus!.collect();
  const text = serializePrometheus(resourceMetrics);
  t.scrape.push(performance.now() - t0);
  t0 = performance.now();
  const sdkText = sdkSerializer.serialize(resourceMetrics);
  t.sdkSerializer.push(performance.now() - t0);
  // The SDK serializer (0.301) writes no unit suffixes and a `# UNIT` line; podnet writes the names of the
  // OTel→Prometheus translation (receiver/otel/prometheus-names.ts) and no `# UNIT` line (the unit is in the
  // name). On this benchmark's three metrics that is the only difference: the histogram's `s` →
  // `_seconds`, and the SDK's UNIT lines. Every HELP, TYPE and sample line must be identical.
  const sdkLines = sdkText.split('\n').filter((l) => !l.startsWith('# UNIT '));
  const ours = text.replaceAll('podnet_bench_duration_seconds', 'podnet_bench_duration').split('\n');
  const i = sdkLines.findIndex((l, k) => l !== ours[k]);
  if (i >= 0 || sdkLines.length !== ours.length)
    throw new Error(
      `serializer output differs from the SDK at line ${i + 1}:\n  sdk:    ${sdkLines[i]}\n  podnet: ${ours[i]}`,
    );
  bytes = text.length;
  t0 = performance.now();
  await pipeline.forceFlush();
  t.export.push(performance.now() - t0);
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const series = pipeline.store.seriesCount();
process.stdout.write(
  `${JSON.stringify(
    {
      entities: N,
      seriesPerEntity: S,
      series,
      medianMs: {
        update: +med(t.update).toFixed(1),
        prometheusScrape: +med(t.scrape).toFixed(1),
        sdkSerializerSameText: +med(t.sdkSerializer).toFixed(1),
        otlpExport: +med(t.export).toFixed(1),
      },
      usPerSeries: {
        update: +((med(t.update) * 1000) / series).toFixed(2),
        prometheusScrape: +((med(t.scrape) * 1000) / series).toFixed(2),
        sdkSerializer: +((med(t.sdkSerializer) * 1000) / series).toFixed(2),
      },
      prometheusTextMB: +(bytes / 1024 / 1024).toFixed(1),
      receiverRequests: Object.fromEntries(rx.requests),
      heapMB: +(process.memoryUsage().heapUsed / 1024 / 1024).toFixed(1),
    },
    null,
    2,
  )}\n`,
);
await pipeline.shutdown();
await rx.down();
