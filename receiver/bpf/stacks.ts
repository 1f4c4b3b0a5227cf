// Kernel stacks from a BPF STACK_TRACE map (probes/include/pn_stack.bpf.h): 127 u64 addresses per id,
// innermost first, a zero address ends the stack. The kernel never frees entries: read then delete.
import { type Kallsyms, kallsyms } from './kallsyms.ts';
import type { BpfMap } from './maps.ts';

export const STACK_DEPTH = 127;

/** Addresses of stack `id` (empty when absent); the entry is deleted after reading unless keep is set. */
export function readStack(map: BpfMap, id: number, keep = false): bigint[] {
  if (id < 0) return [];
  const key = Buffer.alloc(4);
  key.writeUInt32LE(id);
  const v = map.lookup(key);
  if (!keep) map.delete(key);
  if (!v) return [];
  const out: bigint[] = [];
  for (let i = 0; i + 8 <= v.length; i += 8) {
    const a = v.readBigUInt64LE(i);
    if (a === 0n) break;
    out.push(a);
  }
  return out;
}

/** `sym+0xoff` frames for a stack, or null when symbols are unavailable (addresses read 0). */
export function symbolizeStack(addrs: readonly bigint[], syms: Kallsyms = kallsyms()): string[] | null {
  if (!syms.available) return null;
  return addrs.map((a) => syms.format(a));
}
