// CPU time of another process in nanoseconds, for benchmarks whose per-cycle cost is a few ms: the
// /proc/<pid>/stat figure (benchmarks/lib/proc.ts) is truncated to 10 ms clock ticks at each reading, so
// a 30 s window of ~4 ms per cycle reads ±0.33 ms per cycle.
//
// The source is the process's CPU clock (clock_gettime on clock_getcpuclockid(pid): CPUCLOCK_SCHED of the
// thread group), the kernel's sum_exec_runtime of every thread alive plus every thread that already exited
// (signal->sum_sched_runtime), in ns. Chosen over the alternatives because it is the only one exact on all
// three counts: summing /proc/<pid>/task/*/schedstat loses the threads that exit inside the window (Go's
// runtime may retire an M; Node's are long-lived, but the benchmark should not rely on it), and taskstats
// by tgid (netlink TASKSTATS_CMD_GET) reports CPU of the group only with delay accounting on
// (kernel.task_delayacct, off by default since 5.14) — in cpu_run_virtual_total — which would mean
// changing a machine-wide sysctl. /proc/<pid>/stat's utime + stime is the same sum_exec_runtime split by
// tick samples and rounded down to ticks: the cross-check below (crossCheck) compares the two.
import { readdirSync, readFileSync } from 'node:fs';
import koffi from 'koffi';
import { CLK_TCK, cpuSeconds } from './proc.ts';

const libc = koffi.load('libc.so.6');
koffi.struct('pnk_timespec', { tv_sec: 'int64', tv_nsec: 'int64' });
const clockGetcpuclockid = libc.func('int clock_getcpuclockid(int pid, _Out_ int *clock)') as (
  pid: number,
  clock: number[],
) => number;
const clockGettime = libc.func('int clock_gettime(int clock, _Out_ pnk_timespec *ts)') as (
  clock: number,
  ts: { tv_sec?: number | bigint; tv_nsec?: number | bigint },
) => number;

/** The CPU clock id of process `pid` (its whole thread group); throws if there is no such process. */
export function cpuClockId(pid: number): number {
  const out = [0];
  const err = clockGetcpuclockid(pid, out);
  if (err !== 0) throw new Error(`clock_getcpuclockid(${pid}): error ${err}`);
  return out[0]!;
}

/** CPU time so far of process `pid`, all its threads (live and exited), in ns. */
export function processCpuNs(pid: number, clock = cpuClockId(pid)): bigint {
  const ts: { tv_sec?: number | bigint; tv_nsec?: number | bigint } = {};
  if (clockGettime(clock, ts) !== 0) throw new Error(`clock_gettime(CPU clock of ${pid}) failed`);
  return BigInt(ts.tv_sec ?? 0) * 1_000_000_000n + BigInt(ts.tv_nsec ?? 0);
}

/** CPU ns so far of each live thread of `pid` (/proc/<pid>/task/<tid>/schedstat, first field), by tid. */
export function threadCpuNs(pid: number): Map<number, { comm: string; ns: bigint }> {
  const out = new Map<number, { comm: string; ns: bigint }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = BigInt(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0] ?? '0');
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.set(Number(tid), { comm, ns });
    } catch {
      // the thread exited between the listing and the read
    }
  }
  return out;
}

interface Reading {
  ns: bigint;
  ticksS: number;
  threads: Map<number, { comm: string; ns: bigint }>;
}

export interface PreciseCpu {
  /** CPU seconds over the window from the CPU clock (ns resolution). */
  readonly cpuS: number;
  /** The same window from /proc/<pid>/stat utime + stime (10 ms ticks at each end). */
  readonly ticksS: number;
  /** CPU seconds per thread name (comm) over the window, threads alive at both ends. */
  readonly byThread: ReadonlyMap<string, number>;
}

/**
 * CPU of a set of processes between start() and stop(), exactly (ns). stop() throws when a figure is
 * implausible: a process gone, a clock that went backwards, or a CPU-clock figure that disagrees with the
 * tick figure of the same window by more than the ticks' own rounding (two readings, one tick each, plus
 * the µs between the two reads).
 */
export class PreciseCpuWindow {
  readonly #pids: number[];
  readonly #clocks: number[];
  #r0: Reading[] = [];

  constructor(pids: number[]) {
    this.#pids = pids;
    this.#clocks = pids.map((p) => cpuClockId(p));
  }

  #read(i: number): Reading {
    const pid = this.#pids[i]!;
    const threads = threadCpuNs(pid);
    const ns = processCpuNs(pid, this.#clocks[i]);
    return { ns, ticksS: cpuSeconds(pid), threads };
  }

  start(): this {
    this.#r0 = this.#pids.map((_, i) => this.#read(i));
    return this;
  }

  stop(): PreciseCpu[] {
    return this.#pids.map((pid, i) => {
      const a = this.#r0[i]!;
      const b = this.#read(i);
      const cpuS = Number(b.ns - a.ns) / 1e9;
      const ticksS = b.ticksS - a.ticksS;
      if (cpuS < 0) throw new Error(`pid ${pid}: its CPU clock went backwards (${cpuS} s)`);
      // Each tick reading is rounded down by up to one tick; allow 2 ticks + 1 ms of read skew.
      if (Math.abs(cpuS - ticksS) > 2 / CLK_TCK + 0.001)
        throw new Error(
          `pid ${pid}: CPU clock ${(cpuS * 1000).toFixed(3)} ms vs /proc/<pid>/stat ${(ticksS * 1000).toFixed(0)} ms over the same window: more apart than the ticks' rounding`,
        );
      const byThread = new Map<string, number>();
      for (const [tid, t] of b.threads) {
        const t0 = a.threads.get(tid);
        if (!t0) continue;
        const name = t.comm.replace(/\d+$/, '');
        byThread.set(name, (byThread.get(name) ?? 0) + Number(t.ns - t0.ns) / 1e9);
      }
      return { cpuS, ticksS, byThread };
    });
  }
}
