// One full collection of the procfs probes (netdev, snmp, sockstat, softnet, process) over 1, 100 and
// 1,000 test-created netns, each with lo + a veth pair (eth0/peer0) and, in the `pid` variant, one
// process living in it (as a pod's sandbox pid). Reports wall time, CPU time (user+system of this
// process) and memory per collection, per probe and for all five together.
//   node --expose-gc benchmarks/procfs/collect.ts [counts=1,100,1000] [runs=5]
import { execFileSync, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { netdevProbe } from '../../probes/netdev/netdev.ts';
import { processProbe } from '../../probes/process/process.ts';
import { snmpProbe } from '../../probes/snmp/snmp.ts';
import { sockstatProbe } from '../../probes/sockstat/sockstat.ts';
import { softnetProbe } from '../../probes/softnet/softnet.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { Probe, ProbeContext, ProbeSpec } from '../../receiver/probe/types.ts';
import { median } from '../lib/stats.ts';

// The heap delta column is the heap a collection leaves, measured after a full GC: without gc() it was
// whatever garbage the previous run left (the suite ran it without the flag until 2026-12-08).
function noGc(): never {
  console.error(
    'benchmarks/procfs/collect.ts: run with node --expose-gc (the heap delta needs a GC before each run)',
  );
  process.exit(2);
}
const gc: () => void = globalThis.gc ?? noGc();
const counts = (process.argv[2] ?? '1,100,1000').split(',').map(Number);
const runs = Number(process.argv[3] ?? 5);
const tag = `pnf${process.pid}`;
const maxCount = Math.max(...counts);
const names = Array.from({ length: maxCount }, (_, i) => `${tag}n${i}`);

function batch(lines: string[]): void {
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
}

const ctx: ProbeContext = {
  log: childLogger('bench-procfs'),
  entities: { entities: () => [], byNetns: () => undefined, pods: () => [], onChange: () => () => {} },
  emit: () => {},
};

interface Measure {
  wallMs: number;
  cpuMs: number;
  points: number;
  heapMb: number;
}

async function measure(probes: Probe[], entities: readonly Entity[]): Promise<Measure> {
  const walls: number[] = [];
  const cpus: number[] = [];
  let points = 0;
  let heap = 0;
  for (let r = 0; r < runs + 1; r++) {
    gc();
    const h0 = process.memoryUsage().heapUsed;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let n = 0;
    for (const p of probes) n += (await p.collect(entities)).length;
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const h1 = process.memoryUsage().heapUsed;
    if (r === 0) continue; // warm-up
    walls.push(wall);
    cpus.push((c.user + c.system) / 1000);
    points = n;
    heap = Math.max(heap, (h1 - h0) / 2 ** 20);
  }
  return { wallMs: median(walls), cpuMs: median(cpus), points, heapMb: heap };
}

const SPECS: ProbeSpec<unknown>[] = [
  netdevProbe,
  snmpProbe,
  sockstatProbe,
  softnetProbe,
  processProbe,
] as never;

async function main(): Promise<void> {
  const t0 = performance.now();
  const lines: string[] = [];
  for (const n of names) lines.push(`netns add ${n}`);
  for (const n of names) lines.push(`link add name eth0 netns ${n} type veth peer name peer0 netns ${n}`);
  batch(lines);
  // One process per netns (a pod's sandbox pid): nsenter + sleep, started in one shell.
  const sleepers = spawn(
    'sh',
    ['-c', `for n in ${names.join(' ')}; do nsenter --net=/run/netns/$n sleep 3600 & done; wait`],
    { stdio: 'ignore', detached: true },
  );
  const setupMs = performance.now() - t0;
  try {
    const inodes = names.map((n) => statSync(`/run/netns/${n}`).ino);
    const byInode = new Map(inodes.map((ino, i) => [ino, i]));
    const pids = new Array<number>(names.length).fill(0);
    for (let tries = 0; tries < 200 && pids.some((p) => p === 0); tries++) {
      for (const line of execFileSync(
        'sh',
        ['-c', 'for p in $(pgrep -x sleep); do echo $p $(stat -L -c %i /proc/$p/ns/net 2>/dev/null); done'],
        { encoding: 'utf8' },
      ).split('\n')) {
        const [pid, ino] = line.split(' ').map(Number);
        const i = byInode.get(ino!);
        if (i !== undefined && pid) pids[i] = pid;
      }
      if (pids.some((p) => p === 0)) await new Promise((r) => setTimeout(r, 200));
    }
    console.log(
      `# procfs probes: ${maxCount} netns created in ${Math.round(setupMs)} ms (lo + veth pair each, one sleeper each); ${runs} runs, median; kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} CPUs`,
    );
    console.log('| netns | entity | probe | points | wall ms | CPU ms | heap delta MB | RSS MB |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const count of counts) {
      for (const variant of ['named', 'pid'] as const) {
        const entities: Entity[] = names.slice(0, count).map((n, i) => ({
          kind: 'netns',
          netnsInode: inodes[i]!,
          netnsPath: variant === 'pid' ? `/proc/${pids[i]}/ns/net` : `/run/netns/${n}`,
          netnsName: n,
          displayName: n,
          ...(variant === 'pid' ? { pid: pids[i]! } : {}),
        }));
        const all: Probe[] = [];
        for (const spec of SPECS) {
          const probe = await spec.create(ctx, spec.args.parse({}));
          all.push(probe);
          const m = await measure([probe], entities);
          const failed = (probe.status().details as { failedEntities?: number }).failedEntities ?? 0;
          if (failed > 0)
            throw new Error(`${spec.name}: ${failed} entities failed: ${JSON.stringify(probe.status())}`);
          console.log(
            `| ${count} | ${variant} | ${spec.name} | ${m.points} | ${m.wallMs.toFixed(1)} | ${m.cpuMs.toFixed(1)} | ${m.heapMb.toFixed(1)} | ${Math.round(process.memoryUsage().rss / 2 ** 20)} |`,
          );
        }
        const m = await measure(all, entities);
        console.log(
          `| ${count} | ${variant} | **all five** | ${m.points} | ${m.wallMs.toFixed(1)} | ${m.cpuMs.toFixed(1)} | ${m.heapMb.toFixed(1)} | ${Math.round(process.memoryUsage().rss / 2 ** 20)} |`,
        );
        // The same with only the default-on metrics produced (the pipeline passes its enabled set).
        const enabledOnly: Probe[] = [];
        for (const spec of SPECS) {
          enabledOnly.push(
            await spec.create(
              ctx,
              spec.args.parse({ metrics: spec.metrics.filter((d) => d.enabled).map((d) => d.name) }),
            ),
          );
        }
        const e = await measure(enabledOnly, entities);
        console.log(
          `| ${count} | ${variant} | all five, default-on metrics only | ${e.points} | ${e.wallMs.toFixed(1)} | ${e.cpuMs.toFixed(1)} | ${e.heapMb.toFixed(1)} | ${Math.round(process.memoryUsage().rss / 2 ** 20)} |`,
        );
      }
    }
  } finally {
    try {
      process.kill(-sleepers.pid!, 'SIGKILL');
    } catch {
      // gone
    }
    batch(names.map((n) => `netns del ${n}`));
  }
}

await main();
