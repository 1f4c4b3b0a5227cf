// Cost of the latency probes (socketlatency, softirq, netiftxlat, kernellatency), in one invocation:
//  1. iperf3 throughput between two test netns with all four probes loaded versus none, interleaved
//     (off, on, on, off, off, on, ...) so drift and other load on the machine hit both sides alike;
//     two workloads: bulk TCP, and TCP with 512-byte writes and TCP_NODELAY (many small packets: the
//     per-packet hooks dominate).
//  2. Kernel time per hook hit: BPF_STATS_RUN_TIME enabled during one extra run per workload, then
//     run_time_ns / run_cnt of each program (bpftool -j prog show; ids recorded at load), and the floor:
//     empty programs on net_dev_queue / sk_data_ready (receiver/bpf/selftest/null.bpf.c) in the same run.
//
//   node benchmarks/latency/overhead.ts [--rounds 3] [--seconds 3] [--only socketlatency,softirq]
//                                        [--workloads 0,1,2] [--prefix pnt]
// Prints each run, the median throughput on/off and the median of per-round ratios, then ns per hit.
// Needs root, iperf3, bpftool. Netns <prefix><pid>bma / <prefix><pid>bmb (prefix default pnt), removed
// at the end. Workloads: 0 bulk TCP, 1 TCP 512-byte writes with TCP_NODELAY, 2 UDP paced at 300 Mbit/s.
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { kernellatencyProbe } from '../../probes/kernellatency/kernellatency.ts';
import { netiftxlatProbe } from '../../probes/netiftxlat/netiftxlat.ts';
import { socketlatencyProbe } from '../../probes/socketlatency/socketlatency.ts';
import { softirqProbe } from '../../probes/softirq/softirq.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { BpfSpec } from '../../receiver/bpf/object.ts';
import { enableRunTimeStats } from '../../receiver/bpf/stats.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { Probe, ProbeContext, ProbeSpec } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsSide, removeStaleNetns } from '../../test/env/netns.ts';

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    /** Comma-separated probe names to load in the "on" runs (default: all four). */
    only: { type: 'string' },
    /** Comma-separated workload indexes (0 bulk, 1 small writes, 2 UDP 300 Mbit/s); default 0,1. */
    workloads: { type: 'string' },
    /** Netns name prefix (a unique one per concurrent user of the machine). */
    prefix: { type: 'string', default: 'pnt' },
  },
});
const ROUNDS = Number(opt.rounds);
const SECONDS = Number(opt.seconds);

// biome-ignore lint/suspicious/noExplicitAny: the four specs have different args types
const ALL: ProbeSpec<any>[] = [socketlatencyProbe, softirqProbe, netiftxlatProbe, kernellatencyProbe];
const ONLY = opt.only?.split(',');
// biome-ignore lint/suspicious/noExplicitAny: as above
const SPECS: ProbeSpec<any>[] = ONLY ? ALL.filter((s) => ONLY.includes(s.name)) : ALL;
const PREFIXES = ['sl_', 'si_', 'nt_', 'kl_'];

interface BpftoolProg {
  id: number;
  name?: string;
  run_time_ns?: number;
  run_cnt?: number;
}
const progs = (): BpftoolProg[] =>
  JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as BpftoolProg[];

const entity = (s: NetnsSide): Entity => ({
  kind: 'netns',
  netnsInode: s.inode,
  netnsPath: s.path,
  netnsName: s.name,
  displayName: s.name,
});

removeStaleNetns(opt.prefix);
const pair = createNetnsPair({ prefix: opt.prefix, tag: 'bm' });
const server = pair.b.spawn('iperf3', ['-s', '-p', '5299'], { stdio: 'ignore' });

async function loadAll(): Promise<{ probes: Probe[]; ids: Set<number> }> {
  const before = new Set(progs().map((p) => p.id));
  const ctx: ProbeContext = {
    log: childLogger('bench-latency'),
    entities: new StaticEntitySource([entity(pair.a), entity(pair.b)]),
    emit: () => {},
  };
  const probes: Probe[] = [];
  for (const s of SPECS) {
    const p = await s.create(ctx, s.args.parse({}));
    if (p.status().state !== 'running') throw new Error(`${s.name}: ${p.status().reason}`);
    probes.push(p);
  }
  const ids = new Set(
    progs()
      .filter((p) => !before.has(p.id) && PREFIXES.some((x) => p.name?.startsWith(x)))
      .map((p) => p.id),
  );
  return { probes, ids };
}

function iperf(args: readonly string[]): number {
  const out = pair.a.exec('iperf3', ['-c', pair.b.ipv4, '-p', '5299', '-t', String(SECONDS), '-J', ...args], {
    maxBuffer: 64 << 20,
  });
  const j = JSON.parse(out) as {
    end: { sum_received?: { bits_per_second: number }; sum: { bits_per_second: number } };
  };
  return (j.end.sum_received ?? j.end.sum).bits_per_second;
}

const WORKLOADS: { name: string; args: string[] }[] = [
  { name: 'bulk TCP', args: [] },
  { name: 'TCP 512 B writes, nodelay', args: ['-l', '512', '-N'] },
  { name: 'UDP 300 Mbit/s', args: ['-u', '-b', '300M'] },
].filter((_, i) => (opt.workloads ?? '0,1').split(',').includes(String(i)));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

try {
  await sleep(300); // iperf3 server up
  const results: Record<string, { off: number[]; on: number[] }> = {};
  for (const w of WORKLOADS) {
    results[w.name] = { off: [], on: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
      for (const mode of order) {
        let loaded: Awaited<ReturnType<typeof loadAll>> | undefined;
        if (mode === 'on') loaded = await loadAll();
        const bps = iperf(w.args);
        if (loaded) for (const p of loaded.probes) await p.close();
        results[w.name]![mode as 'on' | 'off'].push(bps);
        console.log(`${w.name.padEnd(28)} round ${r} ${mode.padEnd(3)} ${(bps / 1e9).toFixed(2)} Gbit/s`);
      }
    }
  }
  console.log('\nthroughput (median of rounds):');
  for (const [name, r] of Object.entries(results)) {
    const off = median(r.off);
    const on = median(r.on);
    // paired: each round's on/off (the two runs of a round are adjacent in time)
    const paired = median(r.on.map((x, i) => x / (r.off[i] ?? x)));
    console.log(
      `  ${name.padEnd(28)} off ${(off / 1e9).toFixed(2)} Gbit/s  on ${(on / 1e9).toFixed(2)} Gbit/s  on/off ${(on / off).toFixed(3)}  (median of per-round ratios ${paired.toFixed(3)})`,
    );
  }

  console.log('\nkernel time per hook hit (BPF_STATS_RUN_TIME, one run per workload):');
  for (const w of WORKLOADS) {
    const loaded = await loadAll();
    const stats = enableRunTimeStats();
    const nullIds = new Set(progs().map((p) => p.id));
    const floor = BpfSpec.fromFile(new URL('../../receiver/bpf/selftest/null.bpf.o', import.meta.url)).load();
    try {
      floor.attach();
      const floorIds = new Set(
        progs()
          .filter((p) => !nullIds.has(p.id) && p.name?.startsWith('null_'))
          .map((p) => p.id),
      );
      if (floorIds.size !== 2) throw new Error(`empty programs attached: ${floorIds.size} of 2`);
      const base = new Map(progs().map((p) => [p.id, p]));
      iperf(w.args);
      const fl = progs()
        .filter((p) => floorIds.has(p.id))
        .reduce(
          (a, p) => ({
            ns: a.ns + (p.run_time_ns ?? 0) - (base.get(p.id)?.run_time_ns ?? 0),
            cnt: a.cnt + (p.run_cnt ?? 0) - (base.get(p.id)?.run_cnt ?? 0),
          }),
          { ns: 0, cnt: 0 },
        );
      const after = progs().filter((p) => loaded.ids.has(p.id));
      console.log(`  ${w.name}:`);
      let total = 0;
      for (const p of after.sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''))) {
        const b = base.get(p.id);
        const ns = (p.run_time_ns ?? 0) - (b?.run_time_ns ?? 0);
        const cnt = (p.run_cnt ?? 0) - (b?.run_cnt ?? 0);
        total += ns;
        console.log(
          `    ${(p.name ?? '?').padEnd(16)} ${String(cnt).padStart(10)} hits  ${cnt ? (ns / cnt).toFixed(0).padStart(5) : '    -'} ns/hit`,
        );
      }
      console.log(`    total kernel time in the probes: ${(total / 1e6).toFixed(1)} ms over ${SECONDS} s`);
      console.log(
        `    floor: an empty program on net_dev_queue / sk_data_ready ${fl.cnt ? (fl.ns / fl.cnt).toFixed(0) : '-'} ns/hit (${fl.cnt} hits)`,
      );
    } finally {
      floor.close();
      stats.close();
      for (const p of loaded.probes) await p.close();
    }
  }
} finally {
  if (server.pid) process.kill(server.pid, 'SIGKILL');
  pair.cleanup();
}
