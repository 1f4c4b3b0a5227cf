// The store's collect and the direct OTLP metrics encoder at 1,000-entity scale, as the exporter runs them
// (protobuf/metrics.ts metricRequests, one reused buffer, per-entity Resources), A/B between checkouts in
// one process. The store holds the default metric set (histograms included, attribute value sets of
// benchmarks/lib/attribute-combos.ts), fed as the per-netns probes report it: netns after netns, each
// netns' metrics in declaration order (benchmarks/scale/export.ts feeds metric after metric, which makes
// the store's series of an entity far apart and the encoder's grouping unlike the agent's). Between
// rounds every probe takes a new collection (values grow, time +15 s), so the bytes change each round.
// Per round and checkout, alternating: `collect` (MetricStore.collect, released) and `encode` (collect +
// every request written). CPU is this process's user + system; `allocMb` the heap allocated (GCProfiler).
// Every checkout's requests of the same round must be the same bytes (else it fails, exit 1).
//
//   node --expose-gc benchmarks/otel/encode-scale.ts [--pods 1000] [--rounds 9] [--root NAME=DIR]...
// Two copies of each arm (e.g. --root base=/tmp/b --root now=. --root base2=/tmp/b --root now2=.) show
// the A/A noise.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GCProfiler } from 'node:v8';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { syntheticPoints } from '../lib/attribute-combos.ts';
import { benchPods } from '../lib/event-bench.ts';
import { finish } from '../lib/finish.ts';

const { values: o } = parseArgs({
  options: {
    pods: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '9' },
    root: { type: 'string', multiple: true },
  },
});
const PODS = Number(o.pods);
const ROUNDS = Number(o.rounds);
if (!(PODS >= 1 && ROUNDS >= 1)) {
  console.error(
    'usage: node --expose-gc benchmarks/otel/encode-scale.ts [--pods N] [--rounds N] [--root N=DIR]',
  );
  process.exit(2);
}
const HERE = new URL('../../', import.meta.url).pathname;
const gc = (globalThis as { gc?: () => void }).gc;
const failures: string[] = [];

// biome-ignore lint/suspicious/noExplicitAny: modules of another checkout.
type Module = any;
interface Arm {
  name: string;
  store: Module;
  er: Module;
  metricRequests: Module;
  max: number;
  byProbe: Map<string, { metric: string; netns: number; attributes?: object; value: unknown }[]>;
  collect: number[];
  encode: number[];
  allocMb: number[];
  requests: number;
  bytes: number;
  hash: string;
}

const resource = resourceFromAttributes({ 'service.name': 'podnet', 'host.name': 'bench' });
const arms: Arm[] = [];
for (const spec of o.root ?? [`now=${HERE}`]) {
  const [name, dir] = spec.includes('=') ? (spec.split('=') as [string, string]) : ['now', spec];
  const r = `${resolve(dir)}/`;
  const storeMod = await import(`${r}receiver/otel/metric-store.ts`);
  const entMod = await import(`${r}receiver/agent/static-entities.ts`);
  const erMod = await import(`${r}receiver/otel/entity-resources.ts`);
  const regMod = await import(`${r}probes/registry.ts`);
  const expMod = await import(`${r}receiver/otel/exporters.ts`);
  const encMod = await import(`${r}receiver/otel/protobuf/metrics.ts`);
  const store = new storeMod.MetricStore({
    entities: new entMod.StaticEntitySource(benchPods(PODS, 4026600000)),
    cardinalityLimit: 1_000_000,
  });
  // biome-ignore lint/suspicious/noExplicitAny: probe specs of that checkout.
  const specs = (regMod.probeSpecs as any[]).filter((s) => s.defaultEnabled);
  store.setDefinitions(
    // biome-ignore lint/suspicious/noExplicitAny: metric defs.
    specs.flatMap((s) => s.metrics.map((def: any) => ({ def, probe: s.name, enabled: def.enabled }))),
  );
  const byProbe: Arm['byProbe'] = new Map();
  for (const s of specs) {
    const pts = syntheticPoints(s.metrics, PODS, 4026600000) as Arm['byProbe'] extends Map<string, infer P>
      ? P
      : never;
    if (pts.length > 0) byProbe.set(s.name, pts);
  }
  arms.push({
    name,
    store,
    er: new erMod.EntityResources(resource),
    metricRequests: encMod.metricRequests,
    max: expMod.METRIC_POINTS_PER_REQUEST,
    byProbe,
    collect: [],
    encode: [],
    allocMb: [],
    requests: 0,
    bytes: 0,
    hash: '',
  });
}

const now = Date.now();
/** A new collection of every probe of `a` (the same values for every arm: same round, same keys). */
function update(a: Arm, round: number): void {
  for (const [p, pts] of a.byProbe) {
    for (let k = 0; k < pts.length; k++) {
      const pt = pts[k]!;
      if (typeof pt.value === 'number') pt.value = Math.floor(pt.value) + 3 + (k % 5);
    }
    a.store.update(p, pts, now + round * 15_000);
  }
}
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
async function collection(a: Arm): Promise<ResourceMetrics> {
  const { resourceMetrics } = await a.store.collect();
  return { ...resourceMetrics, resource };
}
function release(rm: ResourceMetrics): void {
  for (const sm of rm.scopeMetrics)
    for (const m of sm.metrics) (m as unknown as { collection?: { release(): void } }).collection?.release();
}

for (let round = 0; round <= ROUNDS; round++) {
  for (const a of arms) update(a, round);
  for (const a of arms) {
    gc?.();
    let c0 = cpuMs();
    release(await collection(a));
    const collectMs = cpuMs() - c0;
    gc?.();
    const prof = new GCProfiler();
    prof.start();
    const used0 = process.memoryUsage().heapUsed;
    c0 = cpuMs();
    const rm = await collection(a);
    const h = createHash('sha1');
    let requests = 0;
    let bytes = 0;
    const c1 = cpuMs();
    let hashMs = 0;
    for (const r of a.metricRequests(rm, a.er, a.max, true)) {
      const t = cpuMs();
      h.update(r.bytes);
      hashMs += cpuMs() - t;
      requests++;
      bytes += r.bytes.length;
    }
    // The hash is the check's, not the encoder's: left out of the figure (its own CPU, measured around it).
    const encodeMs = cpuMs() - c0 - hashMs;
    void c1;
    let freed = 0;
    for (const g of prof.stop()?.statistics ?? [])
      freed += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize;
    const alloc = (process.memoryUsage().heapUsed - used0 + freed) / 2 ** 20;
    a.hash = h.digest('hex');
    a.requests = requests;
    a.bytes = bytes;
    if (round === 0) continue; // warm-up
    a.collect.push(collectMs);
    a.encode.push(encodeMs);
    a.allocMb.push(alloc);
  }
  for (const a of arms)
    if (a.hash !== arms[0]!.hash)
      failures.push(
        `round ${round}: ${a.name}'s requests differ from ${arms[0]!.name}'s (${a.bytes} vs ${arms[0]!.bytes} bytes)`,
      );
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
const rows = arms.map((a) => ({
  arm: a.name,
  pods: PODS,
  series: a.store.seriesCount(),
  requests: a.requests,
  otlpMb: +(a.bytes / 2 ** 20).toFixed(2),
  collectMs: +median(a.collect).toFixed(1),
  encodeMs: +median(a.encode).toFixed(1),
  encodeMsRange: [+Math.min(...a.encode).toFixed(1), +Math.max(...a.encode).toFixed(1)],
  allocMb: +median(a.allocMb).toFixed(1),
  ratioToFirst: +(median(a.encode) / median(arms[0]!.encode)).toFixed(3),
}));
finish(rows.map((r) => JSON.stringify(r)).join('\n'), failures);
