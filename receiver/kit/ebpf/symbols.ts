// Address ranges of kernel functions by name, from /proc/kallsyms (text symbols): [start, end) where end
// is the next text symbol. Used to exclude drop sites (noise) in the kernel by address range.
import { readFileSync } from 'node:fs';

export interface SymbolRange {
  readonly name: string;
  readonly start: bigint;
  readonly end: bigint;
}

/** Ranges of the named functions that exist on this kernel (missing names are left out). */
export function symbolRanges(names: readonly string[], path = '/proc/kallsyms'): SymbolRange[] {
  if (names.length === 0) return [];
  const want = new Set(names);
  const text = readFileSync(path, 'latin1');
  const addrs: bigint[] = [];
  const found = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const sp1 = line.indexOf(' ');
    if (sp1 < 0) continue;
    const t = line.charCodeAt(sp1 + 1);
    if (t !== 116 && t !== 84 && t !== 119 && t !== 87) continue; // t T w W
    const a = BigInt(`0x${line.slice(0, sp1)}`);
    if (a === 0n) continue;
    addrs.push(a);
    let name = line.slice(sp1 + 3);
    const tab = name.indexOf('\t');
    if (tab >= 0) name = name.slice(0, tab);
    if (want.has(name) && !found.has(name)) found.set(name, a);
  }
  if (found.size === 0) return [];
  addrs.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const out: SymbolRange[] = [];
  for (const [name, start] of found) {
    // first address greater than start
    let lo = 0;
    let hi = addrs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (addrs[mid]! <= start) lo = mid + 1;
      else hi = mid;
    }
    out.push({ name, start, end: addrs[lo] ?? start + 1n });
  }
  return out;
}
