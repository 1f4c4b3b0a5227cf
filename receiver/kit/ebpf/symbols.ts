// Address ranges of kernel functions by name, from /proc/kallsyms (text symbols): [start, end) where end
// is the next text symbol. Used to exclude drop sites (noise) in the kernel by address range. Scans the
// file's bytes in chunks (receiver/bpf/kallsyms.ts forEachTextSymbol) without a string or BigInt per symbol.
import { forEachTextSymbol } from '../../bpf/kallsyms.ts';

export interface SymbolRange {
  readonly name: string;
  readonly start: bigint;
  readonly end: bigint;
}

/** Ranges of the named functions that exist on this kernel (missing names are left out). */
export function symbolRanges(names: readonly string[], path = '/proc/kallsyms'): SymbolRange[] {
  if (names.length === 0) return [];
  const want = new Set(names);
  const lengths = new Set(names.map((n) => Buffer.byteLength(n, 'latin1')));
  // First text symbol of each wanted name (the part before a module's tab).
  const found = new Map<string, { hi: number; lo: number }>();
  forEachTextSymbol(path, (buf, hi, lo, s, e) => {
    let nameEnd = s;
    while (nameEnd < e && buf[nameEnd] !== 9) nameEnd++;
    if (!lengths.has(nameEnd - s)) return;
    const name = buf.toString('latin1', s, nameEnd);
    if (want.has(name) && !found.has(name)) found.set(name, { hi, lo });
  });
  if (found.size === 0) return [];
  // End of each: the lowest text symbol address above its start.
  const starts = [...found.values()];
  const ends = starts.map(() => ({ hi: -1, lo: -1 }));
  forEachTextSymbol(path, (_buf, hi, lo) => {
    for (let i = 0; i < starts.length; i++) {
      const st = starts[i]!;
      const en = ends[i]!;
      const above = hi > st.hi || (hi === st.hi && lo > st.lo);
      const lower = en.hi < 0 || hi < en.hi || (hi === en.hi && lo < en.lo);
      if (above && lower) {
        en.hi = hi;
        en.lo = lo;
      }
    }
  });
  const big = (hi: number, lo: number): bigint => (BigInt(hi) << 32n) | BigInt(lo);
  return [...found.keys()].map((name, i) => {
    const st = starts[i]!;
    const en = ends[i]!;
    const start = big(st.hi, st.lo);
    return { name, start, end: en.hi < 0 ? start + 1n : big(en.hi, en.lo) };
  });
}
