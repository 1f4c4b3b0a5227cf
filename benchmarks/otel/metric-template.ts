// Would a per-collection OTLP "template" pay at 1,000 netns? The idea: keep the previous collection's
// encoded requests and, when the series set and layout are unchanged, only patch each point's fixed-width
// fields (start time and time fixed64, as_int sfixed64 / as_double double and its tag byte) in place.
// This measures, in one process and one invocation, alternating round by round on the same store:
//   collect  MetricStore.collect() alone (metric-data.ts collectSeries: what both paths start from);
//   encode   collect + the direct encoder (protobuf/metrics.ts metricRequests, one reused buffer, as the
//            exporter runs it), every request's bytes read;
//   patch    collect + the template's least possible work: per series, in collection order, an identity
//            check against the previous collection's series and the three fixed-width fields written at
//            offsets remembered from a first encode (no validity check per entity or request, no
//            histograms: an optimistic floor of what a template costs).
// Between rounds the store takes a new collection of every probe (new values, a 15 s later time), so the
// patched bytes must change; after each patch round they are compared byte for byte with a fresh encode of
// the same collection (a failure exits 1). Also printed: the bytes a template keeps between collections
// (the whole encoded collection: the reused request buffer is overwritten request by request), against the
// RSS row's margin (benchmarks/RESULTS.md, section «Scale»).
//
//   node --expose-gc benchmarks/otel/metric-template.ts [--pods 1000] [--rounds 9]
import { parseArgs } from 'node:util';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { probeSpecs } from '../../probes/registry.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { EntityResources } from '../../receiver/otel/entity-resources.ts';
import { METRIC_POINTS_PER_REQUEST } from '../../receiver/otel/exporters.ts';
import { type MetricSeries, MetricStore } from '../../receiver/otel/metric-store.ts';
import { TimeCode } from '../../receiver/otel/protobuf/fields.ts';
import { metricRequests } from '../../receiver/otel/protobuf/metrics.ts';
import { putDouble, putFixed64 } from '../../receiver/otel/protobuf/writer.ts';
import type { MetricPoint } from '../../receiver/probe/types.ts';
import { combos } from '../lib/attribute-combos.ts';
import { benchPods } from '../lib/event-bench.ts';
import { finish } from '../lib/finish.ts';

const { values: o } = parseArgs({
  options: { pods: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '9' } },
});
const PODS = Number(o.pods);
const ROUNDS = Number(o.rounds);
if (!(PODS >= 1 && ROUNDS >= 1)) {
  console.error(
    'usage: node --expose-gc benchmarks/otel/metric-template.ts [--pods N >= 1] [--rounds N >= 1]',
  );
  process.exit(2);
}
const gc = (globalThis as { gc?: () => void }).gc;
const failures: string[] = [];

// The default metric set's number metrics, with the attribute value sets of benchmarks/scale/export.ts
// (benchmarks/lib/attribute-combos.ts; its histograms left out: see the file comment).
const entities = benchPods(PODS, 4026600000);
const store = new MetricStore({ entities: new StaticEntitySource(entities), cardinalityLimit: 1_000_000 });
const specs = probeSpecs.filter((s) => s.defaultEnabled);
store.setDefinitions(
  specs.flatMap((s) => s.metrics.map((def) => ({ def, probe: s.name, enabled: def.enabled }))),
);
const byProbe = new Map<string, MetricPoint[]>();
for (const s of specs) {
  const pts: MetricPoint[] = [];
  // Netns after netns, each netns' metrics in declaration order (as the per-netns probes report them: the
  // store's series of a netns are then made together, and the encoder reads them entity by entity).
  const defs = s.metrics.filter(
    // Number metrics only: the patch floor below writes number points.
    (def) =>
      def.enabled &&
      (def.scope ?? 'entity') === 'entity' &&
      def.kind !== 'histogram' &&
      !def.name.startsWith('podnet.ebpf.'),
  );
  const cs = defs.map((def) => combos(def.attributes).map((a) => Object.freeze(a)));
  for (let i = 0; i < PODS; i++)
    defs.forEach((def, d) => {
      for (const a of cs[d]!)
        pts.push({
          metric: def.name,
          netns: 4026600000 + i,
          ...(Object.keys(a).length ? { attributes: a } : {}),
          value: i * 100 + 7,
        });
    });
  if (pts.length > 0) byProbe.set(s.name, pts);
}
let now = Date.now();
let tick = 0;
/** The first gauge: its values are doubles every other collection (as_int <-> as_double, its tag byte). */
const gauges = new Set(
  specs
    .flatMap((s) => s.metrics)
    .filter((d) => d.kind === 'gauge')
    .map((d) => d.name),
);
const flipping = [...byProbe.values()].flat().find((p) => gauges.has(p.metric))?.metric;
if (flipping === undefined)
  failures.push('no gauge in the metric set: the int <-> double change is not covered');
/** A new collection of every probe: counters grow (start times kept), one gauge flips int <-> double. */
function update(): void {
  tick++;
  now += 15_000;
  for (const [p, pts] of byProbe) {
    for (let k = 0; k < pts.length; k++) {
      const pt = pts[k]!;
      const v = Math.floor(pt.value as number) + 3 + (k % 5);
      (pt as { value: number }).value = pt.metric === flipping && tick % 2 === 1 ? v + 0.25 : v;
    }
    store.update(p, pts, now);
  }
}
update();
const resource = resourceFromAttributes({ 'service.name': 'podnet', 'host.name': 'bench' });
const er = new EntityResources(resource);

async function collection(): Promise<ResourceMetrics> {
  const { resourceMetrics } = await store.collect();
  return { ...resourceMetrics, resource };
}
function release(rm: ResourceMetrics): void {
  for (const m of rm.scopeMetrics[0]?.metrics ?? [])
    (m as unknown as { collection?: { release(): void } }).collection?.release();
}
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The requests of one collection, copied (the encoder reuses its buffer). */
function encodeAll(rm: ResourceMetrics): Buffer[] {
  const out: Buffer[] = [];
  for (const r of metricRequests(rm, er, METRIC_POINTS_PER_REQUEST, true)) out.push(Buffer.from(r.bytes));
  return out;
}

// --- The template: where each number point's fixed-width fields are, by request, in output order.
function varint(b: Buffer, p: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const x = b[p++]!;
    v += (x & 0x7f) * mul;
    if (x < 0x80) return [v, p];
    mul *= 128;
  }
}
/** Offsets of the start-time tag of every NumberDataPoint of a request, in order. */
function pointOffsets(b: Buffer): number[] {
  const out: number[] = [];
  const walk = (from: number, to: number, depth: number): void => {
    let p = from;
    while (p < to) {
      const [key, q] = varint(b, p);
      const field = Math.floor(key / 8);
      const wire = key & 7;
      p = q;
      if (wire === 0) p = varint(b, p)[1];
      else if (wire === 1) p += 8;
      else if (wire === 5) p += 4;
      else {
        const [len, r] = varint(b, p);
        const inner =
          (depth === 0 && field === 1) || (depth === 1 && field === 2) || (depth === 2 && field === 2);
        const data = depth === 3 && (field === 5 || field === 7);
        if (inner || data) walk(r, r + len, depth + 1);
        else if (depth === 4 && field === 1) {
          if (b[r] !== 0x11) throw new Error(`point at ${r} does not start with its start time`);
          out.push(r);
        }
        p = r + len;
      }
    }
  };
  walk(0, b.length, 0);
  return out;
}
/** The encoder's point order (protobuf/metrics.ts byEntity): by entity, first appearance, agent first. */
function outputOrder(series: readonly MetricSeries[], entityOf: Int32Array): Int32Array {
  const bucketOfEntity = new Map<number, number>();
  const bucket = new Int32Array(series.length);
  let buckets = 1;
  for (let i = 0; i < series.length; i++) {
    const e = entityOf[i]!;
    if (e < 0) continue;
    let b = bucketOfEntity.get(e);
    if (b === undefined) {
      b = buckets++;
      bucketOfEntity.set(e, b);
    }
    bucket[i] = b;
  }
  const start = new Int32Array(buckets + 1);
  for (let i = 0; i < series.length; i++) start[bucket[i]! + 1]!++;
  for (let b = 0; b < buckets; b++) start[b + 1]! += start[b]!;
  const order = new Int32Array(series.length);
  for (let i = 0; i < series.length; i++) order[start[bucket[i]!]!++] = i;
  return order;
}
interface Template {
  readonly bufs: Buffer[];
  readonly series: readonly MetricSeries[];
  /** Per collection index: its request and the offset of its point's start-time tag there. */
  readonly req: Int32Array;
  readonly at: Int32Array;
}
function makeTemplate(rm: ResourceMetrics): Template {
  const c = (
    rm.scopeMetrics[0]!.metrics[0] as unknown as {
      collection: { series: MetricSeries[]; entityOf: Int32Array };
    }
  ).collection;
  const bufs = encodeAll(rm);
  const order = outputOrder(c.series, c.entityOf);
  const req = new Int32Array(order.length);
  const at = new Int32Array(order.length);
  let o = 0;
  bufs.forEach((b, r) => {
    for (const off of pointOffsets(b)) {
      const i = order[o++]!;
      req[i] = r;
      at[i] = off;
    }
  });
  if (o !== order.length) throw new Error(`template: ${o} points found, ${order.length} series`);
  return { bufs, series: [...c.series], req, at };
}
const start = new TimeCode();
let ints = new Uint8Array(0);
const end = new TimeCode();
/** Patch `t` to `rm`'s values; false when a series differs from the template's (re-encode instead). */
function patch(t: Template, rm: ResourceMetrics): boolean {
  const series = (rm.scopeMetrics[0]!.metrics[0] as unknown as { collection: { series: MetricSeries[] } })
    .collection.series;
  if (series.length !== t.series.length) return false;
  const { bufs, req, at } = t;
  // The value type is the metric's, per collection (metric-data.ts numberValueType).
  if (ints.length < series.length) ints = new Uint8Array(series.length);
  for (const m of rm.scopeMetrics[0]!.metrics) {
    const st = m as unknown as { from: number; to: number };
    ints.fill(m.descriptor.valueType === 0 ? 1 : 0, st.from, st.to);
  }
  for (let i = 0; i < series.length; i++) {
    const s = series[i]!;
    if (s !== t.series[i]) return false;
    const b = bufs[req[i]!]!;
    const p = at[i]!;
    start.of(s.startTime);
    end.of(s.time);
    putFixed64(b, p + 1, start.lo, start.hi);
    putFixed64(b, p + 10, end.lo, end.hi);
    const v = s.value as number;
    if (ints[i] === 1) {
      b[p + 18] = 0x31;
      if (v >= 0) putFixed64(b, p + 19, v >>> 0, (v / 4294967296) >>> 0);
      else return false; // not in this benchmark's data
    } else {
      b[p + 18] = 0x21;
      putDouble(b, p + 19, v);
    }
  }
  return true;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const t = makeTemplate(await collection());
const kept = t.bufs.reduce((n, b) => n + b.length, 0);
const times: Record<'collect' | 'encode' | 'patch', number[]> = { collect: [], encode: [], patch: [] };
for (let r = 0; r < ROUNDS + 1; r++) {
  update();
  // Each round: the three in a rotating order (none always first after the update and the GC).
  const kinds = (['collect', 'encode', 'patch'] as const).map((_, k, a) => a[(k + r) % 3]!);
  for (const kind of kinds) {
    gc?.();
    const c0 = cpuMs();
    const rm = await collection();
    if (kind === 'encode') {
      let n = 0;
      for (const q of metricRequests(rm, er, METRIC_POINTS_PER_REQUEST, true))
        n += q.bytes[q.bytes.length - 1]!;
      if (n < 0) throw new Error('unreachable');
    } else if (kind === 'patch' && !patch(t, rm)) failures.push(`round ${r}: the series set changed`);
    const ms = cpuMs() - c0;
    // Done with it, as the exporter is once a collection is sent (else the next update makes its points).
    release(rm);
    if (r > 0) times[kind].push(ms);
    if (kind === 'patch') {
      // The patched template must be the fresh encode of the same collection, byte for byte.
      const fresh = encodeAll(await collection());
      const same = fresh.length === t.bufs.length && fresh.every((b, k) => b.equals(t.bufs[k]!));
      if (!same) failures.push(`round ${r}: patched bytes differ from a fresh encode`);
    }
  }
}
const rows = {
  pods: PODS,
  series: store.seriesCount(),
  requests: t.bufs.length,
  templateMb: +(kept / 2 ** 20).toFixed(1),
  rounds: ROUNDS,
  collectMs: +median(times.collect).toFixed(1),
  encodeMs: +median(times.encode).toFixed(1),
  patchMs: +median(times.patch).toFixed(1),
  encodeOnlyMs: +(median(times.encode) - median(times.collect)).toFixed(1),
  patchOnlyMs: +(median(times.patch) - median(times.collect)).toFixed(1),
  patchVsEncode: +(median(times.patch) / median(times.encode)).toFixed(3),
  encodeRangeMs: [Math.min(...times.encode), Math.max(...times.encode)].map((x) => +x.toFixed(1)),
  patchRangeMs: [Math.min(...times.patch), Math.max(...times.patch)].map((x) => +x.toFixed(1)),
};
finish(JSON.stringify(rows), failures);
