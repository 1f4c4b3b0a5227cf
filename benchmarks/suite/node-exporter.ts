// Versus node_exporter (Debian prometheus-node-exporter, the exporter operators run today): scrape
// latency and CPU of its netdev/netstat/sockstat collectors against podnet's /metrics for the host netns,
// and podnet's cost per extra netns. Both are scraped alternately once per interval (as Prometheus would,
// node_exporter then podnet) for the whole window; podnet's collection_interval = the scrape interval.
//
// Fair comparison: node_exporter collects at scrape time, podnet on its own timer (every interval, scraped
// or not) and serves the latest collection; with one scrape per interval each process does one collection
// and one render per cycle, so "CPU per scrape cycle" is everything each process spent per cycle (its
// collection, render, HTTP, runtime, GC, every thread): the process CPU clock in ns over the window
// (benchmarks/lib/cpu-clock.ts: why that clock, and its cross-check against /proc/<pid>/stat's 10 ms
// ticks, which alone would read ±0.33 ms per cycle over 30 cycles; a disagreement fails the run). Both
// are warmed up (scraped) for --warmup seconds before the window (podnet's JIT and start-up GC otherwise
// land in it; node_exporter, a Go binary, has neither), and both are measured over the same window.
// The default warm-up is 120 s: at one cycle a second V8 keeps compiling podnet's per-cycle functions
// for ~100 cycles (`node --trace-opt` on the like-for-like child: 142 functions first optimized between
// cycles 10 and 110), so a 10 s warm-up put part of the JIT's start in the window (its V8Worker thread
// read 1.05 ms per cycle over 30 s there, 0.53–0.64 over 300 s windows after it). The default window is
// 60 s: V8's memory reducer runs one full GC about every 106 s in this configuration (~40 ms with its
// incremental marking); a 60 s window holds one about every second run, as steady state does on average.
//
// podnet configurations (one after another, node_exporter scraped alongside each):
//   like:    like-for-like: host netns only, probes netdev + snmp + sockstat (the same /proc/net files)
//   default: host netns only, the default probes
//   netns:   default probes, host + N test netns (cost per extra pod netns)
// podnet runs as the checkout's `npm start` runs it (benchmarks/lib/as-started.ts: its node flags and its
// compiled dist/, rebuilt first when a source is newer).
// --variant NAME=ROOT[;env:K=V][;node:FLAG]... (benchmarks/lib/variant.ts) runs another podnet checkout (a git worktree of a baseline) in each configuration
// too, at the same time (started together, scraped in turn in each cycle, measured over the same window:
// A/B in one invocation under the same machine load; the variants' order rotates every cycle, so none is
// always the one scraped right after node_exporter); the last variant is the one judged by the target.
// The tables, the target and the notes are built from the results by benchmarks/lib/node-exporter-report.ts.
// --profile adds one run of the like-for-like configuration under node --cpu-prof (where the CPU goes;
// the profiler's own cost makes that run's CPU figure meaningless, so it is not in the table).
//
//   node benchmarks/suite/node-exporter.ts [--seconds 60] [--interval 1s] [--netns 100] [--warmup 120]
//     [--configs like,default,netns] [--variant NAME=ROOT[;node:FLAG]]... [--profile] [--quick] [--help]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { probeSpecs } from '../../probes/registry.ts';
import { PreciseCpuWindow } from '../lib/cpu-clock.ts';
import { type ProfileSummary, summarizeProfile } from '../lib/cpuprofile.ts';
import { finishSection } from '../lib/finish.ts';
import { nodeExporterReport, type Result, type Side } from '../lib/node-exporter-report.ts';
import { freePort, type PodnetOptions, type PodnetProc, startPodnet } from '../lib/podnet.ts';
import { CpuWindow, rssBytes } from '../lib/proc.ts';
import { fmt, median, sleep } from '../lib/stats.ts';
import { describeVariant, parseVariant } from '../lib/variant.ts';

const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';
const { values: o } = parseArgs({
  options: {
    seconds: { type: 'string' },
    interval: { type: 'string' },
    netns: { type: 'string' },
    warmup: { type: 'string' },
    configs: { type: 'string' },
    variant: { type: 'string', multiple: true },
    profile: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (o.help) {
  process.stdout.write(`Usage: node benchmarks/suite/node-exporter.ts [options]
  --seconds N        measured window per configuration (default 60; --quick 2)
  --interval Ns      scrape interval = podnet's collection_interval (default 1s)
  --netns N          extra test netns of the "netns" configuration (default 100; --quick 3)
  --warmup N         seconds scraped before the window, not measured (default max(120, 5 intervals):
                     the JIT's start at one cycle a second, see the header)
  --configs LIST     of like (netdev + snmp + sockstat, host netns), default, netns (default: all three)
  --variant NAME=DIR[;env:K=V][;node:FLAG]...
                     another podnet checkout (a worktree, built by its scripts/build.sh) run in the same
                     window; repeatable; NAME=. is this one; env:/node: add an environment variable or a
                     node flag after its npm start flags (a runtime-setting A/B); the last variant is
                     judged by the target
  --profile          one more like-for-like run of the last variant under node --cpu-prof
  --quick            a short smoke run (no target verdict)
CPU = each process's CPU clock (ns, all threads, benchmarks/lib/cpu-clock.ts) over the window, per cycle.
`);
  process.exit(0);
}
const seconds = Number(o.seconds ?? (o.quick ? 2 : 60));
const intervalMs = Number((o.interval ?? '1s').replace(/s$/, '')) * 1000;
const extraNetns = Number(o.netns ?? (o.quick ? 3 : 100));
const warmupS = Number(o.warmup ?? (o.quick ? 1 : Math.max(120, (5 * intervalMs) / 1000)));
const only = new Set((o.configs ?? 'like,default,netns').split(','));
for (const c of only)
  if (!['like', 'default', 'netns'].includes(c)) throw new Error(`--configs: unknown configuration ${c}`);
const prefix = `pnk${process.pid}x`;
const started = performance.now();

interface Variant {
  name: string;
  /** env:/node: modifiers of its --variant (benchmarks/lib/variant.ts), for the report. */
  extra: string;
  start: (o: PodnetOptions) => Promise<PodnetProc>;
}
const HERE = new URL('../../', import.meta.url).pathname;
const variants: Variant[] = [];
for (const spec of o.variant ?? ['podnet=.']) {
  const v = parseVariant(spec, HERE);
  // The variant's own benchmarks/lib/podnet.ts starts its own podnet-child.ts (and so its own receiver).
  const start =
    v.root === HERE
      ? startPodnet
      : ((await import(`${v.root}benchmarks/lib/podnet.ts`)) as { startPodnet: typeof startPodnet })
          .startPodnet;
  variants.push({
    name: v.name,
    extra: describeVariant(v),
    start: (opts) =>
      start({
        ...opts,
        ...(v.root === HERE ? {} : { root: v.root }),
        env: { ...v.env, ...opts.env },
        nodeArgs: [...v.nodeArgs, ...(opts.nodeArgs ?? [])],
      }),
  });
}

async function scrape(url: string): Promise<{ ms: number; bytes: number; lines: number; text: string }> {
  const t0 = performance.now();
  const res = await fetch(url);
  const text = await res.text();
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  let lines = 0;
  for (const l of text.split('\n')) if (l && l[0] !== '#') lines++;
  return { ms, bytes: text.length, lines, text };
}

/** A scrape that lacks what the configuration reads means the run measured nothing: fail it. */
function expectFamilies(what: string, text: string, families: readonly string[]): void {
  for (const f of families)
    if (!text.includes(`\n${f}`) && !text.startsWith(f))
      throw new Error(`${what}: no ${f}* series in the scrape: the run would measure nothing`);
}
function makeNetns(n: number): void {
  if (n === 0) return;
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: `${names.map((x) => `netns add ${x}`).join('\n')}\n`,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const dir = mkdtempSync(join(tmpdir(), 'pnk-ne-'));
  try {
    writeFileSync(
      join(dir, 'links'),
      'link set lo up\nlink add eth0 type veth peer name peer0\nlink set eth0 up\nlink set peer0 up\n',
    );
    writeFileSync(join(dir, 'names'), `${names.join('\n')}\n`);
    execFileSync(
      'sh',
      ['-c', `while read n; do ip -n "$n" -batch ${dir}/links || exit 1; done < ${dir}/names`],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const nePort = await freePort();
const ne: ChildProcess = spawn(
  NODE_EXPORTER,
  [
    `--web.listen-address=127.0.0.1:${nePort}`,
    '--collector.disable-defaults',
    '--collector.netdev',
    '--collector.netstat',
    '--collector.sockstat',
  ],
  { stdio: ['ignore', 'ignore', 'ignore'] },
);
const neUrl = `http://127.0.0.1:${nePort}/metrics`;
const results: Result[] = [];
let profile: ProfileSummary | undefined;
let profiledCycles = 0;
/** Each variant's podnet command line (as its `npm start` runs it). */
const commands = new Map<string, string>();
const profDir = mkdtempSync(join(tmpdir(), 'pnk-ne-prof-'));
const neVersion = execFileSync(NODE_EXPORTER, ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
let failure: Error | undefined;
try {
  let up = false;
  for (let i = 0; i < 50 && !up; i++) {
    try {
      await scrape(neUrl);
      up = true;
    } catch {
      await sleep(100);
    }
  }
  if (!up) throw new Error(`node_exporter did not answer on ${neUrl}`);
  if (only.has('netns')) makeNetns(extraNetns);
  const off = Object.fromEntries(probeSpecs.map((s) => [s.name, { enabled: false }]));
  const configs = [
    {
      id: 'like',
      name: 'like-for-like (netdev + snmp + sockstat, host netns)',
      probes: { ...off, netdev: { enabled: true }, snmp: { enabled: true }, sockstat: { enabled: true } },
      netns: false,
      families: ['k8s_node_network_io_bytes_total', 'podnet_snmp_tcp_', 'podnet_sockstat_'],
    },
    {
      id: 'default',
      name: 'default probes, host netns',
      probes: {},
      netns: false,
      families: ['k8s_node_network_io_bytes_total'],
    },
    {
      id: 'netns',
      name: `default probes, host + ${extraNetns} netns`,
      probes: {},
      netns: true,
      families: ['k8s_pod_network_io_bytes_total'],
    },
  ].filter((c) => only.has(c.id));
  // One run per configuration with every variant in it (started together, scraped in turn in the same
  // cycles, measured over the same window: under a changing machine load an A/B of runs one after the
  // other compares two loads), then the profiled run.
  const runs: [(typeof configs)[number], Variant[], boolean][] = configs.map((c) => [c, variants, false]);
  const like = configs.find((c) => c.id === 'like');
  if (o.profile && like) runs.push([like, [variants.at(-1)!], true]);
  for (const [c, vs, profiling] of runs) {
    const started: { variant: Variant; podnet: PodnetProc }[] = [];
    try {
      for (const variant of vs) {
        const podnet = await variant.start({
          config: { collection_interval: `${intervalMs}ms`, cardinality_limit: 1_000_000, probes: c.probes },
          ...(c.netns ? { netnsPrefix: prefix } : { hostOnly: true }),
          collections: o.quick ? 1 : 2,
          // as the checkout's `npm start` runs it (its node flags, its compiled dist/: as-started.ts)
          asStarted: true,
          ...(profiling ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] } : {}),
        });
        started.push({ variant, podnet });
        if (!profiling)
          commands.set(variant.name, `${podnet.command}${variant.extra ? ` + ${variant.extra}` : ''}`);
      }
      const urls = started.map((s) => `${s.podnet.url}/metrics`);
      // Warm-up: all scraped as in the window, not measured.
      const w0 = performance.now();
      do {
        const tick = performance.now();
        await scrape(neUrl);
        for (const u of urls) await scrape(u);
        const left = intervalMs - (performance.now() - tick);
        if (left > 0) await sleep(left);
      } while (performance.now() - w0 < warmupS * 1000);
      const side = (): Side => ({
        scrapeMs: [],
        bytes: 0,
        lines: 0,
        cpuS: 0,
        ticksS: 0,
        byThread: {},
        rssMb: 0,
      });
      const neSide = side();
      const pSides = started.map(side);
      const usNow = (): number => Number(process.hrtime.bigint() / 1000n);
      const from = usNow();
      const pids = [ne.pid!, ...started.map((s) => s.podnet.pid)];
      const machine = new CpuWindow([]).start();
      const win = new PreciseCpuWindow(pids).start();
      const t0 = performance.now();
      let n = 0;
      let lastNe = '';
      const lastP = started.map(() => '');
      while (performance.now() - t0 < seconds * 1000) {
        const tick = performance.now();
        const a = await scrape(neUrl);
        neSide.scrapeMs.push(a.ms);
        neSide.bytes = a.bytes;
        neSide.lines = a.lines;
        lastNe = a.text;
        for (let k = 0; k < urls.length; k++) {
          const i = (k + n) % urls.length;
          const b = await scrape(urls[i]!);
          const ps = pSides[i]!;
          ps.scrapeMs.push(b.ms);
          ps.bytes = b.bytes;
          ps.lines = b.lines;
          lastP[i] = b.text;
        }
        n++;
        const left = intervalMs - (performance.now() - tick);
        if (left > 0) await sleep(left);
      }
      const cpu = win.stop();
      const w = machine.stop();
      const to = usNow();
      expectFamilies('node_exporter', lastNe, [
        'node_netstat_Tcp_',
        'node_sockstat_',
        'node_network_receive_bytes_total',
      ]);
      for (const [i, s] of started.entries())
        expectFamilies(`podnet ${s.variant.name} (${c.name})`, lastP[i]!, c.families);
      if (n === 0) throw new Error(`${c.name}: no scrape in the window`);
      if (profiling) {
        await started[0]!.podnet.stop();
        const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
        if (!file) throw new Error('--profile: podnet wrote no .cpuprofile');
        profile = summarizeProfile(join(profDir, file), 20, [from, to]);
        profiledCycles = n;
        continue;
      }
      const fill = (sd: Side, c: (typeof cpu)[number]): void => {
        sd.cpuS = c.cpuS;
        sd.ticksS = c.ticksS;
        sd.byThread = Object.fromEntries(c.byThread);
      };
      fill(neSide, cpu[0]!);
      if (neSide.cpuS <= 0) throw new Error(`${c.name}: node_exporter used no CPU over ${n} scrapes`);
      neSide.rssMb = rssBytes(ne.pid!) / 2 ** 20;
      for (const [i, s] of started.entries()) {
        const pSide = pSides[i]!;
        fill(pSide, cpu[i + 1]!);
        if (pSide.cpuS <= 0) throw new Error(`${c.name} [${s.variant.name}]: podnet used no CPU`);
        pSide.rssMb = rssBytes(s.podnet.pid) / 2 ** 20;
        const st = await s.podnet.status();
        results.push({
          config: c.name,
          id: c.id,
          variant: s.variant.name,
          entities: (st.entities as unknown[]).length,
          ne: neSide,
          podnet: pSide,
          scrapes: n,
          wall: w.wall,
          machineBusyPct: w.machineBusy * 100,
        });
        // Progress on stderr: stdout carries only the result of a run whose checks all held (finish.ts).
        console.error(
          `${c.name} [${s.variant.name}]: scrape median node_exporter ${fmt(median(neSide.scrapeMs), 2)} ms podnet ${fmt(median(pSide.scrapeMs), 2)} ms; CPU per scrape ${fmt((neSide.cpuS * 1000) / n, 2)} vs ${fmt((pSide.cpuS * 1000) / n, 2)} ms`,
        );
      }
    } finally {
      for (const s of started) await s.podnet.stop();
    }
  }
} catch (err) {
  failure = err as Error;
} finally {
  ne.kill('SIGTERM');
  rmSync(profDir, { recursive: true, force: true });
  if (only.has('netns') && extraNetns > 0)
    execFileSync('ip', ['-force', '-batch', '-'], {
      input: `${Array.from({ length: extraNetns }, (_, i) => `netns del ${prefix}${i}`).join('\n')}\n`,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
}

const multi = variants.length > 1;
const { tables, targets, notes } = nodeExporterReport({
  results,
  multi,
  judgedVariant: variants.at(-1)!.name,
  quick: o.quick,
  neVersion,
  profile,
  profiledCycles,
});
if (failure) console.error(failure);
finishSection(
  {
    id: 'node-exporter',
    title: 'Versus node_exporter: scrape latency and CPU',
    commands: [
      `node benchmarks/suite/node-exporter.ts --seconds ${seconds} --interval ${intervalMs / 1000}s --netns ${extraNetns} --warmup ${warmupS}${o.configs ? ` --configs ${o.configs}` : ''}${o.profile ? ' --profile' : ''}`,
    ],
    method: [
      `Both endpoints scraped alternately (node_exporter, then podnet${multi ? ': each variant, started together, in turn' : ''}) once every ${intervalMs / 1000} s: ${warmupS} s of warm-up, then ${seconds} s measured, per podnet configuration. podnet's collection_interval = ${intervalMs / 1000} s, so each cycle is one podnet collection (on its timer) and one render; node_exporter collects at scrape time: one collection and one render per cycle too.`,
      `podnet runs as its \`npm start\` does (benchmarks/lib/as-started.ts): ${[...commands].map(([v, c]) => `${multi ? `${v}: ` : ''}\`${c.replace(/--config \S+/, '--config …')}\``).join('; ')} (benchmarks/lib/podnet-child: the same Agent as \`podnet run\`, entities restricted to the test's).`,
      'CPU ratio = podnet CPU per cycle / node_exporter CPU per cycle over the same window (both processes run at once, so machine load falls on both).',
      'Latency = wall time of the HTTP GET including reading the body, from this (client) process.',
    ],
    tables,
    targets,
    notes,
    durationS: (performance.now() - started) / 1000,
    data: results,
  },
  failure ? [failure.message] : [],
);
