// One collection of many series is exported as several OTLP requests of bounded size (the SDK exporters
// send one request per export): at 1,000 pods a single request is ~25 MB, over the 4 MiB a gRPC receiver
// accepts by default. Checked against a real OTLP receiver (gRPC and HTTP/protobuf, decoded with the
// opentelemetry-proto definitions): every point arrives exactly once with its value, the number of
// requests is what the limit implies, a request over the limit is refused by the gRPC receiver, and a
// failed request fails the export once without sending the rest.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { EntityResources } from '../../receiver/otel/entity-resources.ts';
import {
  CountingMetricExporter,
  METRIC_POINTS_PER_REQUEST,
  type MultiResourceMetricExporter,
  type OtlpProtocol,
  splitResourceMetrics,
} from '../../receiver/otel/exporters.ts';
import { MetricStore } from '../../receiver/otel/metric-store.ts';
import { createMetricExporter } from '../../receiver/otel/otlp-metric-exporter.ts';
import type { MetricDef, MetricPoint } from '../../receiver/probe/types.ts';
import { type OtlpReceiver, startOtlpReceiver } from '../env/otlp-receiver/receiver.ts';
import { podEntity } from '../env/pod-entity.ts';

const PODS = 400;
const COUNTERS = 90; // 400 pods × (90 counters + 1 histogram) = 36,400 series, ~5.5 MB of protobuf

const counters: MetricDef[] = Array.from({ length: COUNTERS }, (_, k) => ({
  name: `podnet.chunk.c${k}`,
  kind: 'counter',
  unit: '{packet}',
  description: `counter ${k}`,
  attributes: [],
  enabled: true,
}));
const hist: MetricDef = {
  name: 'podnet.chunk.rtt',
  kind: 'histogram',
  unit: 's',
  description: 'rtt',
  attributes: ['network.transport'],
  enabled: true,
};

/** A store holding one collection: counter k of pod i = i * 1000 + k; pod i's histogram counts i + 1. */
async function collection(): Promise<ResourceMetrics> {
  const entities = Array.from({ length: PODS }, (_, i) => podEntity(i));
  const store = new MetricStore({ entities: new StaticEntitySource(entities) });
  store.setDefinitions([...counters, hist].map((def) => ({ def, probe: 'p', enabled: true })));
  const points: MetricPoint[] = [];
  for (let i = 0; i < PODS; i++) {
    const netns = entities[i]!.netnsInode;
    for (let k = 0; k < COUNTERS; k++)
      points.push({ metric: `podnet.chunk.c${k}`, netns, value: i * 1000 + k });
    const boundaries = Array.from({ length: 16 }, (_, b) => 2 ** b / 1e6);
    const counts = Array.from({ length: 17 }, (_, b) => (b === 3 ? i + 1 : 0));
    points.push({
      metric: hist.name,
      netns,
      attributes: { 'network.transport': 'tcp' },
      value: { boundaries, counts, sum: (i + 1) * 1e-5, count: i + 1 },
    });
  }
  store.update('p', points, 1_750_000_000_000);
  const { resourceMetrics } = await store.collect();
  return { ...resourceMetrics, resource: resourceFromAttributes({ 'service.name': 'podnet-test' }) };
}

function exportOnce(exporter: PushMetricExporter, rm: ResourceMetrics): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(rm, resolve));
}

let rx: OtlpReceiver;
let rm: ResourceMetrics;
const SERIES = PODS * (COUNTERS + 1);
before(async () => {
  rx = await startOtlpReceiver({ maxKept: 1_000_000 });
  rm = await collection();
});
after(async () => {
  await rx.down();
});

test('splitResourceMetrics: points kept in order, each request within the limit (histograms weighted)', () => {
  const all = rm.scopeMetrics.flatMap((s) => s.metrics.flatMap((m) => m.dataPoints.map((p) => [m, p])));
  assert.equal(all.length, SERIES);
  for (const max of [1, 7, 1000, METRIC_POINTS_PER_REQUEST, 1e9]) {
    const parts = splitResourceMetrics([rm], max);
    const flat = parts.flatMap((req) =>
      req.flatMap((r) =>
        r.scopeMetrics.flatMap((s) => s.metrics.flatMap((m) => m.dataPoints.map((p) => [m, p]))),
      ),
    );
    assert.equal(flat.length, all.length, `max ${max}: every point once`);
    for (let i = 0; i < all.length; i++) {
      assert.equal(flat[i]![1], all[i]![1], `max ${max}: point ${i} in order`);
      assert.equal(
        (flat[i]![0] as { descriptor: unknown }).descriptor,
        (all[i]![0] as { descriptor: unknown }).descriptor,
      );
    }
    for (const req of parts) {
      assert.equal(req.length, 1);
      const r = req[0]!;
      assert.equal(r.resource, rm.resource);
      // A histogram point (17 buckets) weighs 1 + ceil(17 / 4) = 6; one point alone may exceed a tiny limit.
      let weight = 0;
      for (const s of r.scopeMetrics)
        for (const m of s.metrics) weight += m.dataPoints.length * (m.descriptor.name === hist.name ? 6 : 1);
      assert.ok(weight <= Math.max(max, 6), `max ${max}: request of weight ${weight}`);
    }
    if (max === 1e9) assert.equal(parts.length, 1, 'all in one request when it fits');
    if (max === METRIC_POINTS_PER_REQUEST)
      assert.equal(parts.length, Math.ceil((PODS * COUNTERS + PODS * 6) / max));
  }
  const empty = splitResourceMetrics([{ resource: rm.resource, scopeMetrics: [] }], 10);
  assert.equal(empty.length, 1, 'an empty collection is still one (empty) request');
  assert.equal(empty[0]![0]!.resource, rm.resource);
});

test('byEntity: one ResourceMetrics per pod with the pod keys, point attributes without them', () => {
  const rms = new EntityResources(rm.resource).byEntity(rm);
  assert.equal(rms.length, 1 + PODS, 'the agent resource, then one per pod');
  assert.equal(rms[0]!.resource, rm.resource);
  assert.equal(rms[0]!.scopeMetrics.length, 0, 'no agent metrics in this collection');
  const uids = new Set<string>();
  for (const r of rms.slice(1)) {
    const a = r.resource.attributes;
    assert.equal(a['service.name'], 'podnet-test', 'on top of the agent attributes');
    assert.equal(a['podnet.entity.kind'], 'pod');
    assert.equal(a['k8s.namespace.name'], 'shop');
    const uid = String(a['k8s.pod.uid']);
    assert.equal(a['k8s.pod.name'], `web-${Number(uid.slice(-12))}`);
    uids.add(uid);
    const pts = r.scopeMetrics.flatMap((s) =>
      s.metrics.flatMap((m) => (m.dataPoints as { attributes: Record<string, unknown> }[]).slice()),
    );
    assert.equal(pts.length, COUNTERS + 1);
    for (const p of pts) {
      assert.equal(p.attributes['k8s.pod.uid'], undefined);
      assert.equal(p.attributes['podnet.entity.kind'], undefined);
    }
  }
  assert.equal(uids.size, PODS);
  // Splitting keeps each request's resources whole per point and within the limit.
  const reqs = splitResourceMetrics(rms, METRIC_POINTS_PER_REQUEST);
  assert.equal(reqs.length, Math.ceil((PODS * COUNTERS + PODS * 6) / METRIC_POINTS_PER_REQUEST));
});

for (const protocol of ['grpc', 'http/protobuf', 'http/json'] as const satisfies readonly OtlpProtocol[]) {
  test(`${protocol}: a collection of ${SERIES} series arrives whole, in bounded requests`, async () => {
    rx.clear();
    const endpoint = protocol === 'grpc' ? rx.grpcEndpoint : rx.httpEndpoint;
    const inner = await createMetricExporter({ protocol, endpoint, headers: {}, timeoutMs: 20_000 });
    const results: boolean[] = [];
    const exporter = new CountingMetricExporter(inner, (ok) => results.push(ok), {
      entities: new EntityResources(rm.resource),
    });
    try {
      const r = await exportOnce(exporter, rm);
      assert.equal(r.code, ExportResultCode.SUCCESS, String(r.error));
      assert.deepEqual(results, [true], 'one result per export');
      const requests = rx.requests.get(`metrics ${protocol}`) ?? 0;
      // 36,000 counter points + 400 histogram points of weight 6 = 38,400 → 8 requests of ≤ 5,000.
      assert.equal(requests, Math.ceil((PODS * COUNTERS + PODS * 6) / METRIC_POINTS_PER_REQUEST));
      assert.equal(rx.points.length, SERIES);
      const seen = new Set<string>();
      for (const p of rx.points) {
        // Pod keys on the Resource (one per pod), not on the points.
        const uid = String(p.resource['k8s.pod.uid']);
        assert.equal(p.resource['k8s.pod.name'], `web-${Number(uid.slice(-12))}`);
        assert.equal(p.attributes['k8s.pod.uid'], undefined);
        const i = Number(uid.slice(-12));
        const key = `${p.name} ${uid}`;
        assert.ok(!seen.has(key), `${key} received twice`);
        seen.add(key);
        assert.equal(p.resource['service.name'], 'podnet-test');
        if (p.name === hist.name) {
          assert.equal(p.type, 'histogram');
          assert.equal(p.histogram?.count, i + 1);
          assert.equal(p.histogram?.bucketCounts[3], i + 1);
        } else {
          assert.equal(p.type, 'sum');
          assert.equal(p.value, i * 1000 + Number(p.name.slice('podnet.chunk.c'.length)));
        }
      }
      assert.equal(seen.size, SERIES);
    } finally {
      await exporter.shutdown();
    }
  });
}

test('grpc: the same collection as one request is refused by the receiver (over 4 MiB)', async () => {
  rx.clear();
  const inner = await createMetricExporter({
    protocol: 'grpc',
    endpoint: rx.grpcEndpoint,
    headers: {},
    timeoutMs: 20_000,
  });
  const results: boolean[] = [];
  const exporter = new CountingMetricExporter(inner, (ok) => results.push(ok), {
    maxPointsPerRequest: Number.MAX_SAFE_INTEGER,
  });
  try {
    const r = await exportOnce(exporter, rm);
    assert.equal(r.code, ExportResultCode.FAILED);
    assert.match(String(r.error), /RESOURCE_EXHAUSTED|larger than max|8: /i);
    assert.deepEqual(results, [false]);
    assert.equal(rx.points.length, 0);
  } finally {
    await exporter.shutdown();
  }
});

test('a failed request fails the export once and the remaining requests are not sent', async () => {
  const sent: number[] = [];
  let calls = 0;
  const inner: MultiResourceMetricExporter = {
    export(req, cb) {
      calls++;
      sent.push(
        (req as ResourceMetrics[]).reduce(
          (t, m) =>
            t +
            m.scopeMetrics.reduce((n, s) => n + s.metrics.reduce((a, x) => a + x.dataPoints.length, 0), 0),
          0,
        ),
      );
      // The third request fails.
      cb(
        calls === 3
          ? { code: ExportResultCode.FAILED, error: new Error('boom') }
          : { code: ExportResultCode.SUCCESS },
      );
    },
    forceFlush: async () => undefined,
    shutdown: async () => undefined,
  };
  const results: Array<[boolean, string | undefined]> = [];
  const exporter = new CountingMetricExporter(inner, (ok, err) => results.push([ok, err?.message]), {
    maxPointsPerRequest: 1000,
  });
  const r = await exportOnce(exporter, rm);
  assert.equal(r.code, ExportResultCode.FAILED);
  assert.equal(calls, 3);
  assert.deepEqual(sent, [1000, 1000, 1000]);
  assert.deepEqual(results, [[false, 'boom']]);
});
