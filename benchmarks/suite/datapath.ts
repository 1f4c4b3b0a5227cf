// Data-path overhead: iperf3 TCP and UDP between two real pods (private containerd via the CRI test
// environment, CNI bridge + veth), with no podnet, podnet with the default probes, and podnet with every
// probe enabled, interleaved in one run (none, default, all, none, default, all, ...). podnet is the real
// CLI (`podnet run --config`) discovering the pods over CRI; it is started before and stopped after each
// run of its variant, so every run measures a freshly attached podnet. The host iperf3 binary runs inside
// the pods' netns (nsenter --net=/proc/<sandbox pid>/ns/net).
//
//   node benchmarks/suite/datapath.ts [--rounds 5] [--seconds 5] [--quick]
//   node benchmarks/suite/datapath.ts --stats-only --base /tmp/dp-base --stats-reps 3
//       A/B of the kernel time only: "all probes" of another checkout (a worktree of the baseline
//       commit) and of this one, interleaved (base, this, base, this, ...), with the per-program
//       ns per run of both; exits non-zero when a run fails. --stats-variant default: the same A/B for
//       the default probes instead of "all". --stats-order this-first: this checkout first in each
//       pair (run both orders: the second of a pair read dearer). --perf: then per tree one TCP and one
//       UDP-flood transfer under `perf record -a -g` with BPF_STATS off (benchmarks/suite/datapath-perf.ts):
//       iperf3's samples per BPF program (a chain's members apart) and in the dispatch.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { probeSpecs } from '../../probes/registry.ts';
import { type PodnetProc, startPodnet } from '../lib/podnet.ts';
import { CpuWindow } from '../lib/proc.ts';
import { emitSection, type Table, type Target } from '../lib/results.ts';
import { fmt, max, median, min, pctChange, sleep } from '../lib/stats.ts';
import { HOOK_HEADERS, hookTable } from './datapath-hooks.ts';
import { measurePerf, type PerfSplit, perfTables, printPerf } from './datapath-perf.ts';
import { type BpfRun, type KernelTimeOptions, measureKernelTime, printStatsAB } from './datapath-stats.ts';

process.env['PODNET_LOG_LEVEL'] ??= 'warn';
const { startCriEnv } = await import('../../test/env/cri/index.ts');

const { values: o } = parseArgs({
  options: {
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    /** Seconds to wait after podnet is ready (start-up JIT/GC done) before measuring. */
    settle: { type: 'string' },
    quick: { type: 'boolean', default: false },
    /** Another checkout whose "all probes" kernel time is measured beside this one's (same run). */
    base: { type: 'string' },
    /** Skip the interleaved throughput rounds: only the BPF_STATS_RUN_TIME runs. */
    'stats-only': { type: 'boolean', default: false },
    /** Runs per variant in the kernel-time phase (the median BPF time / iperf3 CPU is reported). */
    'stats-reps': { type: 'string' },
    /** The variant of the --base A/B: all (default) or default. */
    'stats-variant': { type: 'string' },
    /** With --base: base-first (default) or this-first in each rep (run both: the second reads dearer). */
    'stats-order': { type: 'string' },
    /** Then one TCP and one UDP-flood transfer per tree under perf record -a -g, BPF_STATS off. */
    perf: { type: 'boolean', default: false },
  },
});
const statsOnly = o['stats-only'] ?? false;
const statsReps = Number(o['stats-reps'] ?? 1);
const statsVariant = o['stats-variant'] ?? 'all';
if (statsVariant !== 'all' && statsVariant !== 'default')
  throw new Error(`--stats-variant: "all" or "default", not "${statsVariant}"`);
const statsOrder = o['stats-order'] ?? 'base-first';
if (statsOrder !== 'base-first' && statsOrder !== 'this-first')
  throw new Error(`--stats-order: "base-first" or "this-first", not "${statsOrder}"`);
const rounds = Number(o.rounds ?? (o.quick ? 1 : 5));
const seconds = Number(o.seconds ?? (o.quick ? 1 : 5));
const settleMs = Number(o.settle ?? (o.quick ? 0 : 2)) * 1000;
const started = performance.now();

type Variant = 'none' | 'default' | 'all';
const VARIANTS: Variant[] = ['none', 'default', 'all'];
type Proto = 'tcp' | 'udp';
const PROTOS: Proto[] = ['tcp', 'udp'];
const PORT = 5201;

interface Run {
  round: number;
  variant: Variant;
  proto: Proto;
  bps: number;
  /** UDP: datagrams lost, %. */
  lostPct: number;
  /** podnet CPU % of one core during the iperf3 run. */
  podnetCpuPct: number;
  /** iperf3 client's own CPU % (iperf3 -J cpu_utilization_percent.host_total). */
  iperfCpuPct: number;
  /** iperf3 client + server CPU s (user + system, with the kernel path run in their context) per byte received. */
  cpuPerByte: number;
  machineBusyPct: number;
}

function iperf(netnsPid: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'nsenter',
      [`--net=/proc/${netnsPid}/ns/net`, 'iperf3', ...args],
      { maxBuffer: 64 << 20, timeout: (seconds + 30) * 1000 },
      (err, stdout) => (err && !stdout ? reject(err) : resolve(stdout)),
    );
  });
}

function config(variant: Exclude<Variant, 'none'>, endpoint: string): Record<string, unknown> {
  return {
    pods: { cri_endpoint: endpoint },
    ...(variant === 'all'
      ? { probes: Object.fromEntries(probeSpecs.map((s) => [s.name, { enabled: true }])) }
      : {}),
  };
}

const env = await startCriEnv();
let server: ChildProcess | undefined;
const runs: Run[] = [];
const bpfRuns: BpfRun[] = [];
const perfSplits: PerfSplit[] = [];
const lostPaced: number[] = [];
const probeStates = new Map<Variant, string>();
let podnetCommand = '';
try {
  const srvPod = await env.runPod({ name: 'iperf-server' });
  const cliPod = await env.runPod({ name: 'iperf-client' });
  console.log(
    `# pods: server ${srvPod.ip} (pid ${srvPod.pid}), client ${cliPod.ip} (pid ${cliPod.pid}); ${rounds} rounds × ${seconds} s`,
  );
  server = spawn('nsenter', [`--net=/proc/${srvPod.pid}/ns/net`, 'iperf3', '-s', '-p', String(PORT)], {
    stdio: 'ignore',
  });
  await sleep(500);
  // Warm-up (not recorded): caches, CPU frequency, the first TCP connection.
  await iperf(cliPod.pid, ['-c', srvPod.ip, '-p', String(PORT), '-t', '1', '-J']);
  for (let round = 1; round <= (statsOnly ? 0 : rounds); round++) {
    for (const variant of VARIANTS) {
      let podnet: PodnetProc | undefined;
      if (variant !== 'none') {
        podnet = await startPodnet({ config: config(variant, env.endpoint) });
        podnetCommand ||= podnet.command;
        // Wait until the pods are discovered and a collection saw them.
        const deadline = Date.now() + 60_000;
        for (;;) {
          const s = await podnet.status();
          if (s.pods >= 2 && s.collections >= 1) {
            if (!probeStates.has(variant))
              probeStates.set(
                variant,
                // biome-ignore lint/suspicious/noExplicitAny: /status JSON.
                (s.probes as any[])
                  .filter((p) => p.enabled)
                  .map((p) => `${p.name}${p.state === 'running' ? '' : ` (${p.state})`}`)
                  .join(', '),
              );
            break;
          }
          if (Date.now() > deadline)
            throw new Error(`podnet did not discover the pods: ${JSON.stringify(s.discovery)}`);
          await sleep(200);
        }
      }
      // The same pause before every variant (none included), so that each run starts alike.
      await sleep(settleMs);
      try {
        for (const proto of PROTOS) {
          const args = ['-c', srvPod.ip, '-p', String(PORT), '-t', String(seconds), '-J'];
          if (proto === 'udp') args.push('-u', '-b', '0');
          const win = new CpuWindow(podnet ? [podnet.pid] : []).start();
          const out = await iperf(cliPod.pid, args);
          const w = win.stop();
          // biome-ignore lint/suspicious/noExplicitAny: iperf3 JSON.
          const j = JSON.parse(out) as any;
          if (j.error) throw new Error(`iperf3: ${j.error}`);
          const end = j.end;
          const bps =
            proto === 'tcp'
              ? end.sum_received.bits_per_second
              : (end.sum_received ?? end.sum).bits_per_second;
          const run: Run = {
            round,
            variant,
            proto,
            bps,
            lostPct: proto === 'udp' ? (end.sum?.lost_percent ?? 0) : 0,
            podnetCpuPct: podnet ? ((w.cpu[0] ?? 0) / w.wall) * 100 : 0,
            iperfCpuPct: end.cpu_utilization_percent?.host_total ?? 0,
            cpuPerByte:
              ((((end.cpu_utilization_percent?.host_total ?? 0) +
                (end.cpu_utilization_percent?.remote_total ?? 0)) /
                100) *
                ((proto === 'tcp' ? end.sum_received : (end.sum_received ?? end.sum)).seconds ?? seconds)) /
              (proto === 'tcp' ? end.sum_received : (end.sum_received ?? end.sum)).bytes,
            machineBusyPct: w.machineBusy * 100,
          };
          runs.push(run);
          console.log(
            `round ${round} ${variant.padEnd(7)} ${proto} ${fmt(bps / 1e9, 2)} Gbit/s podnet CPU ${fmt(run.podnetCpuPct)} % machine busy ${fmt(run.machineBusyPct)} %`,
          );
        }
      } finally {
        await podnet?.stop();
      }
    }
  }
  const kt: KernelTimeOptions = {
    serverIp: srvPod.ip,
    clientPid: cliPod.pid,
    port: PORT,
    seconds,
    settleMs,
    reps: statsReps,
    base: o.base,
    abVariant: statsVariant,
    order: statsOrder,
    config: (variant) => config(variant, env.endpoint),
    iperf,
  };
  const k = await measureKernelTime(kt);
  bpfRuns.push(...k.runs);
  lostPaced.push(...k.lostPaced);
  if (o.perf) perfSplits.push(...(await measurePerf(kt)));
} finally {
  server?.kill('SIGTERM');
  await env.teardown();
}

printStatsAB(bpfRuns, o.base !== undefined, o.base !== undefined ? statsVariant : 'all');
if (perfSplits.length > 0) printPerf(perfSplits);
if (statsOnly) process.exit(0);

const rows: (string | number)[][] = [];
const ratios = new Map<string, number[]>();
for (const proto of PROTOS) {
  for (const variant of VARIANTS) {
    const mine = runs.filter((r) => r.proto === proto && r.variant === variant);
    const rs: number[] = [];
    const cs: number[] = [];
    for (const r of mine) {
      const base = runs.find((b) => b.proto === proto && b.variant === 'none' && b.round === r.round);
      if (base) rs.push(r.bps / base.bps);
      if (base && base.cpuPerByte > 0) cs.push(r.cpuPerByte / base.cpuPerByte);
    }
    ratios.set(`${proto} ${variant}`, rs);
    rows.push([
      proto.toUpperCase(),
      variant === 'none' ? 'no podnet (baseline)' : variant === 'default' ? 'default probes' : 'all probes',
      fmt(median(mine.map((r) => r.bps / 1e9)), 2),
      variant === 'none' ? '1 (baseline)' : fmt(median(rs), 4),
      variant === 'none' ? '–' : `${pctChange(median(rs))} (${pctChange(min(rs))} … ${pctChange(max(rs))})`,
      variant === 'none' || !cs.length
        ? '–'
        : `${pctChange(median(cs))} (${pctChange(min(cs))} … ${pctChange(max(cs))})`,
      variant === 'none' ? '–' : fmt(median(mine.map((r) => r.podnetCpuPct))),
      fmt(median(mine.map((r) => r.iperfCpuPct))),
      proto === 'udp' ? fmt(median(mine.map((r) => r.lostPct)), 2) : '–',
      fmt(median(mine.map((r) => r.machineBusyPct))),
    ]);
  }
}
const table: Table = {
  headers: [
    'protocol',
    'variant',
    'median Gbit/s',
    'median ratio to baseline (same round)',
    'throughput change, median (min … max over rounds)',
    'iperf3 CPU per byte received (client + server), change (same round)',
    'podnet CPU % of a core',
    'iperf3 client CPU %',
    'UDP lost %',
    'machine busy %',
  ],
  rows,
};
const bpfTable: Table = {
  title: 'Kernel time of podnet’s BPF programs during the transfer (BPF_STATS_RUN_TIME, one extra run each)',
  headers: [
    'protocol',
    'variant',
    'programs',
    'program runs',
    'BPF ms',
    'BPF ns per KB moved',
    'iperf3 client + server CPU s',
    'BPF time / iperf3 CPU (estimated cost)',
    'of it, the per-run floor (runs × an empty program’s ns per run)',
    'top programs: ms (ns per run)',
  ],
  rows: bpfRuns
    .filter((b) => b.tree === 'this')
    .map((b) => [
      b.proto === 'udp-paced'
        ? `UDP 300 Mbit/s (lost ${fmt(median(lostPaced), 2)} %)`
        : b.proto.toUpperCase(),
      b.variant,
      b.progs,
      b.runs.toLocaleString('en-US'),
      fmt(b.bpfNs / 1e6, 1),
      fmt(b.bpfNs / (b.bytes / 1024), 2),
      fmt(b.iperfCpuS, 2),
      b.iperfCpuS > 0 ? `${fmt((b.bpfNs / 1e9 / b.iperfCpuS) * 100, 2)} %` : '–',
      b.floor.runs > 0 && b.iperfCpuS > 0
        ? `${fmt((((b.runs * b.floor.ns) / b.floor.runs / 1e9) * 100) / b.iperfCpuS, 2)} % (${fmt(b.floor.ns / b.floor.runs, 0)} ns per run)`
        : '–',
      b.top.map(([n, ms, ns]) => `${n} ${fmt(ms, 1)} (${fmt(ns, 0)})`).join(', '),
    ]),
};
// Where the "all probes" BPF time goes, hook by hook (a chain's members are inside its head's time).
const hookTables: Table[] = (['tcp', 'udp', 'udp-paced'] as const).flatMap((proto) => {
  const t = hookTable(bpfRuns, 'this', 'all', proto);
  if (t.rows.length === 0) return [];
  const label = proto === 'udp-paced' ? 'UDP 300 Mbit/s' : proto === 'udp' ? 'UDP flood' : 'TCP';
  return [
    {
      title: `All probes, ${label}: BPF time per hook per ${proto === 'tcp' ? '1,448-byte segment' : 'datagram sent'} (empty-program floor ${fmt(t.floorNs, 0)} ns per dispatch)`,
      headers: [...HOOK_HEADERS],
      rows: t.rows,
    },
  ];
});
const tgt = (variant: 'default' | 'all', limit: number): Target[] => {
  const name = variant === 'default' ? 'default probes' : 'all probes';
  const per = PROTOS.map((p) => {
    const rs = ratios.get(`${p} ${variant}`) ?? [];
    // Half the range of the per-round ratios: how far apart rounds land on this machine right now.
    const noise = rs.length > 1 ? (max(rs) - min(rs)) / 2 : Number.NaN;
    return { p, ratio: median(rs), noise };
  });
  const resolvable = per.every((x) => Number.isFinite(x.noise) && x.noise < limit / 100);
  const worst = Math.min(...per.map((x) => x.ratio));
  const est = bpfRuns.filter((b) => b.tree === 'this' && b.variant === variant && b.iperfCpuS > 0);
  // The target is judged on paths that do not drop (TCP, UDP paced); UDP flooding a socket is shown too.
  const healthy = est.filter((b) => b.proto !== 'udp');
  const estWorst = Math.max(...healthy.map((b) => b.bpfNs / 1e9 / b.iperfCpuS));
  const label = (p: BpfRun['proto']): string =>
    p === 'udp-paced' ? 'UDP 300 Mbit/s' : p === 'udp' ? 'UDP flood (drops)' : p.toUpperCase();
  return [
    {
      name: `${name} throughput cost (iperf3 ratio)`,
      target: `< ${limit} % (TCP and UDP, median of per-round ratios)`,
      measured: `${per
        .map((x) => `${x.p.toUpperCase()} ${pctChange(x.ratio, 2)} (rounds ±${fmt(x.noise * 100, 1)} %)`)
        .join(', ')}${resolvable ? '' : ' — round-to-round noise exceeds the target: inconclusive here'}`,
      met: o.quick || !resolvable || !Number.isFinite(worst) ? null : 1 - worst < limit / 100,
    },
    {
      name: `${name} throughput cost (estimated from kernel time)`,
      target: `< ${limit} % (BPF run time / iperf3 CPU time, worst of TCP and UDP at 300 Mbit/s)`,
      measured: est.length
        ? est.map((b) => `${label(b.proto)} ${fmt((b.bpfNs / 1e9 / b.iperfCpuS) * 100, 2)} %`).join(', ')
        : 'not measured',
      met: o.quick || !healthy.length ? null : estWorst < limit / 100,
    },
  ];
};
emitSection({
  id: 'datapath',
  title: 'Data-path overhead: iperf3 between two pods',
  commands: [
    `node benchmarks/suite/datapath.ts --rounds ${rounds} --seconds ${seconds} --settle ${settleMs / 1000}`,
  ],
  method: [
    'Two sandbox-only pods on a private containerd (test/env/cri: CNI bridge, one veth per pod); host `iperf3 -s` in one pod netns, `iperf3 -c <pod ip> -t ' +
      `${seconds} -J\` (TCP) and \`-u -b 0\` (UDP, unlimited) in the other, via \`nsenter --net=/proc/<sandbox pid>/ns/net\`.`,
    `Variants interleaved per round: none → default → all (${rounds} rounds); podnet = \`${podnetCommand || 'node receiver/cli/main.ts run --config FILE'}\` with \`pods.cri_endpoint\` = the private containerd, started before its variant's runs (pods discovered, one collection done, then ${settleMs / 1000} s — the same pause precedes the baseline) and stopped after.`,
    `Probes in "default": ${probeStates.get('default') ?? '–'}.`,
    `Probes in "all": ${probeStates.get('all') ?? '–'}.`,
    'Ratio = variant throughput / baseline throughput of the same round (received bits/s); the change column is its median and range. podnet CPU = its utime + stime during the iperf3 run (collection interval 10 s, the default, so a run sees about one collection; the eBPF handlers run in softirq/process context and show up as throughput, not as podnet CPU).',
  ],
  tables: [table, bpfTable, ...hookTables, ...perfTables(perfSplits)],
  targets: [...tgt('default', 1), ...tgt('all', 3)],
  notes: [
    'Per hook (BPF_STATS): the programs on each hook from podnet’s /status. A tail call is not a run of its own in this accounting (the callee’s time lands in its caller’s), so a chain (a → b) is one dispatch whose time is the whole chain’s; “program bodies” counts each member. “Above the empty-program floor” = the hook’s time minus its dispatches × the floor’s ns per run: what cheaper bodies could still remove; the rest only fewer dispatches can.',
    ...(perfSplits.length > 0
      ? [
          'perf tables (`--perf`, benchmarks/suite/datapath-perf.ts): one more TCP and UDP-flood transfer with BPF_STATS off under `perf record -a -g`; each sample of iperf3 is charged to the innermost BPF program on its stack (tail-called programs have their own JIT symbols, so a chain’s members are told apart), else to the dispatch when a tracepoint runner or trampoline is on the stack. TC/TCX dispatch is inlined into the network stack here and is not separable by symbol (it stays in “the rest”). perf samples with cpu-clock in this VM (no PMU): code run with interrupts off is charged where they are re-enabled, so hooks that fire with interrupts off (softirq_raise) read low.',
        ]
      : []),
    'A throughput change smaller than the round-to-round spread of the baseline is noise on this shared 2-core machine: compare the range column with the target.',
    ...(() => {
      const lost = median(
        runs.filter((r) => r.proto === 'udp' && r.variant === 'none').map((r) => r.lostPct),
      );
      return lost > 5
        ? [
            `UDP at \`-b 0\` overloads the receiving socket (${fmt(lost, 0)} % of datagrams lost at the baseline): every lost datagram is a kernel drop, which the default drop probes (packetloss, sockoverflow) count and offer as an event (rate-limited in the kernel). The UDP rows are therefore the cost of podnet on a path that drops hundreds of thousands of packets per second, not on a healthy one.`,
          ]
        : [];
    })(),
    'The per-run floor: empty tp_btf programs (receiver/bpf/selftest/null.bpf.c) attached to net_dev_queue and sk_data_ready during the same runs; their ns per run is what every program run pays in this accounting whatever it does (the clock reads around it, the call). Runs × that floor is the share of the BPF time that only fewer programs per packet can remove. What this accounting reports for an empty program is its own clock read; without BPF_STATS an empty program’s run costs about as much in dispatch (the tracepoint’s call into BPF), which the accounting does not see — measured by `node benchmarks/suite/bpf-run-floor.ts`, and the hook set’s floor on this path by `node benchmarks/suite/datapath-floor.ts` (docs/probes-latency.md «Data-path cost»). The empty programs add about three runs per datagram to the path themselves (in iperf3’s CPU time, not in podnet’s BPF time: the ratio is lowered by under 2 % of itself).',
    'iperf3 CPU per byte received: the CPU time iperf3 reports (client + server, user + system, which includes the kernel path run in their context, BPF programs too) per byte, over the same round’s baseline — the real cost of the variant per byte moved, BPF_STATS off. It is steadier than throughput when other work takes CPU from iperf3 (throughput then follows the load).',
    'The second table is independent of that noise: the in-kernel time podnet adds to the data path, measured, against the CPU time iperf3 itself reports for the same transfer (client + server, user + system, which includes the kernel network stack run in their context). BPF time / iperf3 CPU estimates the throughput cost of a CPU-bound transfer.',
  ],
  durationS: (performance.now() - started) / 1000,
  data: { runs, bpf: bpfRuns },
});
