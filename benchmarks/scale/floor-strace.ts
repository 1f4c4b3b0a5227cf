// Syscall counts of a running process over one piece of work, for benchmarks/scale/floor.ts: `strace -f`
// attached to every thread of `pid` while `work` runs, then detached (SIGINT), the calls between the command
// read and the answer written counted by name.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The syscalls counted: the kernel work of a collection, and what shows the rest. */
export const KINDS = [
  'pread64',
  'read',
  'openat',
  'close',
  'getdents64',
  'readlink',
  'readlinkat',
  'newfstatat',
  'statx',
  'fstat',
  'setns',
  'sendto',
  'recvfrom',
  'recvmmsg',
  'lseek',
  'poll',
  'bpf',
];

/**
 * Counts by syscall of `pid`'s calls between its reading the command line `first` (on stdin) and its last
 * `done` answer (on stdout): `strace -f` attached while `work` runs, its trace cut to that stretch, so
 * what the process did just before or after (its own timers) is left out.
 */
export async function straceCounts(
  pid: number,
  work: () => Promise<void>,
  dir: string,
  first: string,
): Promise<Map<string, number>> {
  const file = join(dir, `strace-${pid}.txt`);
  const trace = ['-f', '-s', '16', '-o', file, '-e', `trace=${[...KINDS, 'write'].join(',')}`];
  const st = spawn('strace', [...trace, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  // strace -p -f says "Process N attached" (with the thread count) once it has every thread (5 s at most).
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, 5000);
    st.stderr!.on('data', (d: Buffer) => {
      if (/attached/.test(d.toString())) {
        clearTimeout(t);
        setTimeout(resolve, 100);
      }
    });
    st.once('exit', (code) => reject(new Error(`strace exited ${code} before attaching`)));
  });
  try {
    await work();
  } finally {
    const exited = once(st, 'exit');
    st.kill('SIGINT');
    await exited;
  }
  const lines = readFileSync(file, 'utf8').split('\n');
  const from = lines.findIndex((l) => l.includes(`read(0, "${first}\\n"`));
  const to = lines.findLastIndex((l) => l.includes('write(1, "done\\n"'));
  if (from < 0 || to < from) throw new Error(`strace of ${pid}: no "${first}" … "done" stretch in ${file}`);
  const counts = new Map<string, number>();
  // "PID name(args…" starts a call (also when strace splits it: "<unfinished …>"; "<… resumed>" is not counted)
  for (const line of lines.slice(from + 1, to)) {
    const m = /^\d+\s+([a-z0-9_]+)\(/.exec(line);
    if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  return counts;
}
