// Give the native heap's free memory back to the kernel. libbpf parses the kernel's BTF (tens of MB of
// small allocations) for every object it loads and for every hook check, and frees it; glibc keeps those
// pages in its arenas, so without a trim the first eBPF probe leaves its peak in RSS for good
// (benchmarks/suite/memory.ts measures it). malloc_trim(0) is glibc's; elsewhere (musl) this is a no-op.
import koffi from 'koffi';

let trim: ((pad: number) => number) | null | undefined;

/** malloc_trim(0); true when glibc released memory. Cheap enough to call after each config apply and collection. */
export function trimNativeHeap(): boolean {
  if (trim === undefined) {
    try {
      trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    } catch {
      trim = null; // not glibc
    }
  }
  return trim ? trim(0) === 1 : false;
}
