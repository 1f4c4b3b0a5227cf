// The benchmark suite: runs every benchmark (the suite's own under benchmarks/suite/ and the per-area ones
// next to it) as a child process, collects what each reports, and writes benchmarks/RESULTS.md with the
// machine, the command of every figure and the numbers.
//
//   npm run bench                      # = node benchmarks/run.ts: everything, full sizes (~20-30 min)
//   node benchmarks/run.ts --quick     # tiny sizes: checks the suite works; numbers not meaningful
//   node benchmarks/run.ts --only events,scale [--out FILE] [--list]
//
// Suite benchmarks print one `@@podnet-bench@@ {Section}` line (benchmarks/lib/results.ts); per-area
// benchmarks print their own format, which goes into RESULTS.md as is. A benchmark that fails or times
// out becomes a section with its error and no figures, the rest still runs, and the suite exits 1. The
// benchmarks run one after the other; the total time is printed at the end and written into RESULTS.md.
// Needs root (netns, BPF, containerd).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { failureLines } from './lib/finish.ts';
import { machineInfo } from './lib/machine.ts';
import { CLK_TCK, cpuSeconds, machineTicks } from './lib/proc.ts';
import { parseSection, renderResults, type Section } from './lib/results.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface Bench {
  readonly id: string;
  readonly title: string;
  readonly file: string;
  readonly args: readonly string[];
  readonly quickArgs: readonly string[];
  /** Suite benchmarks report a Section; per-area ones print text/JSON. */
  readonly suite: boolean;
  readonly timeoutS: number;
  /** Node flags before the file (e.g. --expose-gc). */
  readonly nodeArgs?: readonly string[];
  /** Skipped (with a note) when the file is not there yet (a benchmark another area is writing). */
  readonly optional?: boolean;
}

export const BENCHES: readonly Bench[] = [
  {
    id: 'datapath',
    title: 'Data-path overhead',
    file: 'benchmarks/suite/datapath.ts',
    args: [],
    quickArgs: ['--quick'],
    suite: true,
    timeoutS: 1800,
  },
  {
    id: 'events',
    title: 'Event pipeline',
    file: 'benchmarks/suite/events.ts',
    args: [],
    quickArgs: ['--quick'],
    suite: true,
    timeoutS: 1200,
  },
  {
    id: 'scale',
    title: 'Scale',
    file: 'benchmarks/suite/scale.ts',
    args: [],
    quickArgs: ['--quick'],
    suite: true,
    timeoutS: 1800,
  },
  {
    id: 'memory',
    title: 'Memory breakdown',
    file: 'benchmarks/suite/memory.ts',
    args: [],
    quickArgs: ['--quick'],
    suite: true,
    timeoutS: 600,
  },
  {
    id: 'node-exporter',
    title: 'Versus node_exporter',
    file: 'benchmarks/suite/node-exporter.ts',
    args: [],
    quickArgs: ['--quick'],
    suite: true,
    timeoutS: 900,
  },
  {
    id: 'kernel-vm',
    title: 'Kernel matrix — probes on this kernel and on Debian 6.1 (VM)',
    file: 'benchmarks/kernel/vm.ts',
    args: [],
    // one size only: the whole check set on both kernels
    quickArgs: [],
    suite: true,
    timeoutS: 1200,
  },
  {
    id: 'bpf-ring',
    title: 'Per area — eBPF ring reader: burst drain',
    file: 'benchmarks/bpf/ring.ts',
    args: [],
    quickArgs: ['--events', '20000', '--idle', '1'],
    suite: false,
    timeoutS: 600,
  },
  {
    id: 'ebpf-hook-cost',
    title: 'Per area — eBPF anomaly probes: kernel time per hook hit',
    file: 'benchmarks/ebpf/hook-cost.ts',
    args: [],
    quickArgs: ['20000'],
    suite: false,
    timeoutS: 900,
  },
  {
    id: 'otel-entity-resources',
    title: 'Per area — OTLP metrics: one Resource per entity vs entity keys on every point',
    file: 'benchmarks/otel/entity-resources.ts',
    args: ['--pods', '1000', '--series', '170', '--rounds', '7'],
    quickArgs: ['--pods', '20', '--series', '10', '--rounds', '1'],
    suite: false,
    timeoutS: 600,
  },
  {
    id: 'otel-stack-cost',
    title: 'Per area — kernel stacks on events: user-space cost per event, stacks on vs off',
    file: 'benchmarks/otel/stack-cost.ts',
    args: ['--events', '100000', '--rounds', '5'],
    quickArgs: ['--events', '5000', '--rounds', '1'],
    suite: false,
    timeoutS: 600,
  },
  {
    id: 'ebpf-storm',
    title: 'Per area — eBPF packetloss: 1M-drop storm',
    file: 'benchmarks/ebpf/storm.ts',
    args: [],
    quickArgs: ['50000'],
    suite: false,
    timeoutS: 900,
  },
  {
    id: 'capture',
    title: 'Per area — packet capture: loss-free rate and cost to the captured traffic',
    file: 'benchmarks/capture/capture.ts',
    args: [],
    quickArgs: ['--quick'],
    suite: false,
    timeoutS: 600,
  },
  {
    id: 'capture-sockets',
    title: 'Per area — packet capture: TPACKET_V3 ring versus recvfrom per packet',
    file: 'benchmarks/capture/socket-options.ts',
    args: [],
    quickArgs: ['--quick'],
    suite: false,
    timeoutS: 300,
  },
  {
    id: 'latency-overhead',
    title: 'Per area — eBPF latency probes: iperf3 overhead and hook cost',
    file: 'benchmarks/latency/overhead.ts',
    args: [],
    quickArgs: ['--rounds', '1', '--seconds', '1'],
    suite: false,
    timeoutS: 900,
  },
  {
    id: 'dns',
    title: 'Per area — dns probe: cost at 5,000 queries/s vs probe off',
    file: 'benchmarks/dns/dns.ts',
    args: ['--rate', '5000', '--seconds', '10'],
    quickArgs: ['--rate', '500', '--seconds', '1'],
    suite: false,
    timeoutS: 300,
  },
  {
    id: 'procfs-collect',
    title: 'Per area — procfs probes: collection at 1/100/1,000 netns',
    file: 'benchmarks/procfs/collect.ts',
    args: [],
    quickArgs: ['1,10', '1'],
    suite: false,
    timeoutS: 900,
  },
  {
    id: 'kit-queue',
    title: 'Per area — per-entity loop: hand-written vs p-queue at 1,000 netns',
    file: 'benchmarks/procfs/queue.ts',
    args: [],
    quickArgs: ['20', '1'],
    suite: false,
    timeoutS: 600,
  },
  {
    id: 'netlink-collect',
    title: 'Per area — netlink probes: collection at 1/100/1,000 netns',
    file: 'benchmarks/netlink/collect.ts',
    args: [],
    quickArgs: ['1', '10'],
    suite: false,
    timeoutS: 900,
  },
  {
    id: 'pods-refresh',
    title: 'Per area — pod discovery: CRI refresh at 100 pods',
    file: 'benchmarks/pods/refresh.ts',
    args: [],
    quickArgs: ['--pods', '3', '--rounds', '3'],
    suite: false,
    timeoutS: 900,
    // it measures the heap a registry holds with gc() before and after
    nodeArgs: ['--expose-gc'],
  },
  {
    id: 'peers',
    title: 'Per area — peer resolution: memory at 10,000 pods + 2,000 Services, lookup per event',
    file: 'benchmarks/peers/resolver.ts',
    args: [],
    quickArgs: ['--pods', '500', '--services', '100', '--events', '100000'],
    suite: false,
    timeoutS: 600,
    nodeArgs: ['--expose-gc'],
  },
  {
    id: 'scale-agent',
    title: 'Per area — the whole agent at scale, collection by collection',
    file: 'benchmarks/scale/agent.ts',
    args: [],
    quickArgs: ['--sizes', '2', '--collections', '1', '--warmup', '1'],
    suite: false,
    timeoutS: 1200,
    nodeArgs: ['--expose-gc'],
    optional: true,
  },
  {
    id: 'otel-pipeline',
    title: 'Per area — metric pipeline: 300 pods × 60 series',
    file: 'benchmarks/otel/pipeline.ts',
    args: [],
    quickArgs: ['--entities', '10', '--series', '10', '--rounds', '2'],
    suite: false,
    timeoutS: 600,
  },
  {
    id: 'otel-outage',
    title: 'Per area — OTLP endpoint outage under event load',
    file: 'benchmarks/otel/outage.ts',
    args: [],
    quickArgs: ['--outage-ms', '2000', '--rate', '200'],
    suite: false,
    timeoutS: 600,
  },
  {
    id: 'backend-down',
    title: 'Reliability — OTLP backend down 10 min (refusing, then stalled) under event load',
    file: 'benchmarks/reliability/backend-down.ts',
    args: ['--minutes', '10'],
    quickArgs: ['--minutes', '0.3'],
    suite: false,
    timeoutS: 1200,
  },
  {
    id: 'churn',
    title: 'Reliability — pod churn soak: fds, BPF map entries, RSS before/after',
    file: 'benchmarks/reliability/churn.ts',
    args: ['--pods', '300'],
    quickArgs: ['--pods', '6', '--live', '2', '--warmup', '3'],
    suite: false,
    timeoutS: 3600,
  },
];

export interface Outcome {
  stdout: string;
  stderr: string;
  code: number | null;
  timedOut: boolean;
  seconds: number;
}

function runChild(b: Bench, args: readonly string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...(b.nodeArgs ?? []), b.file, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PODNET_LOG_LEVEL: process.env['PODNET_LOG_LEVEL'] ?? 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!b.suite || !d.toString().startsWith('\n@@'))
        process.stderr.write(d.toString().replace(/^@@podnet-bench@@.*$/m, ''));
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19));
    });
    let timedOut = false;
    // SIGTERM first so the benchmark's own cleanup (netns, containerd, netns) runs; SIGKILL later.
    const t = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
    }, b.timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ stdout, stderr, code, timedOut, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

const tail = (s: string, n: number): string => s.trimEnd().split('\n').slice(-n).join('\n');

/**
 * What run.ts records of one run. A failed run (non-zero exit, time-out, or no result line) keeps its
 * command and its error, and none of its figures: no table, target, note or output, since they come from
 * a run whose checks did not hold (benchmarks/lib/finish.ts prints them to stderr, marked as such).
 */
export function toSection(b: Bench, args: readonly string[], r: Outcome): Section {
  const command = `node ${[...(b.nodeArgs ?? []), b.file, ...args].join(' ')}`;
  const parsed = b.suite ? parseSection(r.stdout) : undefined;
  const failed = r.timedOut
    ? `timed out after ${b.timeoutS} s`
    : r.code !== 0
      ? `exited with code ${r.code}`
      : b.suite && !parsed
        ? 'no result line'
        : undefined;
  if (failed) {
    const reasons = failureLines(r.stderr);
    return {
      id: b.id,
      title: parsed?.title ?? b.title,
      commands: [command],
      tables: [],
      targets: [],
      notes: [],
      error: `${failed}: ${reasons.length ? reasons.join('; ') : tail(r.stderr, 5)}`,
      durationS: r.seconds,
    };
  }
  if (parsed) return { ...parsed, durationS: r.seconds };
  return {
    id: b.id,
    title: b.title,
    commands: [command],
    tables: [],
    targets: [],
    notes: [`Written and maintained with its area (\`${b.file}\`); its output is copied below as printed.`],
    raw: tail(r.stdout, 120),
    durationS: r.seconds,
  };
}

async function main(): Promise<void> {
  const { values: o } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string', default: 'benchmarks/RESULTS.md' },
      /** With --only: keep the other sections from the previous run (RESULTS.json next to --out). */
      merge: { type: 'boolean', default: true },
      list: { type: 'boolean', default: false },
    },
  });
  if (o.list) {
    for (const b of BENCHES) process.stdout.write(`${b.id.padEnd(18)} ${b.file}  ${b.title}\n`);
    return;
  }
  const only = o.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((id) => !BENCHES.some((b) => b.id === id)) ?? [];
  if (unknown.length) throw new Error(`unknown benchmark(s) ${unknown.join(', ')}; --list shows the ids`);
  const selected = BENCHES.filter((b) => !only || only.includes(b.id));
  const { failed } = await runSuite({
    benches: selected,
    quick: o.quick,
    out: o.out.startsWith('/') ? o.out : `${ROOT}${o.out}`,
    merge: only !== undefined && o.merge,
    command: `node benchmarks/run.ts${o.quick ? ' --quick' : ''}${o.only ? ` --only ${o.only}` : ''}`,
  });
  if (failed.length) process.exitCode = 1;
}

export interface SuiteOptions {
  readonly benches: readonly Bench[];
  readonly quick: boolean;
  /** RESULTS.md path; RESULTS.json is written next to it. */
  readonly out: string;
  /** Keep the sections of other benchmarks from RESULTS.json (run.ts --only). */
  readonly merge: boolean;
  readonly command: string;
}

/** Runs `benches` one after the other and writes the results after each; returns the ids that failed. */
export async function runSuite(o: SuiteOptions): Promise<{ failed: string[] }> {
  const machine = machineInfo();
  const t0 = performance.now();
  const { out, command } = o;
  const jsonOut = `${out.replace(/\.md$/, '')}.json`;
  const order = [...BENCHES, ...o.benches.filter((b) => !BENCHES.includes(b))];
  // Sections measured by an earlier run, kept when only some benchmarks are re-run. Read again at every
  // write, so that a second invocation writing the same file meanwhile keeps its sections (and the overlap
  // of the two shows beside the figures, benchmarks/lib/results.ts `overlapping`).
  const previous = (): Map<string, Section> => {
    const m = new Map<string, Section>();
    if (!o.merge || !existsSync(jsonOut)) return m;
    try {
      const j = JSON.parse(readFileSync(jsonOut, 'utf8')) as { sections: Section[] };
      for (const s of j.sections) m.set(s.id, s);
    } catch {
      // unreadable (or being written): keep what this run measured
    }
    return m;
  };
  const fresh = new Map<string, Section>();
  const write = (): void => {
    const kept = previous();
    const sections = order.flatMap((b) => {
      const s = fresh.get(b.id) ?? kept.get(b.id);
      return s ? [s] : [];
    });
    const durationS = (performance.now() - t0) / 1000;
    // Written whole then renamed, so a concurrent invocation never reads half a file.
    const atomic = (file: string, text: string): void => {
      writeFileSync(`${file}.${process.pid}.tmp`, text);
      renameSync(`${file}.${process.pid}.tmp`, file);
    };
    atomic(out, renderResults(machine, sections, { command, quick: o.quick, durationS }));
    atomic(jsonOut, `${JSON.stringify({ machine, command, sections }, null, 1)}\n`);
  };
  for (const b of o.benches) {
    const args = o.quick ? b.quickArgs : b.args;
    process.stderr.write(`\n=== ${b.id}: node ${[...(b.nodeArgs ?? []), b.file, ...args].join(' ')}\n`);
    if (b.optional && !existsSync(`${ROOT}${b.file}`)) {
      process.stderr.write(`=== ${b.id}: skipped (${b.file} not there)\n`);
      continue;
    }
    const measuredAt = new Date().toISOString();
    const loadAtStart = Math.round((loadavg()[0] ?? 0) * 100) / 100;
    // The machine's load while it runs, and how much of it was the benchmark: its process tree's CPU
    // (children's times reach this process once waited for) against all CPUs' busy time.
    const childrenCpu = (): number => cpuSeconds(process.pid, true) - cpuSeconds(process.pid);
    const m0 = machineTicks();
    const own0 = childrenCpu();
    const r = await runChild(b, args);
    const m1 = machineTicks();
    const dt = m1.total - m0.total;
    const busy = dt > 0 ? (m1.busy - m0.busy) / dt : 0;
    const ownTicks = (childrenCpu() - own0) * CLK_TCK;
    const s: Section = {
      ...toSection(b, args, r),
      measuredAt,
      loadAtStart,
      machineBusyPct: Math.round(busy * 1000) / 10,
      ownCpuPct: dt > 0 ? Math.round(Math.min(1, Math.max(0, ownTicks / dt)) * 1000) / 10 : 0,
    };
    fresh.set(b.id, s);
    process.stderr.write(
      `=== ${b.id}: ${s.error ? `FAILED (${s.error.split('\n')[0]})` : 'ok'} in ${Math.round(r.seconds)} s\n`,
    );
    // Write after every benchmark so an interrupted run still leaves what it measured.
    write();
  }
  const failed = [...fresh.values()].filter((s) => s.error).map((s) => s.id);
  process.stderr.write(
    `\nwrote ${out}: ${fresh.size} benchmark(s) in series in ${Math.round((performance.now() - t0) / 1000)} s${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}\n`,
  );
  return { failed };
}

if (import.meta.main) await main();
