// A/B of the per-netns collection (the default probes that read each netns: netdev, snmp, sockstat,
// softnet, process, sockets, conntrack, qdisc; default-on metrics only, as the pipeline asks for them)
// between this checkout and another one (e.g. a worktree of main), in ONE process: both trees' probe
// modules are imported side by side (distinct paths, so distinct module state: kept fds, sockets,
// caches) and their collections alternate over the same netns, so machine load falls on both alike.
// The netns are test-created (`ip netns add`, lo up + a veth pair up), read as named netns (no pid),
// like benchmarks/suite/scale.ts. Prints CPU (user + system) per collection per probe, medians, and the
// ratio this/base; exits non-zero when a probe fails an entity or the two trees' point counts differ.
//
//   node benchmarks/procfs/ab.ts --base /work/base-collect [--netns 1000] [--rounds 7]
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { createNetnsBatch, removeNetnsBatch } from '../lib/netns-batch.ts';

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
const PREFIX = `pnab${process.pid}`;
const ALL = 'all eight in one cycle (as the agent)';
const PROBES = ['netdev', 'snmp', 'sockstat', 'softnet', 'process', 'sockets', 'conntrack', 'qdisc'];

interface Tree {
  readonly label: string;
  /** The tree's own receiver/kit/cycle.ts `withCollectionCycle` (module state is per tree). */
  readonly withCycle: <T>(start: () => T) => T;
  readonly probes: {
    name: string;
    probe: {
      collect(e: unknown[]): Promise<readonly unknown[]>;
      status(): { details?: unknown };
      close(): Promise<void>;
    };
  }[];
}

async function load(label: string, root: string): Promise<Tree> {
  const reg = await import(`${root}/probes/registry.ts`);
  const { childLogger } = await import(`${root}/receiver/log/logger.ts`);
  const { withCollectionCycle } = await import(`${root}/receiver/kit/cycle.ts`);
  const specs = reg.probeSpecs as {
    name: string;
    metrics: { name: string; enabled: boolean }[];
    args: { parse(v: unknown): unknown };
    create(ctx: unknown, a: unknown): Promise<Tree['probes'][0]['probe']>;
  }[];
  if (!Array.isArray(specs)) throw new Error(`${root}/probes/registry.ts: no probe list export found`);
  const probes: Tree['probes'] = [];
  for (const name of PROBES) {
    const spec = specs.find((s) => s.name === name);
    if (!spec) throw new Error(`${label}: probe ${name} not in the registry`);
    const enabled = new Set(spec.metrics.filter((m) => m.enabled).map((m) => m.name));
    const ctx = {
      log: childLogger(`ab-${label}`),
      entities: { entities: () => [], byNetns: () => undefined, pods: () => [], onChange: () => () => {} },
      emit: () => {},
      enabledMetrics: () => enabled,
    };
    probes.push({ name, probe: await spec.create(ctx, spec.args.parse({})) });
  }
  return { label, withCycle: withCollectionCycle, probes };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

let failed = false;
try {
  const entities = createNetnsBatch(PREFIX, N);
  const trees = [await load('base', resolve(values.base)), await load('this', HERE)];
  const cpu = new Map<string, number[]>(); // `${tree}/${probe}` → CPU ms per collection
  const points = new Map<string, number>();
  const heap = new Map<string, number[]>(); // `${tree}/${ALL}` → MB allocated per collection
  for (let r = 0; r <= ROUNDS; r++) {
    for (const t of r % 2 === 0 ? trees : [...trees].reverse()) {
      for (const { name, probe } of t.probes) {
        const c0 = process.cpuUsage();
        const out = await probe.collect(entities);
        const c = process.cpuUsage(c0);
        const failedEntities =
          (probe.status().details as { failedEntities?: number } | undefined)?.failedEntities ?? 0;
        if (failedEntities > 0) throw new Error(`${t.label} ${name}: ${failedEntities} entities failed`);
        if (r === 0) continue; // warm-up: opens the kept fds and sockets
        const k = `${t.label}/${name}`;
        cpu.set(k, [...(cpu.get(k) ?? []), (c.user + c.system) / 1000]);
        points.set(k, out.length);
      }
      // As the agent collects (receiver/agent/probe-set.ts): every probe started at once in one
      // collection cycle, so a netns is checked alive once and shared files are read once.
      // V8 heap allocated meanwhile: growth of the used heap plus what each GC in between freed.
      const prof = new GCProfiler();
      prof.start();
      const used0 = getHeapStatistics().used_heap_size;
      const c0 = process.cpuUsage();
      const outs = await Promise.all(t.withCycle(() => t.probes.map(({ probe }) => probe.collect(entities))));
      const c = process.cpuUsage(c0);
      const used1 = getHeapStatistics().used_heap_size;
      let freed = 0;
      for (const g of prof.stop()?.statistics ?? [])
        freed += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize;
      if (r === 0) continue;
      const k = `${t.label}/${ALL}`;
      cpu.set(k, [...(cpu.get(k) ?? []), (c.user + c.system) / 1000]);
      heap.set(k, [...(heap.get(k) ?? []), (used1 - used0 + freed) / 2 ** 20]);
      points.set(
        k,
        outs.reduce((n, o) => n + o.length, 0),
      );
    }
  }
  console.log(
    `# ${N} named netns (lo + veth pair, up), ${ROUNDS} rounds alternating base/this, CPU ms per collection (median; each probe alone, then all eight in one collection cycle); load ${execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim()}`,
  );
  console.log('| probe | points | base CPU ms | this CPU ms | ratio this/base |');
  console.log('|---|---|---|---|---|');
  let sumBase = 0;
  let sumThis = 0;
  for (const name of PROBES) {
    const b = median(cpu.get(`base/${name}`)!);
    const h = median(cpu.get(`this/${name}`)!);
    sumBase += b;
    sumThis += h;
    const pb = points.get(`base/${name}`);
    const ph = points.get(`this/${name}`);
    if (pb !== ph) {
      failed = true;
      console.error(`${name}: base produced ${pb} points, this ${ph}`);
    }
    console.log(`| ${name} | ${ph} | ${b.toFixed(1)} | ${h.toFixed(1)} | ${(h / b).toFixed(3)} |`);
  }
  console.log(
    `| sum of the above | | ${sumBase.toFixed(1)} | ${sumThis.toFixed(1)} | ${(sumThis / sumBase).toFixed(3)} |`,
  );
  const b = median(cpu.get(`base/${ALL}`)!);
  const h = median(cpu.get(`this/${ALL}`)!);
  if (points.get(`base/${ALL}`) !== points.get(`this/${ALL}`)) {
    failed = true;
    console.error(
      `${ALL}: base produced ${points.get(`base/${ALL}`)} points, this ${points.get(`this/${ALL}`)}`,
    );
  }
  console.log(
    `| **${ALL}** | ${points.get(`this/${ALL}`)} | ${b.toFixed(1)} | ${h.toFixed(1)} | ${(h / b).toFixed(3)} |`,
  );
  const hb = median(heap.get(`base/${ALL}`)!);
  const hh = median(heap.get(`this/${ALL}`)!);
  console.log(
    `\nV8 heap allocated per collection, all eight in one cycle (median): base ${hb.toFixed(1)} MB, this ${hh.toFixed(1)} MB, ratio ${(hh / hb).toFixed(3)}`,
  );
  for (const t of trees) for (const { probe } of t.probes) await probe.close();
} finally {
  removeNetnsBatch(PREFIX, N);
}
if (failed) process.exit(1);
