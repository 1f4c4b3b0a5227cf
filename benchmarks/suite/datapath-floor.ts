// The dispatch floor of the "all probes" hook set: what the data path pays for podnet's hooks when the
// programs on them do nothing. Same two pods and iperf3 runs as benchmarks/suite/datapath.ts; per round,
// in a rotated order, iperf3 with:
//   none        nothing attached (the round's baseline)
//   empty-hook  one empty program per hook the all-probes signals use (receiver/bpf/selftest/hookset.bpf.c:
//               20 tracepoints + one TC pair on the host-side veths): the least program runs per packet
//               these signals need when every probe of a hook shares one program
//   empty-all   one empty program per podnet program (two on net_dev_queue, sk_data_ready and the veths'
//               TC hooks: 26 of the "all" set's 28 — dns's pair on the node's own devices is left out, it
//               sees ~1 packet per 1,000 here). podnet itself now runs one program per packet on
//               net_dev_queue and sk_data_ready (the probes' programs chained, receiver/bpf/hook-chain.ts);
//               this variant keeps the unchained layout as the before-reference
//   empty-stats empty-all with BPF_STATS_RUN_TIME on: the accounting's own cost, and the run counts
//   minlat      one minimal latency program per hook (receiver/bpf/selftest/minlat.bpf.c: a per-CPU array
//               lookup and one bpf_ktime_get_ns on a latency hook, a per-CPU count on a counter hook): the
//               least a program that measures a latency at all costs on this hook set
//   minlat-stats minlat with BPF_STATS_RUN_TIME on: its run counts and accounted ns
//   podnet      (--podnet) the real podnet with every probe on, no BPF_STATS
// Two ratios over the baseline of the same round (median over rounds, with the range): received throughput,
// and iperf3's own CPU time (client + server) per packet — the second holds when other work on the machine
// takes CPU from iperf3 (throughput then moves with the load, CPU per packet much less). UDP (-b 0) is the
// low-noise case; TCP also moves with the congestion window. Exits non-zero when an attach or an iperf3
// run fails.
// The row's metric (benchmarks/suite/datapath.ts: BPF_STATS run time / iperf3 client + server CPU of the same
// run) is printed for the two floors, from each stats run's own numbers: "one empty program per hook" =
// empty-stats' accounted ns scaled to the hook set's runs (runs without the x2_* programs), and "minimal
// latency body per hook" = minlat-stats' accounted ns; both over that run's iperf3 CPU (median over rounds).
//
//   node benchmarks/suite/datapath-floor.ts [--rounds 8] [--seconds 4] [--protos udp,tcp] [--podnet]
//       [--variants none,empty-hook,...]
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { probeSpecs } from '../../probes/registry.ts';
import { BpfSpec } from '../../receiver/bpf/object.ts';
import { enableRunTimeStats, programInfo, type RunTimeStats } from '../../receiver/bpf/stats.ts';
import { BPF_TCX_EGRESS, BPF_TCX_INGRESS, tcApi } from '../../receiver/kit/ebpf/veth.ts';
import { type PodnetProc, startPodnet } from '../lib/podnet.ts';
import { fmt, max, median, min, pctChange, sleep } from '../lib/stats.ts';

process.env['PODNET_LOG_LEVEL'] ??= 'warn';
const { values: o } = parseArgs({
  options: {
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    protos: { type: 'string' },
    podnet: { type: 'boolean', default: false },
    variants: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (o.help) {
  console.log(
    'usage: node benchmarks/suite/datapath-floor.ts [--rounds 8] [--seconds 4] [--protos udp,tcp] [--podnet]\n' +
      '    [--variants none,empty-hook,empty-all,empty-stats,minlat,minlat-stats,podnet] (default: all but podnet,\n' +
      '    podnet with --podnet; "none" is always run: it is the baseline of each round)',
  );
  process.exit(0);
}
const rounds = Number(o.rounds ?? 8);
const seconds = Number(o.seconds ?? 4);
const protos = (o.protos ?? 'udp').split(',') as ('udp' | 'tcp')[];
for (const p of protos) if (p !== 'udp' && p !== 'tcp') throw new Error(`--protos: udp or tcp, not "${p}"`);
if (!(rounds >= 1) || !(seconds >= 1)) throw new Error('--rounds and --seconds: numbers ≥ 1');

type Variant = 'none' | 'empty-hook' | 'empty-all' | 'empty-stats' | 'minlat' | 'minlat-stats' | 'podnet';
const ALL_VARIANTS: Variant[] = [
  'none',
  'empty-hook',
  'empty-all',
  'empty-stats',
  'minlat',
  'minlat-stats',
  'podnet',
];
const VARIANTS: Variant[] = o.variants
  ? ['none', ...o.variants.split(',').filter((v) => v !== 'none')].map((v) => {
      if (!ALL_VARIANTS.includes(v as Variant)) throw new Error(`--variants: unknown variant "${v}"`);
      return v as Variant;
    })
  : ALL_VARIANTS.filter((v) => v !== 'podnet' || o.podnet);
const PORT = 5201;
const HOOKSET = new URL('../../receiver/bpf/selftest/hookset.bpf.o', import.meta.url);
const MINLAT = new URL('../../receiver/bpf/selftest/minlat.bpf.o', import.meta.url);
const isMinlat = (v: Variant): boolean => v === 'minlat' || v === 'minlat-stats';
const isStats = (v: Variant): boolean => v === 'empty-stats' || v === 'minlat-stats';

interface Run {
  round: number;
  variant: Variant;
  proto: 'udp' | 'tcp';
  bps: number;
  /** Datagrams sent (UDP), bytes received / 1448 (TCP, ~segments). */
  packets: number;
  /** iperf3 client + server CPU seconds. */
  cpuS: number;
  /** empty-stats: program runs and accounted ns over the run (all programs of the hook set). */
  runs?: number;
  ns?: number;
  /** empty-stats: runs of the x2_* programs (the second program of a shared hook). */
  x2?: number;
}

const { startCriEnv } = await import('../../test/env/cri/index.ts');
const env = await startCriEnv();
let server: ChildProcess | undefined;
const runs: Run[] = [];
const coll = BpfSpec.fromFile(HOOKSET).load({
  programs: Object.fromEntries(
    ['hs_tc_ingress', 'hs_tc_egress', 'x2_tc_ingress', 'x2_tc_egress'].map((n) => [n, { autoAttach: false }]),
  ),
  strict: true,
});
const tpNames = [...coll.programs.values()]
  .map((p) => p.name)
  .filter((n) => !n.includes('_tc_') && !n.startsWith('clk_'));
const mcoll = BpfSpec.fromFile(MINLAT).load({
  programs: Object.fromEntries(['ml_tc_ingress', 'ml_tc_egress'].map((n) => [n, { autoAttach: false }])),
  strict: true,
});
const mlNames = [...mcoll.programs.values()].map((p) => p.name).filter((n) => !n.includes('_tc_'));
const tcLinks: number[] = [];
let stats: RunTimeStats | undefined;

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

/** Host-side ifindex of a pod's eth0 (its veth peer: `link_index` as seen inside the pod). */
function hostVethIndex(pid: number): number {
  const out = execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-j', 'link', 'show', 'eth0'], {
    encoding: 'utf8',
  });
  const idx = (JSON.parse(out) as { link_index?: number }[])[0]?.link_index;
  if (!idx) throw new Error(`pod ${pid}: eth0 has no link_index`);
  return idx;
}

function attachEmpty(variant: Variant, veths: number[]): void {
  const both = variant !== 'empty-hook' && !isMinlat(variant);
  const c = isMinlat(variant) ? mcoll : coll;
  for (const n of isMinlat(variant) ? mlNames : tpNames) {
    if (!both && n.startsWith('x2_')) continue;
    if (!c.attachProgram(n)) throw new Error(`${n}: ${c.program(n).status().reason}`);
  }
  const tc = tcApi();
  for (const prefix of isMinlat(variant) ? ['ml'] : both ? ['hs', 'x2'] : ['hs']) {
    for (const ifindex of veths) {
      for (const [dir, type] of [
        ['ingress', BPF_TCX_INGRESS],
        ['egress', BPF_TCX_EGRESS],
      ] as const) {
        const fd = c.program(`${prefix}_tc_${dir}`).fd;
        const r = tc.link(fd, ifindex, type);
        if (r < 0) throw new Error(`TCX ${prefix}_tc_${dir} on ifindex ${ifindex}: errno ${-r}`);
        tcLinks.push(r);
      }
    }
  }
}

function detachEmpty(): void {
  for (const n of tpNames) coll.detachProgram(n);
  for (const n of mlNames) mcoll.detachProgram(n);
  const tc = tcApi();
  for (const fd of tcLinks.splice(0)) tc.close(fd);
}

/** Runs and accounted ns of the hook set's programs (valid while BPF_STATS is on). */
function hooksetTotals(): { runs: number; ns: number; x2: number; byProg: Map<string, number> } {
  let runsN = 0;
  let ns = 0;
  let x2 = 0;
  const byProg = new Map<string, number>();
  for (const p of [...coll.programs.values(), ...mcoll.programs.values()]) {
    if (p.fd < 0) continue;
    const i = programInfo(p.fd);
    runsN += i.runCount;
    ns += i.runTimeNs;
    byProg.set(p.name, i.runCount);
    if (p.name.startsWith('x2_')) x2 += i.runCount;
  }
  return { runs: runsN, ns, x2, byProg };
}
/** empty-stats / minlat-stats, per protocol: runs of each program (summed over rounds) and packets. */
const perProg = new Map<string, { packets: number; runs: Map<string, number> }>();

try {
  const srvPod = await env.runPod({ name: 'floor-server' });
  const cliPod = await env.runPod({ name: 'floor-client' });
  const veths = [hostVethIndex(srvPod.pid), hostVethIndex(cliPod.pid)];
  console.log(
    `# pods: server ${srvPod.ip}, client ${cliPod.ip} (host veths ${veths.join(', ')}); ${rounds} rounds × ${seconds} s; ${tpNames.length} tracepoint programs; load ${execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim()}`,
  );
  server = spawn('nsenter', [`--net=/proc/${srvPod.pid}/ns/net`, 'iperf3', '-s', '-p', String(PORT)], {
    stdio: 'ignore',
  });
  await sleep(500);
  await iperf(cliPod.pid, ['-c', srvPod.ip, '-p', String(PORT), '-t', '1', '-J']); // warm-up
  for (let round = 1; round <= rounds; round++) {
    // rotate the order each round so no variant always follows the same one
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round - 1) % VARIANTS.length] as Variant);
    for (const variant of order) {
      let podnet: PodnetProc | undefined;
      if (variant === 'podnet') {
        podnet = await startPodnet({
          config: {
            pods: { cri_endpoint: env.endpoint },
            probes: Object.fromEntries(probeSpecs.map((s) => [s.name, { enabled: true }])),
          },
        });
        const deadline = Date.now() + 60_000;
        while ((await podnet.status()).pods < 2) {
          if (Date.now() > deadline) throw new Error('podnet did not discover the pods');
          await sleep(200);
        }
      } else if (variant !== 'none') {
        if (isStats(variant)) stats = enableRunTimeStats();
        attachEmpty(variant, veths);
      }
      await sleep(1000);
      try {
        for (const proto of protos) {
          const args = ['-c', srvPod.ip, '-p', String(PORT), '-t', String(seconds), '-J'];
          if (proto === 'udp') args.push('-u', '-b', '0');
          const s0 = stats ? hooksetTotals() : undefined;
          // biome-ignore lint/suspicious/noExplicitAny: iperf3 JSON.
          const j = JSON.parse(await iperf(cliPod.pid, args)) as any;
          if (j.error) throw new Error(`iperf3 ${proto}: ${j.error}`);
          const s1 = stats ? hooksetTotals() : undefined;
          const sum = proto === 'tcp' ? j.end.sum_received : (j.end.sum_received ?? j.end.sum);
          const cpu = j.end.cpu_utilization_percent ?? {};
          const run: Run = {
            round,
            variant,
            proto,
            bps: sum.bits_per_second,
            packets: proto === 'udp' ? (j.end.sum?.packets ?? 0) : sum.bytes / 1448,
            cpuS: (((cpu.host_total ?? 0) + (cpu.remote_total ?? 0)) / 100) * (sum.seconds ?? seconds),
            ...(s0 && s1 ? { runs: s1.runs - s0.runs, ns: s1.ns - s0.ns, x2: s1.x2 - s0.x2 } : {}),
          };
          if (s0 && s1) {
            const pk = `${proto} ${variant}`;
            const e = perProg.get(pk) ?? { packets: 0, runs: new Map<string, number>() };
            e.packets += run.packets;
            for (const [n, r] of s1.byProg) {
              const d = r - (s0.byProg.get(n) ?? 0);
              if (d > 0) e.runs.set(n, (e.runs.get(n) ?? 0) + d);
            }
            perProg.set(pk, e);
          }
          if (!(run.bps > 0) || !(run.packets > 0) || !(run.cpuS > 0))
            throw new Error(`iperf3 ${proto} (${variant}): no throughput, packets or CPU reported`);
          runs.push(run);
          console.log(
            `round ${round} ${variant.padEnd(11)} ${proto} ${fmt(run.bps / 1e9, 3)} Gbit/s, iperf3 CPU ${fmt((run.cpuS / run.packets) * 1e9, 0)} ns per packet${run.runs !== undefined ? ` ${fmt(run.runs / run.packets, 1)} runs/packet ${fmt((run.ns ?? 0) / run.runs, 0)} ns/run` : ''}`,
          );
        }
      } finally {
        if (podnet) await podnet.stop();
        else if (variant !== 'none') detachEmpty();
        stats?.close();
        stats = undefined;
      }
    }
  }
} finally {
  detachEmpty();
  stats?.close();
  coll.close();
  mcoll.close();
  server?.kill('SIGTERM');
  await env.teardown();
}

console.log(
  `\nthroughput vs the same round's baseline (median, min … max over ${rounds} rounds); load ${execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim()}`,
);
/** Median over rounds of a stats variant's BPF time / iperf3 CPU of the same run (the data-path row's metric),
 * with its accounted ns scaled by `share(run)` (the part of the runs that belongs to the floor counted). */
function rowMetric(rs: Run[], share: (r: Run) => number): number {
  return median(rs.map((r) => ((r.ns ?? 0) * share(r)) / 1e9 / r.cpuS));
}
let floorMissing = false;
for (const proto of protos) {
  const base = runs.filter((r) => r.proto === proto && r.variant === 'none');
  const cpuPerPacket = median(base.map((r) => (r.cpuS / r.packets) * 1e9));
  const st = runs.filter((r) => r.proto === proto && r.variant === 'empty-stats');
  const ml = runs.filter((r) => r.proto === proto && r.variant === 'minlat-stats');
  console.log(
    `  ${proto}: baseline ${fmt(median(base.map((r) => r.bps / 1e9)), 3)} Gbit/s, iperf3 CPU ${fmt(cpuPerPacket, 0)} ns per packet`,
  );
  for (const v of ['empty-stats', 'minlat-stats'] as const) {
    const pp = perProg.get(`${proto} ${v}`);
    if (pp)
      console.log(
        `    ${v} runs per packet by hook: ${[...pp.runs]
          .filter(([n]) => !n.startsWith('x2_'))
          .map(([n, r]) => `${n.replace(/^(hs|ml)_/, '')} ${fmt(r / pp.packets, 2)}`)
          .join(', ')}`,
      );
  }
  if (st.length) {
    const runsPerPacket = median(st.map((r) => (r.runs ?? 0) / r.packets));
    const nsPerRun = median(st.map((r) => (r.ns ?? 0) / (r.runs || 1)));
    // every x2_* program fires as often as its hs_* twin: empty-hook's runs = empty-all's minus those
    const x2PerPacket = median(st.map((r) => (r.x2 ?? 0) / r.packets));
    console.log(
      `    runs per packet: empty-all ${fmt(runsPerPacket, 2)}, empty-hook ${fmt(runsPerPacket - x2PerPacket, 2)}; ${fmt(nsPerRun, 1)} ns per run accounted by BPF_STATS`,
    );
  }
  for (const variant of VARIANTS.filter((v) => v !== 'none')) {
    const rs: number[] = [];
    for (const r of runs.filter((x) => x.proto === proto && x.variant === variant)) {
      const b = base.find((x) => x.round === r.round);
      if (b) rs.push(r.bps / b.bps);
    }
    // iperf3's own CPU (client + server, user + system: the kernel path runs in their context) per packet,
    // over the same round's baseline: steadier than throughput when other work competes for the CPUs
    const cs: number[] = [];
    for (const r of runs.filter((x) => x.proto === proto && x.variant === variant)) {
      const b = base.find((x) => x.round === r.round);
      if (b) cs.push(r.cpuS / r.packets / (b.cpuS / b.packets));
    }
    console.log(
      `    ${variant.padEnd(11)} throughput ${pctChange(median(rs), 2)} (${pctChange(min(rs), 2)} … ${pctChange(max(rs), 2)});  iperf3 CPU per packet ${pctChange(median(cs), 2)} (${pctChange(min(cs), 2)} … ${pctChange(max(cs), 2)}) ≈ ${fmt((median(cs) - 1) * cpuPerPacket, 0)} ns per packet`,
    );
  }
  // The data-path row's metric (BPF_STATS time / iperf3 CPU, benchmarks/suite/datapath.ts) for the floors,
  // each from its own stats runs: the floor is what that metric reports before any probe body runs.
  const pct = (x: number): string => `${fmt(x * 100, 2)} %`;
  if (st.length) {
    const hookRuns = (r: Run): number => ((r.runs ?? 0) - (r.x2 ?? 0)) / r.packets;
    const nsRun = (r: Run): number => (r.ns ?? 0) / (r.runs || 1);
    const ownCpu = median(st.map((r) => (r.cpuS / r.packets) * 1e9));
    console.log(
      `    row-metric floor, one empty program per hook: ${fmt(median(st.map(hookRuns)), 2)} runs per packet × ${fmt(median(st.map(nsRun)), 1)} ns per run = ${fmt(median(st.map((r) => hookRuns(r) * nsRun(r))), 1)} ns per packet; / iperf3 CPU of the same run (${fmt(ownCpu, 0)} ns per packet) = ${pct(rowMetric(st, (r) => 1 - (r.x2 ?? 0) / (r.runs || 1)))}; / the baseline's (${fmt(cpuPerPacket, 0)}) = ${pct(median(st.map((r) => hookRuns(r) * nsRun(r))) / cpuPerPacket)}`,
    );
  }
  if (ml.length) {
    const ownCpu = median(ml.map((r) => (r.cpuS / r.packets) * 1e9));
    const perPacket = median(ml.map((r) => (r.ns ?? 0) / r.packets));
    console.log(
      `    row-metric floor, minimal latency body per hook: ${fmt(median(ml.map((r) => (r.runs ?? 0) / r.packets)), 2)} runs per packet × ${fmt(median(ml.map((r) => (r.ns ?? 0) / (r.runs || 1))), 1)} ns per run = ${fmt(perPacket, 1)} ns per packet; / iperf3 CPU of the same run (${fmt(ownCpu, 0)} ns per packet) = ${pct(rowMetric(ml, () => 1))}; / the baseline's (${fmt(cpuPerPacket, 0)}) = ${pct(perPacket / cpuPerPacket)}`,
    );
  }
  if (VARIANTS.includes('empty-stats') && !st.length) floorMissing = true;
  if (VARIANTS.includes('minlat-stats') && !ml.length) floorMissing = true;
}
if (floorMissing) {
  console.error('datapath-floor: a stats variant produced no run: no floor printed');
  process.exit(1);
}
