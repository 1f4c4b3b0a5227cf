// Syscall counts of a running process over one piece of work, for benchmarks/scale/floor.ts: `strace -f -c`
// attached to every thread of `pid` while `work` runs, then detached (SIGINT), its summary table parsed.
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
  'poll',
  'bpf',
];

export async function straceCounts(
  pid: number,
  work: () => Promise<void>,
  dir: string,
): Promise<Map<string, number>> {
  const file = join(dir, `strace-${pid}.txt`);
  const st = spawn('strace', ['-f', '-c', '-o', file, '-e', `trace=${KINDS.join(',')}`, '-p', String(pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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
  // "% time  seconds  usecs/call  calls  [errors]  syscall" rows; the total row last.
  const counts = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w.length < 5 || !/^\d+(\.\d+)?$/.test(w[0]!)) continue;
    const name = w.at(-1)!;
    if (name === 'total') continue;
    counts.set(name, Number(w[3]));
  }
  return counts;
}
