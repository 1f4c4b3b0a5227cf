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
import { BENCHES, type Bench } from './lib/entries.ts';
import { failureLines } from './lib/finish.ts';
import { machineInfo } from './lib/machine.ts';
import { CLK_TCK, cpuSeconds, machineTicks } from './lib/proc.ts';
import { parseSection, renderResults, type Section } from './lib/results.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

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

const USAGE = `usage: node benchmarks/run.ts [--quick] [--only ID,ID...] [--out FILE] [--no-merge] [--list]
  --quick     tiny sizes: checks the suite works; numbers not meaningful
  --only      run these benchmarks (ids from --list); the other sections are kept from the previous run
  --out       where RESULTS.md goes (RESULTS.json next to it); default benchmarks/RESULTS.md
  --no-merge  with --only: drop the other sections instead of keeping them
  --list      the benchmark ids, files and titles
`;

async function main(): Promise<void> {
  const parsed = (() => {
    try {
      return parseArgs({ options: OPTIONS, allowNegative: true });
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n${USAGE}`);
      process.exit(2);
    }
  })();
  const o = parsed.values;
  if (o.help) {
    process.stdout.write(USAGE);
    return;
  }
  // `--list | head` closes the pipe early: that is not an error
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  if (o.list) {
    for (const b of BENCHES) process.stdout.write(`${b.id.padEnd(18)} ${b.file}  ${b.title}\n`);
    return;
  }
  await runSelected(o);
}

const OPTIONS = {
  quick: { type: 'boolean', default: false },
  only: { type: 'string' },
  out: { type: 'string', default: 'benchmarks/RESULTS.md' },
  /** With --only: keep the other sections from the previous run (RESULTS.json next to --out). */
  merge: { type: 'boolean', default: true },
  list: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

async function runSelected(o: {
  quick: boolean;
  only?: string | undefined;
  out: string;
  merge: boolean;
}): Promise<void> {
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
