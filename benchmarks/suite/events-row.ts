// One rate's run of benchmarks/suite/events.ts: what it records (Row), the checks it must pass to be
// reported, and the per-thread CPU of the podnet process it measures.
import { readdirSync, readFileSync } from 'node:fs';
import { int } from '../lib/stats.ts';

/** CPU seconds per thread kind of `pid`: MainThread, WorkerThread (the export worker), V8 helpers, rest. */
export function threadCpu(pid: number): Record<'main' | 'worker' | 'v8' | 'other', number> {
  const out = { main: 0, worker: 0, v8: 0, other: 0 };
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const sec = (Number(f[11]) + Number(f[12])) / 100;
      if (Number(tid) === pid) out.main += sec;
      else if (name === 'WorkerThread') out.worker += sec;
      else if (name.startsWith('V8Worker')) out.v8 += sec;
      else out.other += sec;
    } catch {
      // thread gone
    }
  }
  return out;
}

export interface Row {
  podnet: string;
  rate: number;
  seconds: number;
  emittedPerS: number;
  sentPerS: number;
  /** Emitted during the window and neither sent, suppressed nor lost at its end (queued or in flight). */
  pipelineAtEnd: number;
  emitted: number;
  sent: number;
  suppressed: number;
  lostQueueFull: number;
  lostExportFailed: number;
  unaccounted: number;
  sinkReceived: number;
  cpuPct: number;
  mainCpuPct: number;
  workerCpuPct: number;
  v8HelpersCpuPct: number;
  cpuUsPerEvent: number;
  cpuUsPerSent: number;
  rssPeakMb: number;
  rssEndMb: number;
  sinkCpuPct: number;
  machineBusyPct: number;
}

/** The checks a row must pass to be reported (empty: valid). */
export function rowFailures(r: Row): string[] {
  const f: string[] = [];
  if (r.unaccounted !== 0) f.push(`${int(r.unaccounted)} events unaccounted`);
  if (r.sinkReceived !== r.sent) f.push(`sink received ${int(r.sinkReceived)} ≠ sent ${int(r.sent)}`);
  if (r.emitted === 0) f.push('no event emitted');
  return f;
}
