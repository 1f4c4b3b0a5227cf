// A/B of the OTLP metrics export alone at N netns — the store's collection handed out (`collect`) and its
// protobuf requests (one Resource per entity, 5,000 points each, as receiver/otel/exporters.ts sends them)
// — between this checkout and another one, in ONE process. The stores are filled once by the real probes
// over N named netns (as pipeline-ab.ts does); then only the export runs, `--exports` times per tree,
// alternating trees and which goes first, so the figure is not drowned by the collection's syscalls.
// Prints the median CPU ms per export, V8 heap freed by GC and GC ms per export; exits non-zero when the
// two trees send different points or bytes (the encoders must write the same requests).
//
//   node --max-semi-space-size=1 benchmarks/procfs/export-ab.ts --base /work/base [--netns 1000] [--exports 40]
//   (A/A: --base a second copy of this tree.) One run favours the tree loaded second (A/A 0.83–1.22 on a
//   loaded machine): run it both ways and take sqrt(ratio / swapped run's ratio), several times.
//   Add --max-opt=2 to measure as the agent runs (npm start).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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
    exports: { type: 'string', default: '40' },
  },
});
if (!values.base) throw new Error('--base DIR (a checkout to compare against) is required');
const N = Number(values.netns);
const EXPORTS = Number(values.exports);
const HERE = resolve(import.meta.dirname, '../..');
const PREFIX = `pnex${process.pid}`;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuMs = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1000;

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

async function exportOnce(t: Tree) {
  const prof = new GCProfiler();
  prof.start();
  const gc0 = gcMs;
  const hash = createHash('sha256');
  let sent = 0;
  let ms = 0;
  let c0 = process.cpuUsage();
  const rm = { ...(await t.store.collect()).resourceMetrics, resource: t.agent };
  for (const r of t.metricRequests(rm, t.resources, 5_000, true)) {
    ms += cpuMs(process.cpuUsage()) - cpuMs(c0);
    sent += r.points;
    hash.update(r.bytes); // what the transport would send (outside the timed part)
    c0 = process.cpuUsage();
  }
  ms += cpuMs(process.cpuUsage()) - cpuMs(c0);
  await new Promise((r) => setImmediate(r)); // GC entries are delivered asynchronously
  let freed = 0;
  for (const g of prof.stop()?.statistics ?? [])
    freed += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize;
  return { ms, freedMb: freed / 2 ** 20, gcMs: gcMs - gc0, sent, digest: hash.digest('hex') };
}

let failed = false;
try {
  const entities = createNetnsBatch(PREFIX, N);
  let trees: Tree[];
  try {
    trees = [
      await loadTree('base', resolve(values.base), entities, 'ex'),
      await loadTree('this', HERE, entities, 'ex'),
    ];
    // Three collections (then series are updated in place, start times kept: an agent's steady state),
    // the trees alternating which collects first, so neither's series are all older in the heap.
    for (let r = 0; r < 3; r++)
      for (const t of r % 2 === 0 ? trees : [...trees].reverse())
        await t.collect(1_750_000_000_000 + r * 15_000);
    for (const t of trees) await t.close();
  } finally {
    removeNetnsBatch(PREFIX, N);
  }
  const rows = new Map<string, Awaited<ReturnType<typeof exportOnce>>[]>();
  for (let r = 0; r < EXPORTS + 4; r++)
    for (const t of r % 2 === 0 ? trees : [...trees].reverse()) {
      const res = await exportOnce(t);
      if (r >= 4) rows.set(t.label, [...(rows.get(t.label) ?? []), res]); // 4 warm-up exports: JIT
    }
  const loadavg = execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim();
  const base = rows.get('base')!;
  const now = rows.get('this')!;
  console.log(`# ${N} named netns, ${EXPORTS} exports per tree alternating (medians); load ${loadavg}`);
  console.log('| tree | points sent | export CPU ms | V8 heap freed by GC MB | GC ms |');
  console.log('|---|---|---|---|---|');
  for (const [l, xs] of [
    ['base', base],
    ['this', now],
  ] as const)
    console.log(
      `| ${l} | ${median(xs.map((x) => x.sent))} | ${median(xs.map((x) => x.ms)).toFixed(1)} | ${median(xs.map((x) => x.freedMb)).toFixed(1)} | ${median(xs.map((x) => x.gcMs)).toFixed(1)} |`,
    );
  const ratio = (f: (x: (typeof base)[number]) => number) => {
    const b = median(base.map(f));
    return b > 0 ? (median(now.map(f)) / b).toFixed(3) : '— (base 0)';
  };
  console.log(
    `ratio this/base: export CPU ${ratio((x) => x.ms)}, heap freed ${ratio((x) => x.freedMb)}, GC ms ${ratio((x) => x.gcMs)}`,
  );
  // Both trees read the same netns in the same collections only approximately (counters move between
  // their reads), so the bytes are compared per tree: every export of one tree's same state is the same.
  for (const xs of [base, now])
    if (new Set(xs.map((x) => x.digest)).size !== 1 || new Set(xs.map((x) => x.sent)).size !== 1) {
      failed = true;
      console.error('one tree sent different requests for the same state');
    }
  if (Math.abs(median(base.map((x) => x.sent)) - median(now.map((x) => x.sent))) > N * 0.01) {
    failed = true;
    console.error('the trees sent different numbers of points');
  }
} catch (err) {
  failed = true;
  console.error(err);
}
if (failed) process.exit(1);
