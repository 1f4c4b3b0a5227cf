// The report of benchmarks/suite/node-exporter.ts: its tables (scrape latency and CPU per cycle, CPU by
// thread, the --profile breakdown), the like-for-like target and the notes, from the runs' results. The
// suite file runs the paired scrapes; this file only turns what they measured into RESULTS.md's section.
import type { ProfileSummary } from './cpuprofile.ts';
import type { Table, Target } from './results.ts';
import { fmt, int, median, quantile } from './stats.ts';

/** One process (node_exporter or a podnet variant) over one window. */
export interface Side {
  scrapeMs: number[];
  bytes: number;
  lines: number;
  /** CPU seconds over the window from the process CPU clock (ns). */
  cpuS: number;
  /** The same from /proc/<pid>/stat (10 ms ticks), the cross-check. */
  ticksS: number;
  /** CPU seconds by thread name (threads alive over the whole window). */
  byThread: Record<string, number>;
  rssMb: number;
}
/** One podnet variant in one configuration, with node_exporter over the same window. */
export interface Result {
  config: string;
  id: string;
  variant: string;
  entities: number;
  ne: Side;
  podnet: Side;
  scrapes: number;
  wall: number;
  machineBusyPct: number;
}

export interface ReportInput {
  results: readonly Result[];
  /** More than one podnet variant ran (a variant column is shown). */
  multi: boolean;
  /** The variant judged by the target (the last --variant). */
  judgedVariant: string;
  /** --quick: no verdict. */
  quick: boolean;
  /** `prometheus-node-exporter --version`, first line. */
  neVersion: string;
  /** The --profile run's summary and its cycles, when it ran. */
  profile?: ProfileSummary | undefined;
  profiledCycles?: number;
}

const per = (s: Side, n: number) => (s.cpuS * 1000) / n;
const perTicks = (s: Side, n: number) => (s.ticksS * 1000) / n;
// node_exporter's CPU is > 0 in every result (checked in the run).
const ratio = (r: Result) => per(r.podnet, r.scrapes) / per(r.ne, r.scrapes);
const ratioText = (r: Result) => fmt(ratio(r), 2);

export function nodeExporterReport(i: ReportInput): { tables: Table[]; targets: Target[]; notes: string[] } {
  const { results, multi } = i;
  const table: Table = {
    headers: [
      'podnet configuration',
      ...(multi ? ['variant'] : []),
      'entities',
      'scrape ms median (p95): node_exporter',
      'podnet',
      'latency ratio podnet / node_exporter',
      'CPU ms per scrape cycle: node_exporter',
      'podnet',
      'CPU ratio',
      'CPU ms per cycle from 10 ms ticks (cross-check): node_exporter',
      'podnet',
      'samples: node_exporter',
      'podnet',
      'RSS MB: node_exporter',
      'podnet',
      'machine busy %',
    ],
    rows: results.map((r) => [
      r.config,
      ...(multi ? [r.variant] : []),
      int(r.entities),
      `${fmt(median(r.ne.scrapeMs), 2)} (${fmt(quantile(r.ne.scrapeMs, 0.95), 2)})`,
      `${fmt(median(r.podnet.scrapeMs), 2)} (${fmt(quantile(r.podnet.scrapeMs, 0.95), 2)})`,
      fmt(median(r.podnet.scrapeMs) / median(r.ne.scrapeMs), 2),
      fmt(per(r.ne, r.scrapes), 2),
      fmt(per(r.podnet, r.scrapes), 2),
      ratioText(r),
      fmt(perTicks(r.ne, r.scrapes), 2),
      fmt(perTicks(r.podnet, r.scrapes), 2),
      int(r.ne.lines),
      int(r.podnet.lines),
      fmt(r.ne.rssMb, 0),
      fmt(r.podnet.rssMb, 0),
      fmt(r.machineBusyPct, 0),
    ]),
  };
  const tables: Table[] = [table];
  // Where each process's CPU goes by thread (comm, trailing digits dropped): podnet's main thread runs the
  // JavaScript; V8Worker is V8's compiler and GC helpers, libuv-worker the thread pool.
  // Threads that used ≥ 0.01 ms per cycle somewhere (node's signal and delayed-task threads sleep).
  const threadNames = [
    ...new Set(
      results.flatMap((r) =>
        Object.entries(r.podnet.byThread)
          .filter(([, cpuS]) => (cpuS * 1000) / r.scrapes >= 0.01)
          .map(([t]) => t),
      ),
    ),
  ].sort();
  if (results.length)
    tables.push({
      title:
        'podnet CPU ms per cycle by thread (threads alive over the whole window; MainThread runs the JavaScript, V8Worker is V8’s compiler and garbage-collector helpers)',
      headers: ['podnet configuration', ...(multi ? ['variant'] : []), ...threadNames],
      rows: results.map((r) => [
        r.config,
        ...(multi ? [r.variant] : []),
        ...threadNames.map((t) => fmt(((r.podnet.byThread[t] ?? 0) * 1000) / r.scrapes, 2)),
      ]),
    });
  if (i.profile) {
    const profile = i.profile;
    const cycles = i.profiledCycles ?? 0;
    const pc = (ms: number) => fmt(ms / Math.max(1, cycles), 2);
    tables.push(
      {
        title: `Where podnet's CPU goes, like-for-like (node --cpu-prof over ${cycles} cycles, self time, ${pc(profile.totalMs)} ms sampled per cycle; the profiler's own cost is not in it): by area`,
        headers: ['area', 'ms per cycle', 'share'],
        rows: profile.areas.map(([a, ms, sh]) => [a, pc(ms), `${fmt(sh * 100, 1)} %`]),
      },
      {
        title: 'by function (top 20)',
        headers: ['function', 'area', 'ms per cycle', 'share'],
        rows: profile.functions.map(([f, a, ms, sh]) => [f, a, pc(ms), `${fmt(sh * 100, 1)} %`]),
      },
    );
  }
  const judged = results.find((r) => r.id === 'like' && r.variant === i.judgedVariant);
  const targets: Target[] = [
    {
      name: 'CPU per host scrape vs node_exporter (like-for-like)',
      target: '≤ 1.0× node_exporter (CPU per scrape cycle, same window)',
      measured: judged
        ? `${ratioText(judged)}× (${fmt(per(judged.podnet, judged.scrapes), 2)} vs ${fmt(per(judged.ne, judged.scrapes), 2)} ms per cycle, ${judged.scrapes} cycles)`
        : 'not run',
      met: judged && !i.quick ? ratio(judged) <= 1.0 : null,
    },
  ];
  const notes: string[] = [];
  const host = results.find((r) => r.id === 'default' && r.variant === i.judgedVariant);
  const plus = results.find((r) => r.id === 'netns' && r.variant === i.judgedVariant);
  if (host && plus) {
    const dn = plus.entities - host.entities;
    notes.push(
      `Cost per extra netns (default probes, ${host.entities} → ${plus.entities} entities): ${fmt((per(plus.podnet, plus.scrapes) - per(host.podnet, host.scrapes)) / dn, 3)} ms CPU per cycle, ${fmt((median(plus.podnet.scrapeMs) - median(host.podnet.scrapeMs)) / dn, 3)} ms scrape latency, ${fmt((plus.podnet.lines - host.podnet.lines) / dn, 0)} samples, ${fmt(((plus.podnet.rssMb - host.podnet.rssMb) * 1024) / dn, 0)} KB RSS. node_exporter has no per-pod view at all (its collectors read the host netns only).`,
    );
  }
  notes.push(
    `node_exporter: ${i.neVersion}, \`--collector.disable-defaults --collector.netdev --collector.netstat --collector.sockstat\`. CPU = each process's CPU clock over the window (clock_gettime of clock_getcpuclockid(pid): ns, every thread including exited ones; benchmarks/lib/cpu-clock.ts) divided by the scrapes; the run fails when it disagrees with utime + stime of /proc/<pid>/stat (10 ms ticks, its own column) by more than two ticks.`,
  );
  return { tables, targets, notes };
}
