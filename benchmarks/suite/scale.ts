// Scale: podnet with the default probes over 10, 100 and 1,000 test-created network namespaces (each with
// lo up and a veth pair eth0/peer0, as a pod netns has an eth0), at the real collection interval (15 s).
// One podnet process per size, run as `npm start` runs it (benchmarks/lib/podnet-child: the Agent of `podnet run`, entities = host
// + the test's netns, discovered by the registry's /run/netns scan every interval). Exporting to the
// counting OTLP sink (metrics every interval).
//
// Reported per size: series, collection wall time per probe and in total (podnet's /status), podnet CPU
// per interval and as % of one core (over whole intervals, so it includes everything podnet does: timers,
// ring readers, discovery, export), RSS, OTLP metrics payload per interval, /metrics scrape.
//
//   node benchmarks/suite/scale.ts [--sizes 10,100,1000] [--interval 15s] [--intervals 4] [--quick] [--help]
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cli } from '../lib/cli.ts';
import { type ProfileSummary, summarizeProfile } from '../lib/cpuprofile.ts';
import { startSink } from '../lib/otlp-sink.ts';
import type { PodnetOptions, PodnetProc } from '../lib/podnet.ts';
import { CpuWindow, peakRssBytes, rssBytes } from '../lib/proc.ts';
import { emitSection, type Table, type Target } from '../lib/results.ts';
import { fmt, int, sleep } from '../lib/stats.ts';
import { parseVariant } from '../lib/variant.ts';

const USAGE = `usage: node benchmarks/suite/scale.ts [options]
  --sizes LIST        netns counts, one podnet run per size (default 10,100,1000; --quick 2,5)
  --interval Ns       podnet's collection_interval (default 15s; --quick 1s)
  --intervals N       whole collection intervals measured (default 4; --quick 1)
  --warmup N          collections after the start-up one before the window (default 4, --quick 1:
                      V8's compiles settle by then; their CPU is reported in a column of its own)
  --profile           one more run at the largest size under node --cpu-prof (default without --quick);
  --no-profile        none (e.g. for an A/B of runtime settings)
  --prefix NAME       name prefix of the netns this run creates (default pnk<pid>s)
  --keep-profile DIR  copy the profiling run's .cpuprofile into DIR (with the window's start and end, µs)
  --variant NAME=ROOT[;env:K=V][;node:FLAG]...
                      run podnet in several variants at each size, one after another over the same
                      netns (ROOT = a checkout of podnet, . = this one); repeatable
  --child-stdout DIR  keep each podnet's stdout in DIR/<variant>-<netns>.log (e.g. with node:--trace-deopt)
  --quick             a short smoke run (no target verdict)
  --help`;
const options = {
  sizes: { type: 'string' },
  interval: { type: 'string' },
  intervals: { type: 'string' },
  /** Collections after the start-up one before the window opens (default 1). */
  warmup: { type: 'string' },
  quick: { type: 'boolean', default: false },
  /** One more run at the largest size under `node --cpu-prof`: where the time goes. */
  profile: { type: 'boolean' },
  /** Name prefix of the netns this run creates (default pnk<pid>s). */
  prefix: { type: 'string' },
  /** Keep the profiling run's .cpuprofile (copied into DIR, named after the variant and the window). */
  'keep-profile': { type: 'string' },
  /**
   * Run podnet in several variants at each size, one after another over the same netns:
   * NAME=ROOT[;env:K=V][;node:FLAG]... (ROOT = a checkout of podnet, e.g. a git worktree of a baseline;
   * `.` = this one). Default: one variant, this checkout as it is.
   */
  variant: { type: 'string', multiple: true },
  /** Keep each podnet's stdout (V8 traces asked with node:--trace-* flags) in DIR/<variant>-<netns>.log. */
  'child-stdout': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;
// allowNegative: --no-profile
const o = cli(() => parseArgs({ options, allowNegative: true }), USAGE);
const sizes = (o.sizes ?? (o.quick ? '2,5' : '10,100,1000')).split(',').map(Number);
const intervalS = Number((o.interval ?? (o.quick ? '1s' : '15s')).replace(/s$/, ''));
// Four by default: at 1,000 netns an interval's CPU depends on whether one of V8's Mark-Compacts (~90 ms
// there) falls in it, and over two intervals the same code read 230 and 370 ms per interval in one quiet
// run (2026-12-08 01:10-01:21, load under 1; base/now copies, --sizes 1000 --intervals 2): a longer window
// averages over more of them.
const intervals = Number(o.intervals ?? (o.quick ? 1 : 4));
const warmup = Number(o.warmup ?? (o.quick ? 1 : 4));
if (!Number.isInteger(warmup) || warmup < 1) {
  console.error(`--warmup: a whole number >= 1, not ${o.warmup}\n${USAGE}`);
  process.exit(2);
}
const started = performance.now();
const HERE = new URL('../../', import.meta.url).pathname;

interface Variant {
  name: string;
  root: string;
  env: Record<string, string>;
  nodeArgs: string[];
  start: (o: PodnetOptions) => Promise<PodnetProc>;
}
const variants: Variant[] = [];
for (const spec of o.variant ?? ['podnet=.']) {
  const { name, root, env, nodeArgs } = parseVariant(spec, HERE);
  // The variant's own benchmarks/lib/podnet.ts starts its own podnet-child.ts (and so its own receiver).
  const lib = (await import(`${root}benchmarks/lib/podnet.ts`)) as {
    startPodnet: (o: PodnetOptions) => Promise<PodnetProc>;
  };
  variants.push({ name, root, env, nodeArgs, start: lib.startPodnet });
}
const prefix = o.prefix ?? `pnk${process.pid}s`;

function batch(lines: string[]): void {
  if (lines.length === 0) return;
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
}

let created = 0;
function grow(n: number): void {
  const names = Array.from({ length: n - created }, (_, k) => `${prefix}${created + k}`);
  if (names.length === 0) return;
  batch(names.map((ns) => `netns add ${ns}`));
  // Inside each netns: lo up and an eth0/peer0 veth pair, up (so it has qdiscs, as a pod's eth0).
  const dir = mkdtempSync(join(tmpdir(), 'pnk-scale-'));
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
  created = n;
}

interface Row {
  variant: string;
  /** Mean and largest RSS over the measured window (sampled once a second). */
  rssMeanMb: number;
  rssMaxInWindowMb: number;
  netns: number;
  otlpRequestsPerInterval: number;
  entities: number;
  series: number;
  collectionMs: number;
  slowest: string;
  cpuMsPerInterval: number;
  /** CPU per interval over the warm-up collections before the window (JIT compiles settle there). */
  warmCpuMsPerInterval: number;
  cpuPctOfCore: number;
  rssMb: number;
  peakRssMb: number;
  otlpBytesPerInterval: number;
  otlpPointsPerInterval: number;
  scrapeMs: number;
  scrapeBytes: number;
  machineBusyPct: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  collectionOverInterval: boolean;
  anonMb: number;
  fileMb: number;
  shmemMb: number;
  /** podnet CPU per /status?entities=0 poll (80 after the window; anything else it did then too). */
  statusPollMs: number;
  /** The window's polls (once a second from 2 s before its expected end) as a share of its CPU, from `statusPollMs`: an upper bound. */
  statusPollSharePct: number;
  /** What polling the full /status once a second through the window (as before) would take: for comparison. */
  statusFullPollMs: number;
  statusFullPollSharePct: number;
}

/** RSS parts of a process (/proc/<pid>/status: RssAnon, RssFile, RssShmem), in MB. */
function rssParts(pid: number): { anonMb: number; fileMb: number; shmemMb: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st)?.[1] ?? 0) / 1024;
  return { anonMb: mb('RssAnon'), fileMb: mb('RssFile'), shmemMb: mb('RssShmem') };
}

const sink = await startSink();
const rows: Row[] = [];
let command = '';
const doProfile = o.profile ?? !o.quick;
const profDir = mkdtempSync(join(tmpdir(), 'pnk-prof-'));
const profiles: Array<[string, ProfileSummary]> = [];
/** Profile areas that are export work (OTLP serialization and sending, /metrics-independent). */
const EXPORT_AREAS =
  /otlp-transformer|otlp-exporter-base|exporter-metrics-otlp|sdk-metrics|podnet receiver\/otel/;
const largest = Math.max(...sizes);
try {
  const runs: Array<[number, Variant]> = [];
  for (const n of sizes) for (const v of variants) runs.push([n, v]);
  if (doProfile) for (const v of variants) runs.push([-largest, v]);
  for (const [runSize, variant] of runs) {
    const profiling = runSize < 0;
    const n = Math.abs(runSize);
    const t0 = performance.now();
    grow(n);
    console.log(
      `# ${n} netns ready in ${Math.round(performance.now() - t0)} ms; variant ${variant.name}${profiling ? ' (profiling run)' : ''}`,
    );
    const nodeArgs = [...variant.nodeArgs, ...(profiling ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])];
    const podnet = await variant.start({
      // as the checkout's `npm start` runs it (its node flags, its compiled dist/: lib/as-started.ts), so
      // the figures are those of what ships
      asStarted: true,
      ...(nodeArgs.length ? { nodeArgs } : {}),
      ...(Object.keys(variant.env).length ? { env: variant.env } : {}),
      config: {
        collection_interval: `${intervalS}s`,
        cardinality_limit: 1_000_000,
        exporters: {
          otlp: { enabled: true, endpoint: sink.endpoint, protocol: 'http/protobuf', logs: false },
        },
      },
      netnsPrefix: prefix,
      ...(o['child-stdout'] ? { stdoutFile: join(o['child-stdout'], `${variant.name}-${runSize}.log`) } : {}),
      collections: 1,
      startTimeoutMs: 300_000,
    });
    command ||= podnet.command;
    try {
      // Skip the first (start-up) interval and `warmup` - 1 more, then measure whole intervals aligned
      // on collections.
      const firstCollections = await podnet.collections();
      // The warm-up's own CPU per interval, reported apart: V8 compiles most of the collection and export
      // code over the first intervals (benchmarks/lib/v8-trace.ts: 90-105 ms of compile an interval in
      // intervals 2-4 at 1,000 netns, 4-18 ms from the 5th on), a one-off that the window must not count
      // as the agent's running cost, nor hide.
      const warm = new CpuWindow([podnet.pid]).start();
      while ((await podnet.collections()) < firstCollections + warmup) await sleep(50);
      const warmCpuMsPerInterval = ((warm.stop().cpu[0] ?? 0) * 1000) / warmup;
      await sink.reset();
      const c0 = await podnet.collections();
      const usNow = (): number => Number(process.hrtime.bigint() / 1000n);
      const from = usNow();
      const win = new CpuWindow([podnet.pid]).start();
      // The window ends with the collection that brings the count to c0 + intervals. Each collection starts
      // intervalS after the previous one ended, so that cannot happen before intervals × intervalS s: the
      // count is polled (once a second) only from 2 s before, and without the entity list
      // (/status?entities=0). Polled all through the window, the full /status (every entity listed) was
      // ~3 % of the window's CPU at 1,000 netns; the «full /status» column shows what it would cost.
      // RSS (from /proc, no request to podnet) sampled every second: one reading at the end would land
      // anywhere in the collection cycle.
      const pollFrom = from + (intervals * intervalS - 2) * 1e6;
      const rssSamples: number[] = [];
      let polls = 0;
      for (;;) {
        if (usNow() >= pollFrom) {
          polls++;
          if ((await podnet.collections()) >= c0 + intervals) break;
        }
        rssSamples.push(rssBytes(podnet.pid) / 2 ** 20);
        await sleep(1000);
      }
      const w = win.stop();
      const to = usNow(); // the profile's window: not the poll measurements below
      // What that polling cost, and for comparison the full /status: podnet's CPU over 4 × 20 polls of each,
      // alternated, once the export that follows the window's last collection is done (measured right
      // after the window, 10 polls in a row also counted that export). CPU is read in clock ticks (10 ms):
      // 80 polls make it ~0.1 ms per poll.
      await sleep(3000);
      const pollCpuMs = { lean: 0, full: 0 };
      for (let round = 0; round < 4; round++)
        for (const kind of round % 2 ? (['full', 'lean'] as const) : (['lean', 'full'] as const)) {
          const cw = new CpuWindow([podnet.pid]).start();
          for (let i = 0; i < 20; i++) await (kind === 'lean' ? podnet.collections() : podnet.status());
          pollCpuMs[kind] += (cw.stop().cpu[0] ?? 0) * 1000;
        }
      const statusPollMs = pollCpuMs.lean / 80;
      const statusFullPollMs = pollCpuMs.full / 80;
      if (profiling) {
        await podnet.stop();
        const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
        if (file) {
          const prof = summarizeProfile(join(profDir, file), 15, [from, to]);
          profiles.push([variant.name, prof]);
          if (o['keep-profile'])
            copyFileSync(
              join(profDir, file),
              join(o['keep-profile'], `${variant.name}-${from}-${to}.cpuprofile`),
            );
          rmSync(join(profDir, file));
          const exportAreas = prof.areas.filter(([a]) => EXPORT_AREAS.test(a));
          const exportMs = exportAreas.reduce((t, [, ms]) => t + ms, 0);
          console.log(
            JSON.stringify({
              variant: variant.name,
              profiledCpuMs: prof.totalMs,
              exportCpuMsPerInterval: exportMs / intervals,
              exportAreas: exportAreas.map(([a, ms]) => [a, Math.round(ms / intervals)]),
              top: prof.areas.slice(0, 12).map(([a, ms]) => [a, Math.round(ms)]),
            }),
          );
        }
        continue;
      }
      const st = await podnet.status();
      const sk = await sink.counts();
      // biome-ignore lint/suspicious/noExplicitAny: /status JSON.
      const probes = (st.probes as any[]).filter((p) => p.enabled && p.lastCollection);
      const total = probes.reduce((s, p) => s + (p.lastCollection.durationMs as number), 0);
      const slow = [...probes]
        .sort((a, b) => b.lastCollection.durationMs - a.lastCollection.durationMs)
        .slice(0, 3);
      // podnet answers SIGUSR2 from its event loop: on a saturated machine a long collection can hold it.
      const mem = await podnet
        .memoryUsage()
        .catch(() => ({ heapUsed: Number.NaN, heapTotal: Number.NaN, external: Number.NaN }));
      const scrape = await podnet.metrics();
      // Per interval of the measured window (one export of a collection may be several requests).
      const perInterval = w.wall / intervalS;
      const row: Row = {
        variant: variant.name,
        netns: n,
        entities: (st.entities as unknown[]).length,
        series: st.metrics.series,
        collectionMs: total,
        slowest: slow.map((p) => `${p.name} ${fmt(p.lastCollection.durationMs, 0)}`).join(', '),
        cpuMsPerInterval: ((w.cpu[0] ?? 0) * 1000) / intervals,
        warmCpuMsPerInterval,
        cpuPctOfCore: ((w.cpu[0] ?? 0) / w.wall) * 100,
        rssMb: rssBytes(podnet.pid) / 2 ** 20,
        peakRssMb: peakRssBytes(podnet.pid) / 2 ** 20,
        rssMeanMb: rssSamples.reduce((a, b) => a + b, 0) / Math.max(1, rssSamples.length),
        rssMaxInWindowMb: Math.max(0, ...rssSamples),
        otlpBytesPerInterval: sk.metrics.rawBytes / perInterval,
        otlpPointsPerInterval: sk.metrics.items / perInterval,
        otlpRequestsPerInterval: sk.metrics.requests / perInterval,
        scrapeMs: scrape.ms,
        scrapeBytes: scrape.text.length,
        machineBusyPct: w.machineBusy * 100,
        statusPollMs,
        statusPollSharePct: ((statusPollMs * polls) / Math.max(1, (w.cpu[0] ?? 0) * 1000)) * 100,
        statusFullPollMs,
        statusFullPollSharePct:
          ((statusFullPollMs * (rssSamples.length + 1)) / Math.max(1, (w.cpu[0] ?? 0) * 1000)) * 100,
        heapUsedMb: mem.heapUsed / 2 ** 20,
        heapTotalMb: mem.heapTotal / 2 ** 20,
        externalMb: mem.external / 2 ** 20,
        collectionOverInterval: total > intervalS * 1000,
        ...rssParts(podnet.pid),
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    } finally {
      await podnet.stop();
    }
  }
} finally {
  rmSync(profDir, { recursive: true, force: true });
  await sink.stop();
  batch(Array.from({ length: created }, (_, i) => `netns del ${prefix}${i}`));
}

const table: Table = {
  headers: [
    ...(variants.length > 1 ? ['variant'] : []),
    'netns',
    'entities',
    'series',
    'collection wall ms (sum of probes)',
    'slowest probes, ms',
    `CPU ms per ${intervalS} s interval`,
    '% of a core',
    `warm-up before the window: CPU ms per interval (${warmup} intervals)`,
    'RSS MB at the end (peak)',
    'RSS MB over the window: mean, max',
    'RSS anon / file / shmem MB',
    'V8 heap used / total MB, external MB',
    'OTLP metrics KB per interval',
    'data points per interval',
    '/metrics scrape ms (MB)',
    '/status?entities=0 ms CPU per poll (polls’ share of the window’s CPU, at most)',
    'full /status once a second through the window (before): ms CPU per poll (share)',
    'machine busy %',
  ],
  rows: rows.map((r) => [
    ...(variants.length > 1 ? [r.variant] : []),
    int(r.netns),
    int(r.entities),
    int(r.series),
    fmt(r.collectionMs, 0),
    r.slowest,
    fmt(r.cpuMsPerInterval, 0),
    fmt(r.cpuPctOfCore, 2),
    fmt(r.warmCpuMsPerInterval, 0),
    `${fmt(r.rssMb, 0)} (${fmt(r.peakRssMb, 0)})`,
    `${fmt(r.rssMeanMb, 0)}, ${fmt(r.rssMaxInWindowMb, 0)}`,
    `${fmt(r.anonMb, 0)} / ${fmt(r.fileMb, 0)} / ${fmt(r.shmemMb, 0)}`,
    `${fmt(r.heapUsedMb, 0)} / ${fmt(r.heapTotalMb, 0)}, ${fmt(r.externalMb, 0)}`,
    fmt(r.otlpBytesPerInterval / 1024, 0),
    int(r.otlpPointsPerInterval),
    `${fmt(r.scrapeMs, 0)} (${fmt(r.scrapeBytes / 2 ** 20, 1)})`,
    `${fmt(r.statusPollMs, 1)} (${fmt(r.statusPollSharePct, 1)} %)`,
    `${fmt(r.statusFullPollMs, 1)} (${fmt(r.statusFullPollSharePct, 1)} %)`,
    fmt(r.machineBusyPct),
  ]),
};
const profileTables: Table[] = profiles.flatMap(([name, profile]) => [
  {
    title: `Where podnet's CPU goes at ${int(largest)} netns${variants.length > 1 ? ` (${name})` : ''} (node --cpu-prof over ${intervals} intervals, self time, ${fmt(profile.totalMs / 1000, 2)} s of CPU sampled): by area`,
    headers: ['area', 'ms', 'share'],
    rows: profile.areas.map(([a, ms, sh]) => [a, fmt(ms, 0), `${fmt(sh * 100, 1)} %`]),
  },
  {
    title: 'by function (top 15)',
    headers: ['function', 'area', 'ms', 'share'],
    rows: profile.functions.map(([f, a, ms, sh]) => [f, a, fmt(ms, 0), `${fmt(sh * 100, 1)} %`]),
  },
]);
// Targets and per-netns costs: of the last variant listed (the one under test; earlier ones are baselines).
const judged = rows.filter((r) => r.variant === variants.at(-1)!.name);
const big = judged.find((r) => r.netns >= 1000);
const targets: Target[] = [
  {
    name: '1,000 netns: memory',
    target: 'RSS < 150 MB',
    measured: big ? `${fmt(big.rssMb, 0)} MB (peak ${fmt(big.peakRssMb, 0)} MB)` : 'not run at 1,000',
    met: big && intervalS === 15 ? big.peakRssMb < 150 : null,
  },
  {
    name: '1,000 netns: CPU at a 15 s interval',
    target: '< 2 % of a core',
    measured: big
      ? `${fmt(big.cpuPctOfCore, 2)} % (${fmt(big.cpuMsPerInterval, 0)} ms per interval)`
      : 'not run at 1,000',
    met: big && intervalS === 15 ? big.cpuPctOfCore < 2 : null,
  },
];
// Cost per extra netns between the two largest sizes.
const notes: string[] = [];
for (const r of rows.filter((x) => x.collectionOverInterval))
  notes.push(
    `At ${int(r.netns)} netns one collection (${fmt(r.collectionMs / 1000, 1)} s of wall time, probes one after another) is longer than the ${intervalS} s interval; the agent starts the next collection ${intervalS} s after the previous one ends, so the real period is about ${fmt(r.collectionMs / 1000 + intervalS, 0)} s and the CPU share above is over that period (per ${intervalS} s it would be ${fmt((r.cpuMsPerInterval / (intervalS * 1000)) * 100, 1)} %).`,
  );
if (judged.length >= 2) {
  const a = judged.at(-2)!;
  const b = judged.at(-1)!;
  const dn = b.netns - a.netns;
  notes.push(
    `Per extra netns (from ${a.netns} to ${b.netns}): ${fmt((b.cpuMsPerInterval - a.cpuMsPerInterval) / dn, 2)} ms CPU per interval, ${fmt(((b.rssMb - a.rssMb) * 1024) / dn, 0)} KB RSS, ${fmt((b.series - a.series) / dn, 0)} series, ${fmt((b.otlpBytesPerInterval - a.otlpBytesPerInterval) / dn / 1024, 1)} KB OTLP per interval.`,
  );
}
emitSection({
  id: 'scale',
  title: 'Scale: 10, 100, 1,000 network namespaces',
  commands: [
    `node benchmarks/suite/scale.ts --sizes ${sizes.join(',')} --interval ${intervalS}s --intervals ${intervals}`,
  ],
  method: [
    `Netns \`${prefix.replace(/\d+s$/, '<pid>s')}<i>\` created with \`ip -batch\` (lo, eth0/peer0 veth pair, all up). podnet = \`${command || 'node benchmarks/lib/podnet-child.ts --config FILE --netns-prefix P'}\`: the Agent of \`podnet run\` with the default probes and OTLP/HTTP metrics export to the counting sink, entities restricted to host + these netns (other tests on this machine create netns too).`,
    `After the start-up collection and ${warmup === 1 ? 'one more' : `${warmup} more`}, CPU (utime + stime) is measured over ${intervals} whole collection intervals of ${intervalS} s (the warm-up intervals' CPU is its own column: V8 compiles most of the collection and export code over the first intervals, \`benchmarks/lib/v8-trace.ts\` on a \`--child-stdout\` run counts it); collection wall time = sum of each probe's last \`durationMs\` (/status; probes run one after another). The collection count is polled once a second from 2 s before the window's earliest possible end (intervals × interval: each collection starts an interval after the previous one ended), from \`/status?entities=0\` (the full /status lists every entity: at 1,000 netns, polled once a second through the window, it was ~3 % of the window's CPU): the poll's cost is measured after the window (podnet's CPU over 80 polls, in blocks of 20 alternated with the full /status, 3 s after the window's last collection; it also counts anything else podnet did meanwhile) and given as a share of the window's CPU, an upper bound of how much the polling adds to the CPU column; the full /status is measured the same way, and its share is given for a poll every second of the window, as this benchmark polled it before.`,
    'Pods at this scale are not practical here (a containerd shim is ~8 MB PSS per pod); netns carry the same per-netns collection work (procfs per netns, netlink dumps per netns, BPF maps keyed by netns inode). The CRI discovery cost per pod is in benchmarks/pods/refresh.ts below.',
  ],
  tables: [table, ...profileTables],
  targets,
  notes,
  durationS: (performance.now() - started) / 1000,
  data: rows,
});
