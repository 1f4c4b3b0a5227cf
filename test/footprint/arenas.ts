// glibc's malloc arenas as the kernel shows them: every arena but the main one lives in "heaps" that glibc
// maps HEAP_MAX_SIZE-aligned (64 MiB on 64-bit) as a read-write part followed by a PROT_NONE rest, 64 MiB in
// all. test/footprint/malloc-arenas.test.ts checks this count against glibc's own malloc_stats() first.
import { readFileSync } from 'node:fs';

const HEAP = 64n << 20n;

/** Number of glibc arena heaps in /proc/PID/maps (= arenas − 1 while no arena outgrew one heap). */
export function arenaHeaps(pid: number | 'self'): number {
  const rows = readFileSync(`/proc/${pid}/maps`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const f = line.split(/\s+/);
      const [a, b] = f[0]!.split('-').map((x) => BigInt(`0x${x}`));
      return { a: a!, b: b!, perms: f[1]!, anon: f[4] === '0' && f.length <= 6 };
    });
  let n = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.a % HEAP !== 0n || r.perms !== 'rw-p' || !r.anon) continue;
    let end = r.b;
    for (let j = i + 1; j < rows.length && rows[j]!.a === end && rows[j]!.perms === '---p'; j++) {
      if (!rows[j]!.anon || end - r.a >= HEAP) break;
      end = rows[j]!.b;
    }
    if (end - r.a === HEAP) n++;
  }
  return n;
}
