// The per-entity loop of the kits (eachEntity, receiver/kit/each-entity.ts: a few workers pulling off one
// index) against the same on p-queue (the design card's choice; a dev dependency for this benchmark), in
// the same process over the same 1,000 test-created netns (lo + a veth pair each). Two workloads: the
// procfs kit's real per-entity work (netdev and snmp reads, parses and points, with the kit's yield every
// 32 entities) and an empty task (the queue's own cost per entity). Runs alternate baseline / p-queue; medians of wall and CPU time, and the ratio p-queue /
// baseline. Fails (exit 1) when an entity fails or the two disagree on the points produced.
//   node benchmarks/procfs/queue.ts [netns=1000] [runs=9] [concurrency=4]
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import PQueue from 'p-queue';
import { collectNetdev } from '../../probes/netdev/netdev.ts';
import { collectSnmp, SNMP_METRICS, SnmpResolver } from '../../probes/snmp/snmp.ts';
import { type EachEntityResult, eachEntity } from '../../receiver/kit/each-entity.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { type MetricSink, PointArray } from '../../receiver/probe/sink.ts';
import { finish } from '../lib/finish.ts';

const count = Number(process.argv[2] ?? 1000);
const runs = Number(process.argv[3] ?? 9);
const concurrency = Number(process.argv[4] ?? 4);
const tag = `pnq${process.pid}`;
const names = Array.from({ length: count }, (_, i) => `${tag}n${i}`);

/** eachEntity written with p-queue: the candidate. */
async function withPQueue<T>(
  entities: readonly Entity[],
  n: number,
  fn: (entity: Entity) => Promise<T> | T,
): Promise<EachEntityResult<T>> {
  const results: T[] = [];
  const failures: { entity: Entity; error: Error }[] = [];
  const queue = new PQueue({ concurrency: Math.max(1, n) });
  for (const entity of entities) {
    void queue.add(async () => {
      try {
        results.push(await fn(entity));
      } catch (err) {
        failures.push({ entity, error: err instanceof Error ? err : new Error(String(err)) });
      }
    });
  }
  await queue.onIdle();
  return { results, failures };
}

type Each = typeof eachEntity;
const IMPLS: readonly (readonly [string, Each])[] = [
  ['eachEntity, hand-written (baseline)', eachEntity],
  ['p-queue', withPQueue],
];

const enabled = new Set(SNMP_METRICS.filter((d) => d.enabled).map((d) => d.name));
const resolver = new SnmpResolver((n) => enabled.has(n), false);

/** The procfs kit's per-entity work (receiver/kit/procfs.ts): yield every 32, then synchronous reads. */
function procfsWork(): { fn: (e: Entity) => Promise<void>; points: MetricSink } {
  const points = new PointArray();
  let done = 0;
  return {
    points,
    fn: async (entity) => {
      if (++done % 32 === 0) await yieldLoop();
      collectNetdev(
        entity,
        points,
        (i) => i === 'lo',
        () => true,
      );
      collectSnmp(entity, points, resolver);
    },
  };
}

function emptyWork(): { fn: (e: Entity) => Promise<void>; points: MetricSink } {
  return { points: new PointArray(), fn: async () => {} };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const lines = names.flatMap((n) => [
    `netns add ${n}`,
    `link add name eth0 netns ${n} type veth peer name peer0 netns ${n}`,
  ]);
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const failed: string[] = [];
  const out: string[] = [];
  try {
    const entities: Entity[] = names.map((n) => ({
      kind: 'netns',
      netnsInode: statSync(`/run/netns/${n}`).ino,
      netnsPath: `/run/netns/${n}`,
      netnsName: n,
      displayName: n,
    }));
    out.push(
      `# eachEntity: p-queue vs the hand-written loop, ${count} netns, concurrency ${concurrency}, ${runs} runs each (alternating, after a warm-up), median; Node ${process.version}`,
    );
    out.push('| workload | implementation | wall ms | CPU ms | points | ratio wall | ratio CPU |');
    out.push('|---|---|---|---|---|---|---|');
    for (const [workload, make] of [
      ['procfs netdev+snmp per entity', procfsWork],
      ['empty task (queue cost only)', emptyWork],
    ] as const) {
      const wall = new Map<string, number[]>(IMPLS.map(([n]) => [n, []]));
      const cpu = new Map<string, number[]>(IMPLS.map(([n]) => [n, []]));
      const pts = new Map<string, number>();
      for (let r = 0; r <= runs; r++) {
        for (const [name, impl] of r % 2 ? [...IMPLS].reverse() : IMPLS) {
          const w = make();
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          const { failures } = await impl(entities, concurrency, w.fn);
          const dt = performance.now() - t0;
          const c = process.cpuUsage(c0);
          if (failures.length)
            failed.push(`${name}: ${failures.length} entities failed: ${failures[0]!.error.message}`);
          if (r === 0) continue; // warm-up
          wall.get(name)!.push(dt);
          cpu.get(name)!.push((c.user + c.system) / 1000);
          pts.set(name, w.points.length);
        }
      }
      const [base] = IMPLS[0]!;
      if (new Set(pts.values()).size !== 1)
        failed.push(`${workload}: the implementations disagree on points: ${JSON.stringify([...pts])}`);
      for (const [name] of IMPLS) {
        const w = median(wall.get(name)!);
        const c = median(cpu.get(name)!);
        out.push(
          `| ${workload} | ${name} | ${w.toFixed(2)} | ${c.toFixed(2)} | ${pts.get(name)} | ${(w / median(wall.get(base)!)).toFixed(3)} | ${(c / median(cpu.get(base)!)).toFixed(3)} |`,
        );
      }
    }
  } finally {
    execFileSync('ip', ['-force', '-batch', '-'], {
      input: `${names.map((n) => `netns del ${n}`).join('\n')}\n`,
      stdio: ['pipe', 'ignore', 'inherit'],
    });
  }
  finish(out.join('\n'), failed);
}

await main();
