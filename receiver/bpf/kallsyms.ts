// Kernel address → `symbol+0xoff`, from /proc/kallsyms (text symbols only). Loaded lazily once, sorted and
// binary-searched; re-read when an address misses (new BPF programs appear at runtime; modules too on
// kernels that have them). Without CAP_SYSLOG (or with kptr_restrict) every address reads 0: then
// `available` is false and `reason` says why.
//
// The table is parsed from the file's bytes into typed arrays (address halves, name offsets into one byte
// buffer): ~120,000 symbols take ~4 MB outside the V8 heap and no object each. Read as one string and
// split into a string and a BigInt per symbol, the same table held the 5 MB file alive (the names were
// slices of it) and left ~40 MB of RSS after the parse (benchmarks/suite/memory.ts, the packetloss row).
import { closeSync, openSync, readSync } from 'node:fs';

/** An address further than this past the nearest symbol is treated as a miss (symbol table is stale). */
const MAX_OFFSET = 0x40000;
/** Default minimum time between two reloads triggered by misses. */
const RELOAD_INTERVAL_MS = 5000;

/** Bytes read per chunk: the file is scanned through one small buffer, never held whole. */
const CHUNK = 1 << 18;

/** Lines [from, to) of `buf` (whole lines); see forEachTextSymbol. */
function scanLines(
  buf: Buffer,
  from: number,
  to: number,
  fn: (buf: Buffer, hi: number, lo: number, nameStart: number, nameEnd: number) => void,
): boolean {
  let nonZero = false;
  let pos = from;
  while (pos < to) {
    let end = buf.indexOf(10, pos);
    if (end < 0 || end > to) end = to;
    // "ffffffff81000000 T _stext\t[module]"
    let hi = 0;
    let lo = 0;
    let i = pos;
    for (; i < end; i++) {
      const c = buf[i]!;
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      hi = ((hi << 4) | (lo >>> 28)) >>> 0;
      lo = ((lo << 4) | d) >>> 0;
    }
    if (i > pos && buf[i] === 32 && i + 3 <= end) {
      const t = buf[i + 1];
      // t T w W: text symbols
      if ((t === 116 || t === 84 || t === 119 || t === 87) && (hi !== 0 || lo !== 0)) {
        nonZero = true;
        fn(buf, hi, lo, i + 3, end);
      }
    }
    pos = end + 1;
  }
  return nonZero;
}

/**
 * Calls `fn` for each text symbol (types t T w W) of a kallsyms file: the address as two 32-bit halves,
 * and the byte range in `buf` (valid during the call only) of the rest of the line (`name` or
 * `name\t[module]`). The file is read in 256 KB chunks. Returns whether any address was non-zero; zero
 * addresses are skipped.
 */
export function forEachTextSymbol(
  path: string,
  fn: (buf: Buffer, hi: number, lo: number, nameStart: number, nameEnd: number) => void,
): boolean {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafeSlow(CHUNK);
  let nonZero = false;
  let have = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, have, CHUNK - have, null);
      const len = have + n;
      const upto = n === 0 ? len : buf.lastIndexOf(10, len - 1) + 1;
      if (upto === 0 && len === CHUNK) throw new Error(`${path}: a line longer than ${CHUNK} bytes`);
      if (scanLines(buf, 0, upto, fn)) nonZero = true;
      if (n === 0) return nonZero;
      buf.copy(buf, 0, upto, len);
      have = len - upto;
    }
  } finally {
    closeSync(fd);
  }
}

const TWO32 = 4294967296;

export class Kallsyms {
  /** Address halves, sorted by address. */
  #hi: Uint32Array = new Uint32Array(0);
  #lo: Uint32Array = new Uint32Array(0);
  /** Byte range of each symbol's name in #names (same order). */
  #start: Uint32Array = new Uint32Array(0);
  #end: Uint32Array = new Uint32Array(0);
  #names: Buffer = Buffer.alloc(0);
  #loaded = false;
  #lastLoad = 0;
  #available = true;
  readonly #path: string;
  readonly #reloadIntervalMs: number;
  /** Times the table was (re)loaded. */
  loads = 0;

  constructor(path = '/proc/kallsyms', opts: { reloadIntervalMs?: number } = {}) {
    this.#path = path;
    this.#reloadIntervalMs = opts.reloadIntervalMs ?? RELOAD_INTERVAL_MS;
  }

  /** Number of text symbols currently loaded. */
  get size(): number {
    this.#ensure();
    return this.#hi.length;
  }

  /** false when kallsyms shows only zero addresses (no CAP_SYSLOG / kptr_restrict): stacks unavailable. */
  get available(): boolean {
    this.#ensure();
    return this.#available;
  }

  get reason(): string | undefined {
    return this.available
      ? undefined
      : 'stacks unavailable: /proc/kallsyms shows zero addresses (needs CAP_SYSLOG, kernel.kptr_restrict < 2)';
  }

  #ensure(): void {
    if (!this.#loaded) this.reload();
  }

  /** (Re)reads /proc/kallsyms. */
  reload(): void {
    // Two passes over the file: sizes first, so the arrays are allocated once at their size. A symbol
    // added between the passes (a BPF program loaded) is left out until the next reload.
    let count = 0;
    let bytes = 0;
    const nonZero = forEachTextSymbol(this.#path, (_buf, _hi, _lo, s, e) => {
      count++;
      bytes += e - s;
    });
    const hi = new Uint32Array(count);
    const lo = new Uint32Array(count);
    const start = new Uint32Array(count);
    const end = new Uint32Array(count);
    const names = Buffer.allocUnsafeSlow(bytes);
    let k = 0;
    let off = 0;
    let sorted = true;
    forEachTextSymbol(this.#path, (buf, h, l, s, e) => {
      if (k >= count || off + (e - s) > bytes) return;
      if (k > 0 && (h < hi[k - 1]! || (h === hi[k - 1]! && l < lo[k - 1]!))) sorted = false;
      hi[k] = h;
      lo[k] = l;
      start[k] = off;
      buf.copy(names, off, s, e);
      off += e - s;
      end[k] = off;
      k++;
    });
    if (sorted) {
      // (k < count: symbols removed between the passes)
      this.#hi = hi.subarray(0, k);
      this.#lo = lo.subarray(0, k);
      this.#start = start.subarray(0, k);
      this.#end = end.subarray(0, k);
    } else {
      const order = new Uint32Array(k);
      for (let i = 0; i < k; i++) order[i] = i;
      order.sort((a, b) => hi[a]! - hi[b]! || lo[a]! - lo[b]!);
      this.#hi = order.map((i) => hi[i]!);
      this.#lo = order.map((i) => lo[i]!);
      this.#start = order.map((i) => start[i]!);
      this.#end = order.map((i) => end[i]!);
    }
    this.#names = names;
    this.#available = nonZero;
    this.#loaded = true;
    this.#lastLoad = Date.now();
    this.loads++;
  }

  /** Index of the last symbol at or below (hi, lo), or -1. */
  #find(h: number, l: number): number {
    const H = this.#hi;
    const L = this.#lo;
    const below = (i: number): boolean => H[i]! < h || (H[i]! === h && L[i]! <= l);
    let lo = 0;
    let hi = H.length - 1;
    if (hi < 0 || !below(0)) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (below(mid)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Distance from symbol i to (h, l) in bytes (h, l at or above it). */
  #offset(i: number, h: number, l: number): number {
    return (h - this.#hi[i]!) * TWO32 + (l - this.#lo[i]!);
  }

  #name(i: number): string {
    const name = this.#names.toString('latin1', this.#start[i]!, this.#end[i]!);
    const tab = name.indexOf('\t');
    return tab >= 0 ? `${name.slice(0, tab)} ${name.slice(tab + 1).trim()}` : name;
  }

  /** `{ name, offset }` for a kernel text address, or null. Reloads once on a miss (rate limited). */
  lookup(addr: bigint): { name: string; offset: bigint } | null {
    this.#ensure();
    if (addr < 0n || addr >= 1n << 64n) return null;
    const h = Number(addr >> 32n);
    const l = Number(addr & 0xffffffffn);
    let i = this.#find(h, l);
    if (i < 0 || this.#offset(i, h, l) > MAX_OFFSET) {
      if (Date.now() - this.#lastLoad < this.#reloadIntervalMs) return null;
      this.reload();
      i = this.#find(h, l);
      if (i < 0 || this.#offset(i, h, l) > MAX_OFFSET) return null;
    }
    return { name: this.#name(i), offset: BigInt(this.#offset(i, h, l)) };
  }

  /** `sym+0xoff`, or the raw address in hex when unknown. */
  format(addr: bigint | number): string {
    const a = BigInt(addr);
    const s = this.lookup(a);
    return s ? `${s.name}+0x${s.offset.toString(16)}` : `0x${a.toString(16)}`;
  }
}

let shared: Kallsyms | undefined;

/** The process-wide symbolizer (loaded on first use). */
export function kallsyms(): Kallsyms {
  shared ??= new Kallsyms();
  return shared;
}
