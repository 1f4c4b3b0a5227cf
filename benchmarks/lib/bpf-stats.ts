// Kernel time of the BPF programs a benchmark loads, from BPF_STATS_RUN_TIME (receiver/bpf/stats.ts):
// which of this process's fds are programs, and their run count and run time since a baseline. Shared by
// benchmarks/dns/dns.ts and benchmarks/ebpf/hook-cost.ts.
import { readdirSync, readlinkSync } from 'node:fs';
import { programInfo } from '../../receiver/bpf/stats.ts';

/** fds of this process that are BPF programs (anon_inode:bpf-prog). */
export function loadedProgFds(): number[] {
  const out: number[] = [];
  for (const f of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${f}`) === 'anon_inode:bpf-prog') out.push(Number(f));
    } catch {
      // closed between readdir and readlink
    }
  }
  return out;
}

export interface ProgramRuns {
  readonly fd: number;
  readonly name: string;
  readonly runs: number;
  readonly runTimeNs: number;
}

/** The programs `load` adds to this process, and a reader of their runs and run time since then. */
export async function watchNewPrograms(load: () => Promise<void>): Promise<() => ProgramRuns[]> {
  const before = new Set(loadedProgFds());
  await load();
  const fds = loadedProgFds().filter((fd) => !before.has(fd));
  const base = new Map(fds.map((fd) => [fd, programInfo(fd)]));
  return () =>
    fds.map((fd) => {
      const a = base.get(fd)!;
      const b = programInfo(fd);
      return { fd, name: b.name, runs: b.runCount - a.runCount, runTimeNs: b.runTimeNs - a.runTimeNs };
    });
}
