// The event benchmark's capacity projection (benchmarks/suite/events.ts): how many events/s podnet could
// export on this machine if it had the CPUs to itself, from the CPU each thread spent per event exported.
// The export runs on ONE worker thread (receiver/otel/log-export.ts), which can use at most one core
// whatever the machine has; the main thread (probes, emit, encoding) and V8's helper threads (GC,
// compilation, for both isolates) share the other core(s). So the ceiling is the lower of the worker's
// core and the rest — never the whole process's CPU per event divided into all cores.
import { fmt, int } from './stats.ts';

export interface CapacityRow {
  readonly rate: number;
  readonly sentPerS: number;
  readonly cpuPct: number;
  readonly workerCpuPct: number;
  readonly lostQueueFull: number;
  readonly lostExportFailed: number;
}

export function capacityNote(rows: readonly CapacityRow[], cores: number): string | undefined {
  const busy = rows.filter((r) => r.rate >= 100_000 && r.sentPerS > 0);
  if (!busy.length) return undefined;
  // CPU per event exported (what the queue dropped is cheaper, so per emitted event would flatter the
  // overloaded rates), split into the export worker's and the rest of the process's.
  const per = busy.map((r) => {
    const us = ((r.cpuPct / 100) * 1e6) / r.sentPerS;
    const workerUs = ((r.workerCpuPct / 100) * 1e6) / r.sentPerS;
    return { r, us, workerUs, restUs: us - workerUs };
  });
  const lossless = per.filter((x) => x.r.lostQueueFull + x.r.lostExportFailed === 0);
  const basis = (lossless.length ? lossless : per).reduce((a, b) => (b.workerUs < a.workerUs ? b : a));
  const workerCeiling = 1e6 / basis.workerUs;
  const restCeiling = ((cores - 1) * 1e6) / Math.max(basis.restUs, 1e-9);
  const ceiling = Math.min(workerCeiling, restCeiling);
  const bound =
    workerCeiling <= restCeiling
      ? 'the export worker thread, at 100 % of one core'
      : `the main thread and V8 helper threads on the other ${cores - 1 === 1 ? 'core' : `${cores - 1} cores`}`;
  return `Capacity: at ≥ 100k/s offered podnet spent ${per.map((x) => `${fmt(x.us, 2)} µs (export worker ${fmt(x.workerUs, 2)} µs) at ${int(x.r.rate)}/s`).join(', ')} of CPU per event exported. The export runs on one worker thread, which can use one core at most: at ${fmt(basis.workerUs, 2)} µs of worker CPU per event (${int(basis.r.rate)}/s, ${basis.r.lostQueueFull + basis.r.lostExportFailed ? 'with' : 'no'} loss) it tops out at about ${int(workerCeiling)} exported events/s; the rest of the process (main thread, V8 helpers: ${fmt(basis.restUs, 2)} µs per event) would carry about ${int(restCeiling)}/s on the other ${cores - 1 === 1 ? 'core' : `${cores - 1} cores`}. So with the ${cores} cores to itself podnet would export about ${int(ceiling)} events/s, bound by ${bound} — not ${int((cores * 1e6) / basis.us)}/s (the whole process's CPU spread over ${cores} cores). When the thread CPU % are well below 100 % while exported/s stays below the offered rate, podnet's threads were waiting for a CPU (see machine busy): the cores were shared with other work.`;
}
