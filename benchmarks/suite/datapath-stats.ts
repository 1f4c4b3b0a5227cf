// The kernel-time phase of benchmarks/suite/datapath.ts: podnet's BPF programs' run time
// (BPF_STATS_RUN_TIME) during one more iperf3 run per variant and protocol, optionally against another
// checkout (--base, interleaved base, this, base, this, ...), and the A/B report of it (--stats-only).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { BpfSpec } from '../../receiver/bpf/object.ts';
import { enableRunTimeStats } from '../../receiver/bpf/stats.ts';
import { type PodnetProc, startPodnet } from '../lib/podnet.ts';
import { fmt, median, sleep } from '../lib/stats.ts';
import { type ProgLayout, printHooks, progLayout } from './datapath-hooks.ts';

/** Sum of run_time_ns / run_cnt over the BPF programs held by `pid` (bpftool prog show → pids). */
interface BpftoolProg {
  id: number;
  name?: string;
  run_time_ns?: number;
  run_cnt?: number;
}

/** Ids of the BPF programs `pid` holds (program and link fds: /proc/<pid>/fdinfo → prog_id). */
function programIds(pid: number): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target !== 'anon_inode:bpf-prog' && target !== 'anon_inode:bpf_link') continue;
      const m = /^prog_id:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // fd closed meanwhile
    }
  }
  return ids;
}

/** Sum of run_time_ns / run_cnt over the BPF programs held by `pid`. */
function bpfTotals(pid: number): {
  ns: number;
  runs: number;
  progs: number;
  byProg: Map<string, { ns: number; runs: number }>;
} {
  const ids = programIds(pid);
  const out = execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const all = JSON.parse(out) as BpftoolProg[];
  let ns = 0;
  let runs = 0;
  let progs = 0;
  const byProg = new Map<string, { ns: number; runs: number }>();
  for (const p of all) {
    if (!ids.has(p.id)) continue;
    const key = `${p.name ?? p.id}`;
    const e = byProg.get(key) ?? { ns: 0, runs: 0 };
    e.ns += p.run_time_ns ?? 0;
    e.runs += p.run_cnt ?? 0;
    byProg.set(key, e);
    ns += p.run_time_ns ?? 0;
    runs += p.run_cnt ?? 0;
    progs++;
  }
  return { ns, runs, progs, byProg };
}

export interface BpfRun {
  /** 'this' checkout, or 'base' (--base). */
  tree: 'this' | 'base';
  rep: number;
  variant: 'default' | 'all';
  proto: 'tcp' | 'udp' | 'udp-paced';
  progs: number;
  bpfNs: number;
  runs: number;
  bytes: number;
  /** UDP: datagrams sent (iperf3 end.sum.packets); TCP: bytes received / 1448 (MSS-sized segments). */
  packets: number;
  wall: number;
  iperfCpuS: number;
  /** Programs by BPF time in this run: name, ms, ns per run. */
  top: [string, number, number][];
  /** Every program of the run: name, runs, ns. */
  all: [string, number, number][];
  /** Empty programs on net_dev_queue and sk_data_ready during the run (receiver/bpf/selftest/null.bpf.c). */
  floor: { runs: number; ns: number };
  /** podnet's programs by hook, from its /status (chain order: receiver/bpf/hook-chain.ts). */
  layout: ProgLayout[];
}

/** The empty programs: attached by this process for the kernel-time phase (their floor per run). */
const NULL_OBJECT = new URL('../../receiver/bpf/selftest/null.bpf.o', import.meta.url);

export interface KernelTimeOptions {
  readonly serverIp: string;
  readonly clientPid: number;
  readonly port: number;
  readonly seconds: number;
  readonly settleMs: number;
  /** Runs per variant (--stats-reps). */
  readonly reps: number;
  /** Another checkout whose kernel time is measured beside this one's (--base). */
  readonly base: string | undefined;
  /** The variant of the A/B with --base (--stats-variant, default "all"). */
  readonly abVariant?: 'default' | 'all';
  /** With --base: which tree runs first in each rep (--stats-order; the second of a pair read dearer). */
  readonly order?: 'base-first' | 'this-first';
  readonly config: (variant: 'default' | 'all') => Record<string, unknown>;
  readonly iperf: (netnsPid: number, args: string[]) => Promise<string>;
}

/**
 * Kernel time of podnet's BPF programs during one more run per variant and protocol, with
 * BPF_STATS_RUN_TIME on (not during the interleaved rounds: the accounting itself costs two clock reads
 * per program run). Returns the runs and the UDP loss of the paced runs.
 */
export async function measureKernelTime(
  o: KernelTimeOptions,
): Promise<{ runs: BpfRun[]; lostPaced: number[] }> {
  const { serverIp: srvIp, clientPid: cliPid, seconds, settleMs } = o;
  const bpfRuns: BpfRun[] = [];
  const lostPaced: number[] = [];
  const stats = enableRunTimeStats();
  const floorProgs = BpfSpec.fromFile(NULL_OBJECT).load();
  try {
    const st = floorProgs.attach();
    if (!st.programs.every((p) => p.state === 'attached'))
      throw new Error(`null programs not attached: ${JSON.stringify(st.programs)}`);
    const plan: { tree: 'this' | 'base'; variant: 'default' | 'all'; rep: number }[] = [];
    for (let rep = 1; rep <= o.reps; rep++) {
      if (!o.base) plan.push({ tree: 'this', variant: 'default', rep });
      const ab = o.abVariant ?? 'all';
      const pair: { tree: 'this' | 'base'; variant: 'default' | 'all'; rep: number }[] = [];
      if (o.base) pair.push({ tree: 'base', variant: ab, rep });
      pair.push({ tree: 'this', variant: o.base ? ab : 'all', rep });
      if (o.order === 'this-first') pair.reverse();
      plan.push(...pair);
    }
    for (const { tree, variant, rep } of plan) {
      const podnet = await startDiscovered({ config: o.config(variant), tree, base: o.base, settleMs });
      try {
        const layout = progLayout(await podnet.status());
        // Plus UDP paced at 300 Mbit/s, which the receiver absorbs without drops: the healthy-path case.
        for (const proto of ['tcp', 'udp', 'udp-paced'] as const) {
          const args = ['-c', srvIp, '-p', String(o.port), '-t', String(seconds), '-J'];
          if (proto === 'udp') args.push('-u', '-b', '0');
          if (proto === 'udp-paced') args.push('-u', '-b', '300M');
          const b0 = bpfTotals(podnet.pid);
          const f0 = bpfTotals(process.pid);
          const t0 = performance.now();
          // biome-ignore lint/suspicious/noExplicitAny: iperf3 JSON.
          const j = JSON.parse(await o.iperf(cliPid, args)) as any;
          if (j.error) throw new Error(`iperf3: ${j.error}`);
          const wall = (performance.now() - t0) / 1000;
          const b1 = bpfTotals(podnet.pid);
          const f1 = bpfTotals(process.pid);
          const sum = proto === 'tcp' ? j.end.sum_received : (j.end.sum_received ?? j.end.sum);
          const cpu = j.end.cpu_utilization_percent ?? {};
          if (proto === 'udp-paced') lostPaced.push(j.end.sum?.lost_percent ?? 0);
          const perProg = [...b1.byProg].map(([name, e]): [string, number, number] => {
            const before = b0.byProg.get(name) ?? { ns: 0, runs: 0 };
            return [name, e.runs - before.runs, e.ns - before.ns];
          });
          const run: BpfRun = {
            tree,
            rep,
            variant,
            proto,
            progs: b1.progs,
            bpfNs: b1.ns - b0.ns,
            runs: b1.runs - b0.runs,
            bytes: sum.bytes,
            packets: proto === 'tcp' ? sum.bytes / 1448 : (j.end.sum?.packets ?? 0),
            wall,
            iperfCpuS: (((cpu.host_total ?? 0) + (cpu.remote_total ?? 0)) / 100) * (sum.seconds ?? seconds),
            top: perProg
              .filter((x) => x[2] > 0)
              .map(([name, runs, ns]): [string, number, number] => [name, ns / 1e6, runs > 0 ? ns / runs : 0])
              .sort((a, b) => b[1] - a[1])
              .slice(0, 4),
            all: perProg,
            floor: { runs: f1.runs - f0.runs, ns: f1.ns - f0.ns },
            layout,
          };
          if (!(run.iperfCpuS > 0) || !(run.bytes > 0))
            throw new Error(`iperf3 ${proto}: no CPU or bytes reported`);
          bpfRuns.push(run);
          console.log(
            `stats ${tree} ${variant} rep ${rep} ${proto}: BPF ${fmt(run.bpfNs / 1e6, 1)} ms / iperf3 CPU ${fmt(run.iperfCpuS, 2)} s = ${fmt((run.bpfNs / 1e9 / run.iperfCpuS) * 100, 2)} %`,
          );
        }
      } finally {
        await podnet.stop();
      }
    }
  } finally {
    floorProgs.close();
    stats.close();
  }
  return { runs: bpfRuns, lostPaced };
}

/** The A/B report of the kernel-time phase: cost per tree and protocol, then ns per run per program. */
export function printStatsAB(
  bpfRuns: readonly BpfRun[],
  base: boolean,
  variant: 'default' | 'all' = 'all',
): void {
  const label = variant === 'all' ? 'all probes' : 'default probes';
  const trees = base ? (['base', 'this'] as const) : (['this'] as const);
  const protos = ['tcp', 'udp', 'udp-paced'] as const;
  console.log(
    `\nBPF run time / iperf3 CPU, "${label}" (median over reps; each rep: the value of every tree)`,
  );
  for (const proto of protos) {
    const line = trees.map((tree) => {
      const xs = bpfRuns.filter((b) => b.tree === tree && b.variant === variant && b.proto === proto);
      const pct = xs.map((b) => (b.bpfNs / 1e9 / b.iperfCpuS) * 100);
      return `${tree} ${fmt(median(pct), 2)} % [${pct.map((x) => fmt(x, 2)).join(', ')}]`;
    });
    console.log(`  ${proto.padEnd(10)} ${line.join('   ')}`);
  }
  const fl = bpfRuns.reduce((a, b) => ({ runs: a.runs + b.floor.runs, ns: a.ns + b.floor.ns }), {
    runs: 0,
    ns: 0,
  });
  if (fl.runs > 0)
    console.log(
      `\nfloor: an empty tp_btf program on net_dev_queue / sk_data_ready costs ${fmt(fl.ns / fl.runs, 0)} ns per run in this accounting (${fl.runs} runs, all runs of this phase)`,
    );
  console.log(
    `\nper program (all reps summed), "${label}": runs, runs per packet (UDP: datagrams sent; TCP: 1,448-byte segments of payload, moved in GSO/GRO packets of up to 64 KB, so a hook runs far less than once per segment), BPF ms, ns per run`,
  );
  for (const proto of protos) {
    console.log(`  ${proto}:`);
    const names = new Set<string>();
    const agg = new Map<string, { runs: number; ns: number }>();
    const packets = new Map<string, number>();
    for (const b of bpfRuns.filter((x) => x.variant === variant && x.proto === proto)) {
      packets.set(b.tree, (packets.get(b.tree) ?? 0) + b.packets);
      for (const [name, runs, ns] of b.all) {
        names.add(name);
        const k = `${b.tree} ${name}`;
        const e = agg.get(k) ?? { runs: 0, ns: 0 };
        e.runs += runs;
        e.ns += ns;
        agg.set(k, e);
      }
    }
    for (const name of [...names].sort()) {
      const cols = trees.map((tree) => {
        const e = agg.get(`${tree} ${name}`);
        if (!e) return `${tree} ${'-'.padStart(28)}`;
        const pk = packets.get(tree) ?? 0;
        return `${tree} ${String(e.runs).padStart(9)} runs ${(pk > 0 ? fmt(e.runs / pk, e.runs < pk ? 3 : 2) : '-').padStart(6)}/pkt ${fmt(e.ns / 1e6, 1).padStart(7)} ms ${(e.runs ? fmt(e.ns / e.runs, 0) : '-').padStart(5)} ns`;
      });
      console.log(`    ${name.padEnd(18)} ${cols.join('   ')}`);
    }
    const totals = trees.map((tree) => {
      let r = 0;
      let ns = 0;
      for (const [k, e] of agg) {
        if (!k.startsWith(`${tree} `)) continue;
        r += e.runs;
        ns += e.ns;
      }
      const pk = packets.get(tree) ?? 0;
      return `${tree} ${pk > 0 ? fmt(r / pk, 2) : '-'} runs and ${pk > 0 ? fmt(ns / pk, 0) : '-'} ns per packet`;
    });
    console.log(`    ${'(all programs)'.padEnd(18)} ${totals.join('   ')}`);
  }
  printHooks(bpfRuns, trees, variant);
}

/**
 * podnet for one tree of an A/B (`base` = the other checkout's root, used for tree 'base'), returned once it
 * has discovered both pods and `settleMs` has passed; stopped again if that does not happen within 60 s.
 */
export async function startDiscovered(o: {
  config: Record<string, unknown>;
  tree: 'this' | 'base';
  base: string | undefined;
  settleMs: number;
}): Promise<PodnetProc> {
  const podnet = await startPodnet({
    config: o.config,
    ...(o.tree === 'base' && o.base ? { root: o.base } : {}),
  });
  try {
    const deadline = Date.now() + 60_000;
    while ((await podnet.status()).pods < 2) {
      if (Date.now() > deadline) throw new Error(`podnet (${o.tree}) did not discover the pods`);
      await sleep(200);
    }
    await sleep(o.settleMs);
    return podnet;
  } catch (err) {
    await podnet.stop();
    throw err;
  }
}
