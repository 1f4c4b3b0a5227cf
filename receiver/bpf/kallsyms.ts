// Kernel address → `symbol+0xoff`, from /proc/kallsyms (text symbols only). Loaded lazily once, sorted into
// a BigUint64Array and binary-searched; re-read when an address misses (new BPF programs appear at
// runtime; modules too on kernels that have them). Without CAP_SYSLOG (or with kptr_restrict) every
// address reads 0: then `available` is false and `reason` says why.
import { readFileSync } from 'node:fs';

/** An address further than this past the nearest symbol is treated as a miss (symbol table is stale). */
const MAX_OFFSET = 0x40000n;
/** Default minimum time between two reloads triggered by misses. */
const RELOAD_INTERVAL_MS = 5000;

export class Kallsyms {
  #addrs: BigUint64Array = new BigUint64Array(0);
  #names: string[] = [];
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
    return this.#addrs.length;
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
    const text = readFileSync(this.#path, 'latin1');
    const entries: { a: bigint; n: string }[] = [];
    let nonZero = false;
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      // "ffffffff81000000 T _stext\t[module]"
      const sp1 = text.indexOf(' ', start);
      if (sp1 > start && sp1 < end) {
        const t = text.charCodeAt(sp1 + 1);
        // t T w W: text symbols
        if (t === 116 || t === 84 || t === 119 || t === 87) {
          const a = BigInt(`0x${text.slice(start, sp1)}`);
          if (a !== 0n) {
            nonZero = true;
            let name = text.slice(sp1 + 3, end);
            const tab = name.indexOf('\t');
            if (tab >= 0) name = `${name.slice(0, tab)} ${name.slice(tab + 1).trim()}`;
            entries.push({ a, n: name });
          }
        }
      }
      start = end + 1;
    }
    entries.sort((x, y) => (x.a < y.a ? -1 : x.a > y.a ? 1 : 0));
    this.#addrs = BigUint64Array.from(entries.map((e) => e.a));
    this.#names = entries.map((e) => e.n);
    this.#available = nonZero;
    this.#loaded = true;
    this.#lastLoad = Date.now();
    this.loads++;
  }

  #find(addr: bigint): number {
    const a = this.#addrs;
    let lo = 0;
    let hi = a.length - 1;
    if (hi < 0 || addr < a[0]!) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (a[mid]! <= addr) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** `{ name, offset }` for a kernel text address, or null. Reloads once on a miss (rate limited). */
  lookup(addr: bigint): { name: string; offset: bigint } | null {
    this.#ensure();
    let i = this.#find(addr);
    if (i < 0 || addr - this.#addrs[i]! > MAX_OFFSET) {
      if (Date.now() - this.#lastLoad < this.#reloadIntervalMs) return null;
      this.reload();
      i = this.#find(addr);
      if (i < 0 || addr - this.#addrs[i]! > MAX_OFFSET) return null;
    }
    return { name: this.#names[i]!, offset: addr - this.#addrs[i]! };
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
