// Export and scrape cost at scale, in one process and without the kernel: a MetricStore holding one
// collection of N pods with the default metric set's shape (every default-enabled metric of the probe
// registry; attributes given typical value sets: 11 TCP states, 2 directions, IPv4/IPv6, ...), then per
// export: collect + the OTLP/HTTP protobuf exporter as podnet builds it (exporters.ts: CountingMetricExporter
// over the SDK exporter) to the counting sink, and one /metrics rendering. CPU (this process, user +
// system), V8 heap allocated (GCProfiler), payload and requests per export, RSS after; the heap the store
// holds (with --expose-gc). Exits 1 when the checkouts' exports differ in bytes, points or requests.
//
// Each --root is a podnet checkout (e.g. a git worktree of a baseline) whose own receiver/otel and probe
// registry are used, so a baseline and the current code are measured side by side in one invocation,
// alternating run by run.
//
//   node --expose-gc benchmarks/scale/export.ts [--sizes 10,100,1000] [--runs 5] [--root NAME=DIR]...
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GCProfiler } from 'node:v8';
import type { ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { syntheticPoints } from '../lib/attribute-combos.ts';
import { startSink } from '../lib/otlp-sink.ts';

const { values: o } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,100,1000' },
    runs: { type: 'string', default: '5' },
    root: { type: 'string', multiple: true },
  },
});
const sizes = o.sizes.split(',').map(Number);
const runs = Number(o.runs);
const HERE = new URL('../../', import.meta.url).pathname;
const gc = (globalThis as { gc?: () => void }).gc;

// biome-ignore lint/suspicious/noExplicitAny: modules of another checkout.
type Module = any;
interface Root {
  name: string;
  mod: Record<
    'store' | 'exporters' | 'metricExporter' | 'prom' | 'registry' | 'entities' | 'entityResources',
    Module
  >;
}

const roots: Root[] = [];
for (const spec of o.root ?? [`current=${HERE}`]) {
  const [name, dir] = spec.includes('=') ? spec.split('=') : ['current', spec];
  // Resolved against the working directory: a relative `--root now=.` would otherwise be taken by import()
  // relative to this file.
  const r = `${resolve(dir!)}/`;
  roots.push({
    name: name!,
    mod: {
      store: await import(`${r}receiver/otel/metric-store.ts`),
      exporters: await import(`${r}receiver/otel/exporters.ts`),
      // Since the per-entity Resources, the OTLP metric exporter has its own module (loaded on use); a
      // checkout from before has it in exporters.ts.
      metricExporter: existsSync(`${r}receiver/otel/otlp-metric-exporter.ts`)
        ? await import(`${r}receiver/otel/otlp-metric-exporter.ts`)
        : await import(`${r}receiver/otel/exporters.ts`),
      prom: await import(`${r}receiver/otel/prometheus-text.ts`),
      registry: await import(`${r}probes/registry.ts`),
      entities: await import(`${r}receiver/agent/static-entities.ts`),
      entityResources: await import(`${r}receiver/otel/entity-resources.ts`),
    },
  });
}

// biome-ignore lint/suspicious/noExplicitAny: see Root.
function buildStore(root: Root, pods: number): any {
  const entities = Array.from({ length: pods }, (_, i) => ({
    kind: 'pod',
    netnsInode: 4026600000 + i,
    netnsPath: `/proc/${1000 + i}/ns/net`,
    displayName: `shop/web-${i}`,
    pod: {
      uid: `0b8f3c2e-1111-2222-3333-${String(i).padStart(12, '0')}`,
      name: `web-${i}-7d9c5b6f4-x2k8q`,
      namespace: 'shop',
      labels: {},
      ips: [],
      sandboxId: `sb${i}`,
      hostNetwork: false,
    },
  }));
  const store = new root.mod.store.MetricStore({
    entities: new root.mod.entities.StaticEntitySource(entities),
    cardinalityLimit: 1_000_000,
  });
  // biome-ignore lint/suspicious/noExplicitAny: probe specs of that checkout.
  const specs = (root.mod.registry.probeSpecs as any[]).filter((s) => s.defaultEnabled);
  const regs = specs.flatMap((s) =>
    // biome-ignore lint/suspicious/noExplicitAny: metric defs.
    s.metrics.map((def: any) => ({ def, probe: s.name, enabled: def.enabled })),
  );
  store.setDefinitions(regs);
  const byProbe = new Map<string, unknown[]>();
  for (const s of specs) byProbe.set(s.name, syntheticPoints(s.metrics, pods, 4026600000));
  for (const [p, pts] of byProbe) store.update(p, pts, Date.now());
  return store;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function measure<T>(fn: () => Promise<T>): Promise<{ cpu: number; mb: number; result: T }> {
  const prof = new GCProfiler();
  prof.start();
  const { used_heap_size: used0 } = (await import('node:v8')).getHeapStatistics();
  const c0 = cpuMs();
  const result = await fn();
  const cpu = cpuMs() - c0;
  const { used_heap_size: used1 } = (await import('node:v8')).getHeapStatistics();
  let freed = 0;
  for (const g of prof.stop()?.statistics ?? [])
    freed += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize;
  return { cpu, mb: (used1 - used0 + freed) / 2 ** 20, result };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const sink = await startSink();
const resource = resourceFromAttributes({ 'service.name': 'podnet', 'host.name': 'bench' });
try {
  for (const n of sizes) {
    const state = [];
    for (const root of roots) {
      // Heap the store holds (its series state and attributes): used heap after a full GC, before and
      // after building it (the probe points it was fed are garbage by then).
      gc?.();
      const heap0 = process.memoryUsage().heapUsed;
      const store = buildStore(root, n);
      gc?.();
      const storeHeapMb = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
      const inner = await root.mod.metricExporter.createMetricExporter({
        protocol: 'http/protobuf',
        endpoint: sink.endpoint,
        headers: {},
        timeoutMs: 30_000,
      });
      // As the pipeline builds it: one Resource per entity (pipeline.ts).
      const exporter: PushMetricExporter = new root.mod.exporters.CountingMetricExporter(inner, () => {}, {
        entities: new root.mod.entityResources.EntityResources(resource),
      });
      state.push({
        root,
        store,
        storeHeapMb,
        exporter,
        exp: [] as number[],
        expMb: [] as number[],
        scr: [] as number[],
        scrMb: [] as number[],
        bytes: 0,
        requests: 0,
        points: 0,
        scrapeBytes: 0,
      });
    }
    for (let r = 0; r < runs + 1; r++) {
      for (const s of state) {
        gc?.();
        await sink.reset();
        const e = await measure(async () => {
          const { resourceMetrics } = await s.store.collect();
          const rm: ResourceMetrics = { ...resourceMetrics, resource };
          return new Promise<ExportResult>((resolve) => s.exporter.export(rm, resolve));
        });
        if (e.result.code !== 0) throw new Error(`export failed: ${String(e.result.error)}`);
        const c = await sink.counts();
        gc?.();
        const p = await measure(async () => {
          const { resourceMetrics } = await s.store.collect();
          return Buffer.byteLength(s.root.mod.prom.serializePrometheus({ ...resourceMetrics, resource }));
        });
        if (r === 0) continue; // warm-up
        s.exp.push(e.cpu);
        s.expMb.push(e.mb);
        s.scr.push(p.cpu);
        s.scrMb.push(p.mb);
        s.bytes = c.metrics.rawBytes;
        s.requests = c.metrics.requests;
        s.points = c.metrics.items;
        s.scrapeBytes = p.result;
      }
    }
    // The same collection must reach the sink as the same payload from every checkout.
    for (const s of state)
      if (s.bytes !== state[0]!.bytes || s.points !== state[0]!.points || s.requests !== state[0]!.requests) {
        console.error(
          `export differs: ${s.root.name} sent ${s.bytes} bytes, ${s.points} points, ${s.requests} requests; ` +
            `${state[0]!.root.name} ${state[0]!.bytes}, ${state[0]!.points}, ${state[0]!.requests}`,
        );
        process.exitCode = 1;
      }
    for (const s of state) {
      const row = {
        root: s.root.name,
        pods: n,
        series: s.store.seriesCount(),
        storeHeapMb: gc ? s.storeHeapMb : null,
        seriesPerPod: s.store.seriesCount() / n,
        exportCpuMs: median(s.exp),
        exportCpuMsRange: [Math.min(...s.exp), Math.max(...s.exp)],
        exportAllocatedMb: median(s.expMb),
        otlpRequests: s.requests,
        otlpMb: s.bytes / 2 ** 20,
        otlpPoints: s.points,
        scrapeCpuMs: median(s.scr),
        scrapeAllocatedMb: median(s.scrMb),
        scrapeMb: s.scrapeBytes / 2 ** 20,
        exportPctOfCoreAt15s: (median(s.exp) / 15_000) * 100,
      };
      console.log(JSON.stringify(row));
      await s.exporter.shutdown();
    }
  }
} finally {
  await sink.stop();
}
