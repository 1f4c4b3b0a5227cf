// What every procfs parser shares (the parsers live in their probe's folder, `probes/<name>/parse.ts`):
// the error they throw and the scanning primitives. Parsers scan the text once, allocate little, and
// throw `ProcfsParseError` on anything malformed (truncated file, garbage token, header/value
// mismatch): a bad file is an error for that read, never a crash and never a silently wrong number.
//
// Values are JS numbers: exact up to 2^53 (9 PB of bytes, 9e15 packets), which kernel counters of a
// running node do not reach.

export class ProcfsParseError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ProcfsParseError';
    this.file = file;
  }
}

const SPACE = 32;
const TAB = 9;
const MINUS = 45;
const ZERO = 48;
const NINE = 57;

export function isBlank(c: number): boolean {
  return c === SPACE || c === TAB;
}

/**
 * Parses the whitespace-separated decimal integers of `text[start, end)` into `out` (appended).
 * Throws on any token that is not an optionally negative decimal integer.
 */
export function parseIntsInto(file: string, text: string, start: number, end: number, out: number[]): void {
  let i = start;
  while (i < end) {
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    if (i >= end) break;
    let neg = false;
    if (text.charCodeAt(i) === MINUS) {
      neg = true;
      i++;
    }
    const digitsStart = i;
    let v = 0;
    while (i < end) {
      const c = text.charCodeAt(i);
      if (c < ZERO || c > NINE) break;
      v = v * 10 + (c - ZERO);
      i++;
    }
    if (i === digitsStart || (i < end && !isBlank(text.charCodeAt(i)))) {
      throw new ProcfsParseError(
        file,
        `bad number near ${JSON.stringify(text.slice(digitsStart, digitsStart + 20))}`,
      );
    }
    out.push(neg ? -v : v);
  }
}

export function lineEnd(text: string, from: number): number {
  const e = text.indexOf('\n', from);
  return e < 0 ? text.length : e;
}

/**
 * `parseIntsInto` over bytes (`buf[start, end)`, latin1), writing from `out[at]` on instead of pushing:
 * callers reuse `out` between files. Returns the index after the last value written.
 */
export function parseIntsAt(
  file: string,
  buf: Uint8Array,
  start: number,
  end: number,
  out: number[],
  at: number,
): number {
  let i = start;
  let k = at;
  while (i < end) {
    while (i < end && (buf[i] === SPACE || buf[i] === TAB)) i++;
    if (i >= end) break;
    let neg = false;
    if (buf[i] === MINUS) {
      neg = true;
      i++;
    }
    const digitsStart = i;
    let v = 0;
    while (i < end) {
      const c = buf[i]!;
      if (c < ZERO || c > NINE) break;
      v = v * 10 + (c - ZERO);
      i++;
    }
    if (i === digitsStart || (i < end && buf[i] !== SPACE && buf[i] !== TAB)) {
      const near = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString(
        'latin1',
        digitsStart,
        Math.min(end, digitsStart + 20),
      );
      throw new ProcfsParseError(file, `bad number near ${JSON.stringify(near)}`);
    }
    out[k++] = neg ? -v : v;
  }
  return k;
}

/** `lineEnd` over bytes: the index of the next `\n` at or after `from`, or `end`. */
export function lineEndAt(buf: Uint8Array, from: number, end: number): number {
  const e = buf.indexOf(10, from);
  return e < 0 || e > end ? end : e;
}

// `Buffer#compare(target, tStart, tEnd, sStart, sEnd)` validates its four offsets through Node's
// hideStackFrames wrappers: ~400 bytes of garbage per call under --max-opt=2 (as the agent runs), and the
// parsers compare every value-line prefix, header line and interface name of every netns each collection.
// Runs are compared here 4 bytes at a time through a DataView kept per ArrayBuffer (nothing allocated;
// 200 B in ~0.08 us, 64 B in ~0.04 us, against ~0.25 us for the native call); the longest (snmp's TcpExt
// and MPTcpExt header lines, 1-2 KB) still natively: the word loop takes ~1.2 us for 1.5 KB, more than the
// native call and its garbage. Measured with --max-opt=2 --max-semi-space-size=1, 200,000 calls.
const NATIVE_FROM = 1024;
const views = new WeakMap<ArrayBufferLike, DataView>();

function viewOf(b: Buffer): DataView {
  let v = views.get(b.buffer);
  if (v === undefined) {
    v = new DataView(b.buffer);
    views.set(b.buffer, v);
  }
  return v;
}

/** Whether `a[aStart, aStart + len)` and `b[bStart, bStart + len)` hold the same bytes (false when out of range). */
export function bytesEqualAt(a: Buffer, aStart: number, b: Buffer, bStart: number, len: number): boolean {
  if (aStart < 0 || bStart < 0 || len < 0 || aStart + len > a.length || bStart + len > b.length) return false;
  if (len >= NATIVE_FROM) return a.compare(b, bStart, bStart + len, aStart, aStart + len) === 0;
  let i = 0;
  if (len >= 16) {
    const va = viewOf(a);
    const vb = viewOf(b);
    const ao = a.byteOffset + aStart;
    const bo = b.byteOffset + bStart;
    for (; i + 4 <= len; i += 4) if (va.getInt32(ao + i, true) !== vb.getInt32(bo + i, true)) return false;
  }
  for (; i < len; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}
