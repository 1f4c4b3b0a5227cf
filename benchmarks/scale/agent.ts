// The whole agent at scale, in one process: N test-created netns (lo up, an eth0/peer0 veth pair up, and
// one process living in each, as a pod's sandbox pid), `Agent.start` with the default probes (or
// --probes) and the pod registry's own netns discovery (no CRI: named netns under /run/netns, their
// holder pid from the /proc scan), restricted to the host + this run's netns (other tests on this shared
// machine create netns too). The collection timer is parked (interval 1 h); collections are driven with
// `agent.collectNow()` so that each one is measured alone.
//
// Per size, after --warmup collections: per collection CPU (user + system of this process, median and
// range), the same per probe (each probe alone, one after another), one /metrics rendering (the
// server's code path: Prometheus reader collect + serializer) CPU and size, one registry refresh
// (discovery), then RSS (VmRSS, VmHWM of /proc/self/status) and the V8 heap / external memory after a
// full GC (--expose-gc) with the latest collection held in the store, as a running agent holds it.
//
//   node --expose-gc benchmarks/scale/agent.ts [--sizes 10,100,1000] [--collections 5] [--warmup 2]
//        [--probes a,b,c] [--no-procs] [--json FILE]
//
// Run under `--cpu-prof` or `--heap-prof` (node flags) to see where the time / allocations go.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GCProfiler, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { probeSpecs } from '../../probes/registry.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { serializePrometheus } from '../../receiver/otel/prometheus-text.ts';
import type { Entity, EntityChange, EntitySource, PodIdentity } from '../../receiver/pods/entity.ts';
import { EntityRegistry } from '../../receiver/pods/index.ts';
import { startAllocationSampling } from '../lib/alloc-sample.ts';

const { values: o } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,100,1000' },
    collections: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    probes: { type: 'string' },
    'no-procs': { type: 'boolean', default: false },
    json: { type: 'string' },
    /** Use (or, with --setup-only, create and leave) netns named PREFIX<i>; --cleanup removes them. */
    prefix: { type: 'string' },
    'setup-only': { type: 'boolean', default: false },
    cleanup: { type: 'boolean', default: false },
    /** Print the largest mappings of /proc/self/smaps after each size. */
    smaps: { type: 'boolean', default: false },
    /** Write a V8 heap snapshot after each size to FILE-<size>.heapsnapshot. */
    'heap-snapshot': { type: 'string' },
    /**
     * Pass each procfs probe the names of its enabled metrics (`args.metrics`), so it skips the work for
     * the disabled ones instead of the store dropping their points.
     */
    'metrics-arg': { type: 'boolean', default: false },
    /**
     * Sample the measured collections' allocations (the inspector's sampling heap profiler) and print the
     * top allocating functions by bytes per collection: `all` (objects the GC has collected included) or
     * `survivors` (left out: those a scavenge collected; what is left was promoted to the old space or is
     * still alive — the garbage that costs mark-compacts).
     */
    'alloc-sample': { type: 'string' },
  },
});
const sizes = o.sizes.split(',').map(Number);
const runs = Number(o.collections);
const warmup = Number(o.warmup);
const prefix = o.prefix ?? `pns${process.pid}s`;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) console.error('# run with node --expose-gc for heap figures after a full GC');

function batch(lines: string[]): void {
  if (lines.length === 0) return;
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
}

const holders: number[] = [];
let created = 0;
function existing(): number {
  let i = 0;
  while (existsSync(`/run/netns/${prefix}${i}`)) i++;
  return i;
}
if (o.prefix !== undefined) created = existing();

function grow(n: number): void {
  const names = Array.from({ length: n - created }, (_, k) => `${prefix}${created + k}`);
  if (names.length === 0) return;
  batch(names.map((ns) => `netns add ${ns}`));
  const script = `for n in "$@"; do ip -n "$n" -batch - <<EOF || exit 1
link set lo up
link add eth0 type veth peer name peer0
link set eth0 up
link set peer0 up
EOF
done`;
  execFileSync('sh', ['-c', script, 'sh', ...names], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!o['no-procs'])
    for (const ns of names) {
      const c = spawn('ip', ['netns', 'exec', ns, 'sleep', '1000000'], {
        stdio: 'ignore',
        detached: o['setup-only'],
      });
      if (o['setup-only']) c.unref();
      holders.push(c.pid!);
    }
  created = n;
}

function cleanup(): void {
  for (let i = 0; i < created; i++) {
    // The holder processes this run (or the --setup-only run) started: the pids living in our netns.
    try {
      const pids = execFileSync('ip', ['netns', 'pids', `${prefix}${i}`], { encoding: 'utf8' });
      for (const p of pids.split('\n').filter(Boolean)) holders.push(Number(p));
    } catch {
      // netns gone
    }
  }
  for (const pid of holders) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  holders.length = 0;
  batch(Array.from({ length: created }, (_, i) => `netns del ${prefix}${i}`));
  created = 0;
}

class FilteredSource implements EntitySource {
  readonly #inner: EntitySource;
  readonly #keep: (e: Entity) => boolean;
  constructor(inner: EntitySource, keep: (e: Entity) => boolean) {
    this.#inner = inner;
    this.#keep = keep;
  }
  entities(): readonly Entity[] {
    return this.#inner.entities().filter(this.#keep);
  }
  byNetns(inode: number): Entity | undefined {
    const e = this.#inner.byNetns(inode);
    return e && this.#keep(e) ? e : undefined;
  }
  pods(): readonly PodIdentity[] {
    return this.entities().flatMap((e) => (e.pod ? [e.pod] : []));
  }
  onChange(listener: (changes: readonly EntityChange[]) => void): () => void {
    return this.#inner.onChange((changes) => {
      const kept = changes.filter((c) => this.#keep(c.entity));
      if (kept.length) listener(kept);
    });
  }
}

/** /metrics as the server renders it (Prometheus reader collect + serializer); its size in bytes. */
async function renderMetrics(agent: Agent): Promise<number> {
  const { resourceMetrics } = await agent.pipeline.prometheus!.collect();
  return Buffer.byteLength(serializePrometheus(resourceMetrics));
}

/**
 * Bytes the V8 heap allocated while `fn` ran: the growth of the used heap plus what every GC in
 * between freed (v8.GCProfiler), and the GC pause time.
 */
async function allocated<T>(fn: () => Promise<T>): Promise<{ mb: number; gcMs: number; result: T }> {
  const prof = new GCProfiler();
  prof.start();
  const used0 = getHeapStatistics().used_heap_size;
  const result = await fn();
  const used1 = getHeapStatistics().used_heap_size;
  const stats = prof.stop()?.statistics ?? [];
  let freed = 0;
  let gcUs = 0;
  for (const g of stats) {
    freed += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize;
    gcUs += g.cost;
  }
  return { mb: (used1 - used0 + freed) / 2 ** 20, gcMs: gcUs / 1000, result };
}

function statusKb(key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function stats(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)] ?? 0, min: s[0] ?? 0, max: s.at(-1) ?? 0 };
}

const f1 = (x: number): string => x.toFixed(1);
const range = (s: { median: number; min: number; max: number }): string =>
  `${f1(s.median)} (${f1(s.min)}–${f1(s.max)})`;

const PROCFS = ['netdev', 'snmp', 'sockstat', 'softnet', 'process'];
const enabled = o.probes
  ? o.probes.split(',')
  : probeSpecs.filter((s) => s.defaultEnabled).map((s) => s.name);
const config = {
  collection_interval: '1h',
  cardinality_limit: 1_000_000,
  server: { address: '127.0.0.1:0' },
  probes: Object.fromEntries(
    probeSpecs.map((s) => [
      s.name,
      {
        enabled: enabled.includes(s.name),
        ...(o['metrics-arg'] && PROCFS.includes(s.name)
          ? { args: { metrics: s.metrics.filter((m) => m.enabled).map((m) => m.name) } }
          : {}),
      },
    ]),
  ),
};
console.log(
  `# probes: ${enabled.join(', ')}${o['metrics-arg'] ? ' (procfs probes given args.metrics)' : ''}`,
);

function smapsTop(n = 10): string {
  const by = new Map<string, number>();
  let name = '';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const h = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (h) {
      name = h[1] || '[anon]';
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m) by.set(name, (by.get(name) ?? 0) + Number(m[1]));
  }
  return [...by]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${k} ${(v / 1024).toFixed(1)} MB`)
    .join(', ');
}

if (o['setup-only'] || o.cleanup) {
  if (o['setup-only']) grow(Math.max(...sizes));
  else cleanup();
  console.log(`# ${o.cleanup ? 'removed' : 'created'} netns ${prefix}0..${prefix}${Math.max(...sizes) - 1}`);
  process.exit(0);
}

// biome-ignore lint/suspicious/noExplicitAny: rows as JSON.
const rows: any[] = [];
try {
  for (const n of sizes) {
    const t0 = performance.now();
    grow(n);
    const registry = new EntityRegistry({
      disableCri: true,
      netnsDiscovery: 'always',
      scanProc: true,
      refreshIntervalMs: 3_600_000,
    });
    await registry.start();
    // Holder processes may still be starting: refresh until every netns has its pid.
    for (let i = 0; i < 50; i++) {
      const mine = registry.entities().filter((e) => (e.netnsName ?? '').startsWith(prefix));
      if (mine.length >= n && (o['no-procs'] || mine.every((e) => e.pid !== undefined))) break;
      await new Promise((r) => setTimeout(r, 200));
      await registry.refresh();
    }
    const source = new FilteredSource(
      registry,
      (e) => e.kind === 'host' || (e.netnsName ?? '').startsWith(prefix),
    );
    const entities = source.entities().length;
    console.log(`# ${n} netns ready in ${Math.round(performance.now() - t0)} ms; ${entities} entities`);
    gc?.();
    const rssBefore = statusKb('VmRSS');
    const agent = await Agent.start({ configText: JSON.stringify(config), entitySource: source });
    try {
      for (let i = 0; i < warmup; i++) await agent.collectNow();
      const total: number[] = [];
      const wall: number[] = [];
      const allocMb: number[] = [];
      const gcMs: number[] = [];
      const mode = o['alloc-sample'];
      if (mode !== undefined && mode !== 'all' && mode !== 'survivors')
        throw new Error(`--alloc-sample: all or survivors, not ${mode}`);
      const sampler = mode ? await startAllocationSampling({ minorGcCollected: mode === 'all' }) : undefined;
      for (let i = 0; i < runs; i++) {
        const c0 = cpuMs();
        const w0 = performance.now();
        const a = await allocated(() => agent.collectNow());
        total.push(cpuMs() - c0);
        wall.push(performance.now() - w0);
        allocMb.push(a.mb);
        gcMs.push(a.gcMs);
      }
      if (sampler) console.log(await sampler.stop(runs));
      const series = agent.pipeline.store.seriesCount();
      // Per probe: collect + store update, each alone (CPU of the whole process).
      const perProbe: Record<string, { median: number; min: number; max: number }> = {};
      const perProbeStore: Record<string, { median: number; min: number; max: number }> = {};
      const perProbePoints: Record<string, number> = {};
      for (const name of agent.specs.map((s) => s.name)) {
        const probe = agent.probe(name);
        if (!probe) continue;
        const xs: number[] = [];
        const ys: number[] = [];
        for (let i = 0; i < Math.max(3, Math.ceil(runs / 2)); i++) {
          const c0 = cpuMs();
          const pts = await probe.collect(source.entities());
          const c1 = cpuMs();
          agent.pipeline.store.update(name, pts);
          xs.push(c1 - c0);
          ys.push(cpuMs() - c1);
          perProbePoints[name] = pts.length;
        }
        perProbe[name] = stats(xs);
        perProbeStore[name] = stats(ys);
      }
      // /metrics as the server renders it.
      const scrape: number[] = [];
      const scrapeAllocMb: number[] = [];
      let bytes = 0;
      for (let i = 0; i < 3; i++) {
        const c0 = cpuMs();
        const a = await allocated(() => renderMetrics(agent));
        bytes = a.result;
        scrape.push(cpuMs() - c0);
        scrapeAllocMb.push(a.mb);
      }
      if (process.env['PNS_SPLIT']) {
        for (let i = 0; i < 2; i++) {
          const c0 = cpuMs();
          const a = await allocated(() => agent.pipeline.prometheus!.collect());
          const c1 = cpuMs();
          const b = await allocated(async () => serializePrometheus(a.result.resourceMetrics).length);
          console.log(
            `  split: collect ${f1(c1 - c0)} ms ${f1(a.mb)} MB; serialize ${f1(cpuMs() - c1)} ms ${f1(b.mb)} MB`,
          );
        }
      }
      const d0 = cpuMs();
      await registry.refresh();
      const discoveryMs = cpuMs() - d0;
      gc?.();
      const mem = process.memoryUsage();
      const row = {
        netns: n,
        entities,
        series,
        collectionCpuMs: stats(total),
        collectionWallMs: stats(wall),
        collectionAllocatedMb: stats(allocMb),
        collectionGcMs: stats(gcMs),
        metricsAllocatedMb: stats(scrapeAllocMb),
        perProbeCpuMs: perProbe,
        perProbeStoreUpdateCpuMs: perProbeStore,
        perProbePoints,
        metricsCpuMs: stats(scrape),
        metricsBytes: bytes,
        discoveryCpuMs: discoveryMs,
        rssMb: statusKb('VmRSS') / 1024,
        hwmMb: statusKb('VmHWM') / 1024,
        rssBeforeAgentMb: rssBefore / 1024,
        heapUsedMb: mem.heapUsed / 2 ** 20,
        heapTotalMb: mem.heapTotal / 2 ** 20,
        externalMb: mem.external / 2 ** 20,
        arrayBuffersMb: mem.arrayBuffers / 2 ** 20,
        pctOfCoreAt15s: ((stats(total).median + stats(scrape).median + discoveryMs) / 15_000) * 100,
      };
      rows.push(row);
      console.log(
        `netns ${n}: ${entities} entities, ${series} series; collection CPU ${range(row.collectionCpuMs)} ms, wall ${range(row.collectionWallMs)} ms, V8 heap allocated ${range(row.collectionAllocatedMb)} MB (GC ${range(row.collectionGcMs)} ms); /metrics ${range(row.metricsCpuMs)} ms CPU, ${(bytes / 2 ** 20).toFixed(1)} MB, allocated ${range(row.metricsAllocatedMb)} MB; discovery ${f1(discoveryMs)} ms; RSS ${f1(row.rssMb)} MB (peak ${f1(row.hwmMb)}, ${f1(row.rssBeforeAgentMb)} before the agent), heap ${f1(row.heapUsedMb)}/${f1(row.heapTotalMb)} MB, external ${f1(row.externalMb)} MB; ≈ ${row.pctOfCoreAt15s.toFixed(2)} % of a core at 15 s (collection + 1 scrape + discovery)`,
      );
      console.log(
        `  per probe: points, collect CPU ms, store update CPU ms: ${Object.entries(perProbe)
          .map(([k, v]) => `${k} ${perProbePoints[k]} ${range(v)} + ${range(perProbeStore[k]!)}`)
          .join('; ')}`,
      );
      if (o.smaps) console.log(`  smaps RSS: ${smapsTop()}`);
      if (o['heap-snapshot']) writeHeapSnapshot(`${o['heap-snapshot']}-${n}.heapsnapshot`);
    } finally {
      await agent.stop();
      registry.stop();
    }
  }
} finally {
  if (o.prefix === undefined) cleanup();
}
if (o.json) writeFileSync(o.json, JSON.stringify(rows, null, 1));
