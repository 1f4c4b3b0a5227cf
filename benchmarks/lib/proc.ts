// What a process costs, read from procfs: CPU time (utime + stime of /proc/<pid>/stat, clock ticks of
// 10 ms), resident memory (VmRSS / VmHWM of /proc/<pid>/status) and the machine's busy time (/proc/stat).
import { readFileSync } from 'node:fs';

/** USER_HZ; 100 on every Linux this runs on (`getconf CLK_TCK`). */
export const CLK_TCK = 100;

/** CPU seconds (user + system) used so far by `pid`; with `children`, also its waited-for children. */
export function cpuSeconds(pid: number, children = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces and parentheses): state is field 3.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const f = (n: number): number => Number(rest[n - 3] ?? 0);
  const ticks = f(14) + f(15) + (children ? f(16) + f(17) : 0);
  return ticks / CLK_TCK;
}

function statusKb(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Resident set size of `pid` in bytes. */
export function rssBytes(pid: number): number {
  return statusKb(pid, 'VmRSS') * 1024;
}

/** Peak resident set size of `pid` in bytes (since start). */
export function peakRssBytes(pid: number): number {
  return statusKb(pid, 'VmHWM') * 1024;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Machine-wide jiffies from the first line of /proc/stat: busy (all but idle + iowait) and total. */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU seconds of a set of pids (and the machine's busy share) between start() and stop(). */
export class CpuWindow {
  readonly #pids: number[];
  #cpu0: number[] = [];
  #t0 = 0;
  #m0 = { busy: 0, total: 0 };

  constructor(pids: number[]) {
    this.#pids = pids;
  }

  start(): this {
    this.#cpu0 = this.#pids.map((p) => safeCpu(p));
    this.#m0 = machineTicks();
    this.#t0 = performance.now();
    return this;
  }

  /** Per pid CPU seconds, wall seconds and machine busy fraction (0..1 of all CPUs) over the window. */
  stop(): { cpu: number[]; wall: number; machineBusy: number } {
    const wall = (performance.now() - this.#t0) / 1000;
    const m = machineTicks();
    const cpu = this.#pids.map((p, i) => Math.max(0, safeCpu(p) - (this.#cpu0[i] ?? 0)));
    const dt = m.total - this.#m0.total;
    return { cpu, wall, machineBusy: dt > 0 ? (m.busy - this.#m0.busy) / dt : 0 };
  }
}

function safeCpu(pid: number): number {
  try {
    return cpuSeconds(pid);
  } catch {
    return 0;
  }
}
