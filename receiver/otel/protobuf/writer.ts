// A protobuf wire writer into one reusable buffer, for the OTLP encoders that serialize straight from
// podnet's own data (receiver/otel/protobuf/logs.ts; shared with the metrics encoder).
//
// Why not protobufjs/minimal's Writer (already a dependency): it records every field as a small op object
// in a linked list and allocates the output at finish(); at 100k+ log records per second, each with ~15
// attributes, that is millions of short-lived objects per second, and the event export worker already
// spent a third of its time in the garbage collector (benchmarks/RESULTS.md, section «Event pipeline:
// sustained event rates»). This writer keeps one growing Buffer for the worker's lifetime and writes
// bytes in place: nothing is allocated per field.
//
// Lengths are minimal varints, as every protobuf encoder writes them (so the bytes can be compared with
// the SDK's serializer byte for byte): a length-delimited field reserves one byte for its length
// (`fork`), and `ldelim` moves the body up when the length needs more (one native copyWithin; most
// nested messages — key/values, AnyValues — are under 128 bytes and never move).

/** Bytes a varint of `v` (0 ≤ v < 2^32) takes. */
export function varintSize32(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LDELIM = 2;
export const WIRE_FIXED32 = 5;

const TWO_32 = 4294967296;

/**
 * fixed64 of two 32-bit halves at `p` (little-endian), by byte stores: Buffer's writeUInt32LE checks its
 * arguments on every call, and at ~3 per data point that was the encoder's most frequent call.
 */
export function putFixed64(b: Uint8Array, p: number, lo: number, hi: number): void {
  b[p] = lo;
  b[p + 1] = lo >>> 8;
  b[p + 2] = lo >>> 16;
  b[p + 3] = lo >>> 24;
  b[p + 4] = hi;
  b[p + 5] = hi >>> 8;
  b[p + 6] = hi >>> 16;
  b[p + 7] = hi >>> 24;
}

// A double's 8 bytes from a scratch Float64Array, stored one by one: Buffer's writeDoubleLE validates its
// offset through a wrapper (~80 B of garbage and ~2x the time per call with --max-opt=2, as the agent runs).
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** IEEE 754 double `v` at `p`, little-endian (protobuf's `double`/`fixed64` order). */
export function putDouble(b: Uint8Array, p: number, v: number): void {
  F64[0] = v;
  const f = F64_BYTES;
  if (HOST_LE) {
    b[p] = f[0]!;
    b[p + 1] = f[1]!;
    b[p + 2] = f[2]!;
    b[p + 3] = f[3]!;
    b[p + 4] = f[4]!;
    b[p + 5] = f[5]!;
    b[p + 6] = f[6]!;
    b[p + 7] = f[7]!;
  } else for (let i = 0; i < 8; i++) b[p + i] = f[7 - i]!;
}

export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialSize = 1 << 16) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  /** Start a new message in the same buffer (the previous bytes must have been copied out). */
  reset(): void {
    this.pos = 0;
  }

  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /**
   * A copy of the bytes written (the buffer is reused by the next message), in an ArrayBuffer of its own:
   * Buffer.from would cut a small copy from Node's shared 64 KiB pool, and the field bytes cached for the
   * life of a series (fields.ts) would each keep a whole pool alive (~2.5 MB of them at 1,000 netns).
   */
  finish(): Uint8Array {
    return new Uint8Array(this.buf.subarray(0, this.pos));
  }

  /**
   * The bytes written, without copying, handed over: the writer continues in `next` (a buffer given back
   * by a caller done with earlier bytes) or a new buffer of the size this message needed, so the caller
   * may keep them (an export in flight) at no copy.
   */
  detach(next?: Buffer): Uint8Array {
    const out = this.buf.subarray(0, this.pos);
    this.buf = next ?? Buffer.allocUnsafe(Math.max(this.pos, 256));
    this.pos = 0;
    return out;
  }

  /** The bytes written, without copying: valid until the next write or reset. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  tag(field: number, wire: number): void {
    this.uint32((field << 3) | wire);
  }

  /** Varint of 0 ≤ v < 2^32. */
  uint32(v: number): void {
    this.ensure(5);
    const b = this.buf;
    let p = this.pos;
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  /** Varint of an integer-valued number in the int64 range (negative: ten bytes, two's complement). */
  int64(v: number): void {
    if (v >= 0 && v < TWO_32) {
      this.uint32(v);
      return;
    }
    let lo: number;
    let hi: number;
    if (v >= 0) {
      lo = v >>> 0;
      hi = (v / TWO_32) >>> 0;
    } else {
      const a = -v;
      lo = ~(a >>> 0) >>> 0;
      hi = ~((a / TWO_32) >>> 0) >>> 0;
      lo = (lo + 1) >>> 0;
      if (lo === 0) hi = (hi + 1) >>> 0;
    }
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (hi > 0 || lo > 0x7f) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }

  bool(v: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  /** fixed64 from its two 32-bit halves. */
  fixed64Parts(lo: number, hi: number): void {
    this.ensure(8);
    putFixed64(this.buf, this.pos, lo, hi);
    this.pos += 8;
  }

  /** fixed64 of a non-negative integer below 2^53. */
  fixed64(v: number): void {
    this.fixed64Parts(v >>> 0, Math.floor(v / TWO_32));
  }

  /** fixed64 nanoseconds of `seconds` s + `nanos` ns (a time since the epoch; exact below 2^64 ns). */
  fixed64Nanos(seconds: number, nanos: number): void {
    // seconds × 1e9 exceeds 2^53: split seconds into 16-bit halves so every product stays exact.
    const sLo = seconds & 0xffff;
    const sHi = Math.floor(seconds / 0x10000);
    const a = sLo * 1e9; // < 2^46
    const bHi = sHi * 1e9; // < 2^53 for any time before year 2^37; × 2^16 below
    const low = (a % TWO_32) + (bHi % 0x10000) * 0x10000 + nanos;
    const high = Math.floor(a / TWO_32) + Math.floor(bHi / 0x10000) + Math.floor(low / TWO_32);
    this.fixed64Parts(low >>> 0, high >>> 0);
  }

  double(v: number): void {
    this.ensure(8);
    putDouble(this.buf, this.pos, v);
    this.pos += 8;
  }

  /** A length-delimited UTF-8 string (without its tag). */
  string(s: string): void {
    const n = s.length;
    if (n < 43) {
      // At most 3 bytes per UTF-16 unit: the length fits one varint byte. ASCII by hand (no native call).
      this.ensure(1 + 3 * n);
      const b = this.buf;
      const start = this.pos + 1;
      let p = start;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          p = start + b.write(s, start, 'utf8');
          break;
        }
        b[p++] = c;
      }
      b[start - 1] = p - start;
      this.pos = p;
      return;
    }
    const len = Buffer.byteLength(s, 'utf8');
    this.uint32(len);
    this.ensure(len);
    this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
  }

  /** UTF-8 of `s` with no length (a piece of a string field whose length `fork`/`ldelim` write). */
  text(s: string): void {
    const n = s.length;
    if (n < 64) {
      this.ensure(3 * n);
      const b = this.buf;
      const start = this.pos;
      let p = start;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          p = start + b.write(s, start, 'utf8');
          break;
        }
        b[p++] = c;
      }
      this.pos = p;
      return;
    }
    const len = Buffer.byteLength(s, 'utf8');
    this.ensure(len);
    this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
  }

  /** A length-delimited byte string (without its tag). */
  bytes(v: Uint8Array): void {
    this.uint32(v.length);
    this.raw(v);
  }

  /** Bytes copied as they are (an encoded field or message kept from before). */
  raw(v: Uint8Array): void {
    const n = v.length;
    this.ensure(n);
    const b = this.buf;
    if (n < 32) {
      let p = this.pos;
      for (let i = 0; i < n; i++) b[p++] = v[i]!;
    } else b.set(v, this.pos);
    this.pos += n;
  }

  /**
   * Reserve the length of a length-delimited field; returns where its body starts (for `ldelim`, with
   * the same `reserve`). Reserve the bytes the length will most likely take (2 for bodies of 128 B to
   * 16 KiB): `ldelim` moves the body only when the length takes another number of bytes.
   */
  fork(reserve = 1): number {
    this.ensure(reserve);
    this.pos += reserve;
    return this.pos;
  }

  /** Write the length of the field begun by `fork` (`start` = its return value, `reserve` as given to it). */
  ldelim(start: number, reserve = 1): void {
    const len = this.pos - start;
    const size = varintSize32(len);
    if (size !== reserve) {
      if (size > reserve) this.ensure(size - reserve);
      this.buf.copyWithin(start + size - reserve, start, this.pos);
      this.pos += size - reserve;
    }
    const b = this.buf;
    let p = start - reserve;
    let v = len;
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p] = v;
  }
}
