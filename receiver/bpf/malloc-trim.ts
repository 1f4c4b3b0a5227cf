// Give the native heap's free memory back to the kernel. libbpf parses the kernel's BTF (tens of MB of
// small allocations) for every object it loads and for every hook check, and frees it; glibc keeps those
// pages in its arenas, so without a trim the first eBPF probe leaves its peak in RSS for good
// (benchmarks/suite/memory.ts measures it). malloc_trim(0) is glibc's; elsewhere (musl) this is a no-op.
//
// After every collection the agent asks trimAfterCollection() instead: a trim costs a walk of every arena
// plus one madvise per run of free pages, and the pages it returns are faulted back in by the next
// collection's and scrape's allocations (the gzip state of a /metrics response alone is ~256 KB). At a 1 s
// interval that was ~0.2 ms of CPU per cycle on a host-only agent (~3 ms in all;
// benchmarks/suite/node-exporter.ts, like-for-like) for well under a MB of RSS between trims. So a trim
// follows a collection when the last one is 5 s old — every collection at the default 10 s interval and
// at the scale benchmark's 15 s — or when glibc's count of free bytes in its arenas (mallinfo2().fordblks,
// all arenas) grew by a MB since it: a collection that freed MBs (netlink dumps and parsed text at 100 and
// 1,000 netns; benchmarks/suite/scale.ts) is still followed by its trim.
import koffi from 'koffi';

interface Glibc {
  trim(pad: number): number;
  /** Free bytes in all arenas (mallinfo2().fordblks). */
  freeBytes(): number;
}

let glibc: Glibc | null | undefined;

function load(): Glibc | null {
  if (glibc === undefined) {
    try {
      const libc = koffi.load('libc.so.6');
      const trim = libc.func('int malloc_trim(size_t pad)') as (pad: number) => number;
      // struct mallinfo2: ten size_t fields (glibc ≥ 2.33); fordblks is the ninth.
      const info = koffi.struct('pn_mallinfo2', {
        arena: 'size_t',
        ordblks: 'size_t',
        smblks: 'size_t',
        hblks: 'size_t',
        hblkhd: 'size_t',
        usmblks: 'size_t',
        fsmblks: 'size_t',
        uordblks: 'size_t',
        fordblks: 'size_t',
        keepcost: 'size_t',
      });
      let mallinfo2: (() => { fordblks: number | bigint }) | undefined;
      try {
        mallinfo2 = libc.func('mallinfo2', info, []) as () => { fordblks: number | bigint };
      } catch {
        mallinfo2 = undefined; // glibc < 2.33: trim every time, as before
      }
      glibc = {
        trim,
        freeBytes: mallinfo2 ? () => Number(mallinfo2().fordblks) : () => Number.POSITIVE_INFINITY,
      };
    } catch {
      glibc = null; // not glibc
    }
  }
  return glibc;
}

/** After a collection, a trim at most this often unless the arenas' free bytes grew by TRIM_GROWTH. */
export const TRIM_MIN_GAP_MS = 5_000;
/** Growth of glibc's free bytes (mallinfo2().fordblks) since the last trim that makes a trim worth it. */
export const TRIM_GROWTH = 1024 * 1024;

/** malloc_trim(0); true when glibc released memory. For one-off points (after applying a config). */
export function trimNativeHeap(): boolean {
  const g = load();
  return g ? g.trim(0) === 1 : false;
}

let lastTrimAt = Number.NEGATIVE_INFINITY;
let freeAfterTrim = 0;

/**
 * After a collection: malloc_trim(0) on the first call, then when the last one is TRIM_MIN_GAP_MS old
 * (every collection at intervals of 5 s and more, the default 10 s included; every 5th at 1 s), or sooner
 * when the arenas' free bytes grew by TRIM_GROWTH since it (a collection that freed MBs). Returns whether
 * it trimmed.
 */
export function trimAfterCollection(now = performance.now()): boolean {
  const g = load();
  if (!g) return false;
  if (now - lastTrimAt < TRIM_MIN_GAP_MS && g.freeBytes() - freeAfterTrim < TRIM_GROWTH) return false;
  g.trim(0);
  lastTrimAt = now;
  freeAfterTrim = g.freeBytes();
  return true;
}

/** Free bytes in glibc's arenas now (mallinfo2().fordblks); undefined without glibc ≥ 2.33. */
export function nativeHeapFreeBytes(): number | undefined {
  const g = load();
  const n = g?.freeBytes();
  return n === undefined || n === Number.POSITIVE_INFINITY ? undefined : n;
}
