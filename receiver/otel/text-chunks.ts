// UTF-8 chunks of a long text made line by line (the /metrics exposition: prometheus-text.ts), and the
// pool their buffers come from, so that serving it holds a few chunks whatever its length, and a scrape
// allocates no buffer once the pool has its spares.
//
// Why a pool: with a fresh 64 KiB buffer per chunk, a scrape of the 1,000-netns exposition (34 MB of text)
// left ~6 MB of ArrayBuffers behind, freed only by the next full garbage collection (the chunk objects
// outlive a scavenge in the stream's queue and are promoted), and RSS grew by 8–19 MB per scrape (test:
// test/server/metrics-stream.test.ts). A chunk handed to the consumer is the consumer's until it
// gives it back (receiver/server/text-response.ts does when the socket or the gzip stream has consumed it);
// one never given back is garbage like any buffer.

/** Bytes per chunk: the unit written to the socket or the gzip stream. */
export const CHUNK = 64 * 1024;
/** Lines are joined into a string of about this many characters before it is encoded (one write per run). */
const RUN = 4096;

/** Free chunk buffers, shared by the renders of this process (spares kept up to `spares`). */
export class ChunkPool {
  readonly #free: ArrayBuffer[] = [];
  readonly #spares: number;
  /** Buffers allocated because none was free (for tests: a pool that works stops allocating). */
  allocated = 0;
  constructor(spares = 8) {
    this.#spares = spares;
  }
  /** A CHUNK-byte buffer: a free one, else a new one. */
  take(): Buffer {
    const ab = this.#free.pop();
    if (ab !== undefined) return Buffer.from(ab);
    this.allocated++;
    // Its own memory, not a slice of Node's 8 KiB pool: it is given back whole.
    return Buffer.allocUnsafeSlow(CHUNK);
  }
  /** Gives back a chunk taken from this pool (a view of one of its buffers); others are ignored. */
  give(chunk: Uint8Array): void {
    const ab = chunk.buffer;
    if (ab.byteLength !== CHUNK || !(ab instanceof ArrayBuffer)) return;
    if (this.#free.length < this.#spares && !this.#free.includes(ab)) this.#free.push(ab);
  }
  get free(): number {
    return this.#free.length;
  }
}

/**
 * The text's UTF-8 bytes, written into chunks of about CHUNK bytes, handed out (`full`) as they fill. Lines
 * are encoded a few KiB at a time as they are made (short-lived garbage): the text is never one string.
 * Built by `+=`, a 64 KiB chunk was a tree of thousands of concatenation nodes kept alive until it was
 * flattened and encoded, and the scavenges in between copied it (the young generation is 1 MB: `npm
 * start`'s --max-semi-space-size); at 100 netns (3.7 MB of text per scrape) the garbage collector was a
 * third of the process's CPU.
 */
export class Chunks {
  readonly #take: () => Buffer;
  #buf: Buffer;
  #at = 0;
  /** Lines not encoded yet: a short concatenation, encoded before it grows into a long-lived tree. */
  #run = '';
  readonly full: Buffer[] = [];
  /** `pool`: where chunk buffers come from (without one, each chunk is a new buffer). */
  constructor(pool?: ChunkPool) {
    this.#take = pool ? () => pool.take() : () => Buffer.allocUnsafe(CHUNK);
    this.#buf = this.#take();
  }
  add(s: string): void {
    this.#run += s;
    if (this.#run.length >= RUN) this.#write();
  }
  #write(): void {
    const s = this.#run;
    this.#run = '';
    // At most 3 bytes per UTF-16 code unit.
    if (this.#at + s.length * 3 > this.#buf.length) {
      this.#handOut();
      // A run longer than a chunk (a huge label value): a buffer of its own, not from the pool.
      if (s.length * 3 > this.#buf.length) this.#buf = Buffer.allocUnsafe(s.length * 3);
    }
    this.#at += this.#buf.write(s, this.#at);
    if (this.#at >= CHUNK - RUN) this.#handOut();
  }
  /**
   * `name{a,b,c} value\n` (or `name value\n` when the three are empty) from encoded parts, the empty ones
   * left out: a line of a long exposition with no string made for it.
   */
  labelled(name: Uint8Array, a: Uint8Array, b: Uint8Array, c: Uint8Array, value: string): void {
    if (this.#run !== '') this.#write();
    const n = name.length + a.length + b.length + c.length + value.length + 6;
    if (this.#at + n > this.#buf.length) {
      this.#handOut();
      if (n > this.#buf.length) this.#buf = Buffer.allocUnsafe(n);
    }
    const buf = this.#buf;
    let at = this.#at;
    buf.set(name, at);
    at += name.length;
    if (a.length + b.length + c.length > 0) {
      buf[at++] = 0x7b; // {
      let first = true;
      if (a.length > 0) {
        buf.set(a, at);
        at += a.length;
        first = false;
      }
      if (b.length > 0) {
        if (!first) buf[at++] = 0x2c; // ,
        buf.set(b, at);
        at += b.length;
        first = false;
      }
      if (c.length > 0) {
        if (!first) buf[at++] = 0x2c;
        buf.set(c, at);
        at += c.length;
      }
      buf[at++] = 0x7d; // }
    }
    buf[at++] = 0x20;
    at += buf.write(value, at, 'latin1');
    buf[at++] = 0x0a;
    this.#at = at;
    if (at >= CHUNK - RUN) this.#handOut();
  }
  /** What was written since the last hand-out is a full chunk; the next ones go to another buffer. */
  #handOut(): void {
    if (this.#at === 0) return;
    this.full.push(this.#buf.subarray(0, this.#at));
    this.#buf = this.#take();
    this.#at = 0;
  }
  /** Hands out what is left (the last chunk); the buffer taken for more goes back unused. */
  end(pool?: ChunkPool): void {
    if (this.#run !== '') this.#write();
    if (this.#at > 0) this.full.push(this.#buf.subarray(0, this.#at));
    else pool?.give(this.#buf);
    this.#at = 0;
  }
}
