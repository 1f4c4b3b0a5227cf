// A/B of the per-interval metrics pipeline at N netns — the per-netns probes' collection, the metric store's
// update, and the OTLP protobuf export of the whole collection (one Resource per entity, requests of 5,000
// points, as receiver/otel/exporters.ts sends them) — between this checkout and another one (e.g. a worktree
// of main), in ONE process: both trees' modules side by side (distinct paths, distinct module state), their
// rounds alternating over the same netns, so machine load falls on both alike. This tree collects as its
// agent does (receiver/agent/probe-set.ts: `collectInto` into the store's sink when a probe has it); the
// other as its own agent would (`collect`, unless it has `collectInto` too).
// Prints, per round (medians): CPU ms of the collection + update, of the export, V8 heap allocated, GC
// time; exits non-zero when a probe fails an entity or the two trees store or send different point counts.
//
//   node benchmarks/procfs/pipeline-ab.ts --base /work/base [--netns 1000] [--rounds 7]
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { GCProfiler } from 'node:v8';
import { createNetnsBatch, removeNetnsBatch } from '../lib/netns-batch.ts';
import { loadTree, type Tree } from './tree.ts';

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    netns: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '7' },
  },
});
if (!values.base) throw new Error('--base DIR (a checkout to compare against) is required');
const N = Number(values.netns);
const ROUNDS = Number(values.rounds);
const HERE = resolve(import.meta.dirname, '../..');
const PREFIX = `pnpl${process.pid}`;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuMs = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1000;

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

/** One interval of a tree: collection + update, then the export; its CPU, heap allocated and GC time. */
async function round(t: Tree, time: number) {
  const prof = new GCProfiler();
  prof.start();
  const gc0 = gcMs;
  const c0 = process.cpuUsage();
  await t.collect(time, true);
  const stored = t.store.seriesCount();
  const c1 = process.cpuUsage();
  const rm = { ...(await t.store.collect()).resourceMetrics, resource: t.agent };
  let sent = 0;
  let bytes = 0;
  for (const r of t.metricRequests(rm, t.resources, 5_000, true)) {
    sent += r.points;
    bytes += r.bytes.length;
  }
  const c2 = process.cpuUsage();
  await new Promise((r) => setImmediate(r)); // GC entries are delivered asynchronously
  let allocated = 0;
  for (const g of prof.stop()?.statistics ?? [])
    allocated += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize;
  return {
    collectMs: cpuMs(c1) - cpuMs(c0),
    exportMs: cpuMs(c2) - cpuMs(c1),
    freedMb: allocated / 2 ** 20,
    gcMs: gcMs - gc0,
    stored,
    sent,
    bytes,
  };
}

let failed = false;
let entities: unknown[] = [];
try {
  entities = createNetnsBatch(PREFIX, N);
  const trees = [
    await loadTree('base', resolve(values.base), entities, 'pl'),
    await loadTree('this', HERE, entities, 'pl'),
  ];
  const rows = new Map<string, Awaited<ReturnType<typeof round>>[]>();
  for (let r = 0; r <= ROUNDS + 1; r++) {
    for (const t of r % 2 === 0 ? trees : [...trees].reverse()) {
      const res = await round(t, 1_750_000_000_000 + r * 15_000);
      if (r < 2) continue; // warm-up: kept fds and sockets, series made, JIT
      rows.set(t.label, [...(rows.get(t.label) ?? []), res]);
    }
  }
  const loadavg = execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim();
  console.log(`# ${N} named netns, ${ROUNDS} rounds alternating base/this (medians); load ${loadavg}`);
  console.log(
    '| tree | series | points sent | collect + update CPU ms | export CPU ms | total CPU ms | V8 heap freed by GC MB | GC ms |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  const med = (label: string, f: (x: Awaited<ReturnType<typeof round>>) => number) =>
    median(rows.get(label)!.map(f));
  for (const t of trees) {
    const l = t.label;
    console.log(
      `| ${l} | ${med(l, (x) => x.stored)} | ${med(l, (x) => x.sent)} | ${med(l, (x) => x.collectMs).toFixed(1)} | ${med(l, (x) => x.exportMs).toFixed(1)} | ${med(l, (x) => x.collectMs + x.exportMs).toFixed(1)} | ${med(l, (x) => x.freedMb).toFixed(1)} | ${med(l, (x) => x.gcMs).toFixed(1)} |`,
    );
  }
  const ratio = (f: (x: Awaited<ReturnType<typeof round>>) => number) =>
    (med('this', f) / med('base', f)).toFixed(3);
  console.log(
    `ratio this/base: collect + update ${ratio((x) => x.collectMs)}, export ${ratio((x) => x.exportMs)}, total ${ratio((x) => x.collectMs + x.exportMs)}, GC ms ${ratio((x) => x.gcMs)}`,
  );
  for (const k of ['stored', 'sent'] as const) {
    const a = rows.get('base')!.map((x) => x[k]);
    const b = rows.get('this')!.map((x) => x[k]);
    if (Math.abs(median(a) - median(b)) > N * 0.01) {
      failed = true;
      console.error(`${k} differ: base ${a.join(',')} vs this ${b.join(',')}`);
    }
  }
  for (const t of trees) await t.close();
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  removeNetnsBatch(PREFIX, N);
}
if (failed) process.exit(1);
