// A text response: in one piece when it is small (a host's /metrics, ~50–100 KB), else written as it is
// produced (the /metrics exposition at 1,000 pods is ~35 MB): chunk by chunk with the socket's backpressure
// (the next chunk is asked for when the socket, or the gzip stream, wants more), so what is held at once is
// a few chunks and the socket's buffer, not the whole text. Gzip-compressed when the client accepts it
// (Prometheus sends `Accept-Encoding: gzip` on every scrape): a gzip stream when streamed. Chunks rendered
// into a pool's buffers (receiver/otel/text-chunks.ts) are given back as soon as they are consumed.
//
// Why two paths: a stream costs a fixed ~0.5 ms of CPU per response (a zlib stream with its native deflate
// state, its callbacks) and its deflate state (~256 KB, reported to V8 as external memory) brings garbage
// collections forward: on a host-only agent scraped every second it was more CPU than the collection itself
// (benchmarks/suite/node-exporter.ts --profile). One gzipSync of a small body is a fraction of that.
// Keeping one deflate state for the whole bodies instead (a long-lived zlib.Gzip made with `flush: Z_FINISH`,
// one write per body, `reset()` after: the only public way) measured more CPU, not less: the deflate moves to
// libuv's threadpool and each response pays a round trip and one more event-loop wake-up (docs/receiver.md,
// the like-for-like account, sixth pass).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { constants, createGzip, type Gzip, gzipSync } from 'node:zlib';
import type { ChunkPool } from '../otel/text-chunks.ts';

/**
 * Bodies up to this many bytes (or characters) are sent in one piece, with a Content-Length: what is read
 * ahead before a longer body is streamed (a host's exposition with the default probes is ~100 KB).
 */
export const WHOLE_MAX = 256 * 1024;

/** `Accept-Encoding` lists gzip with a non-zero quality. */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  const v = Array.isArray(header) ? header.join(',') : (header ?? '');
  for (const part of v.split(',')) {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== 'x-gzip') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}

/** Gzip at the fastest level: the exposition is repetitive text (label sets repeat line after line), so
 * level 1 already shrinks it ~25× at half the default level's CPU (a 1,000-pod exposition, 51 MB: 1.9 MB
 * in 177 ms at level 1, 1.8 MB in 365 ms at level 6, one core). */
const GZIP = { level: constants.Z_BEST_SPEED };

/**
 * The gzip stream takes four chunks before asking to wait: they are compressed on libuv's threadpool while
 * the next ones are rendered. With zlib's default mark (16 KiB, below one chunk) every chunk waited for the
 * threadpool's round trip, and on a loaded machine the 1,000-netns scrape took 3.1 s instead of 0.6–0.9 s
 * (benchmarks/suite/scale.ts' scrape column).
 */
const GZIP_STREAM = { ...GZIP, writableHighWaterMark: 4 * 64 * 1024 };

/** A chunk as bytes (a string as UTF-8). */
const bytes = (chunk: string | Uint8Array): Uint8Array =>
  typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;

let dateSecond = -1;
let dateText = '';
/**
 * The Date header (RFC 9110: an origin server with a clock sends it), kept per second. Node's own one
 * (`sendDate`) caches its text with an unref'd timer that expires it a second later: with one scrape per
 * second that was a Timeout object, an async resource and a priority-queue insert at every scrape and one
 * more event-loop wake-up per cycle to run it (benchmarks/suite/node-exporter.ts --profile, like-for-like).
 * Node adds its own only when the headers lack one.
 */
export function httpDate(now = Date.now()): string {
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = new Date(s * 1000).toUTCString();
  }
  return dateText;
}

/** The headers of a 200 text response (an array: written as they are, no header map per response). */
function headers(contentType: string, gzip: boolean, length?: number): string[] {
  const h = ['date', httpDate(), 'content-type', contentType, 'vary', 'accept-encoding'];
  if (gzip) h.push('content-encoding', 'gzip');
  if (length !== undefined) h.push('content-length', String(length));
  return h;
}

/**
 * Send `chunks` (strings, or UTF-8 bytes: prometheus-text.ts renders into buffers) as the 200 response.
 * Reads up to `wholeMax` bytes ahead: a body that ends within them goes in one write with a
 * Content-Length, a longer one is streamed (chunked) with backpressure: the next chunk is asked for only
 * when the socket (or the gzip stream) wants more, so what is held at once is bounded whatever the text's
 * length. Each chunk consumed is given back to `pool` (the buffers it was rendered into). A client that
 * goes away ends the iteration (its `finally` runs) and the gzip stream. Resolves when the response is
 * written or the client went away; never rejects for the client's sake.
 */
export async function sendText(
  req: IncomingMessage,
  res: ServerResponse,
  chunks: Iterable<string | Uint8Array>,
  contentType: string,
  wholeMax = WHOLE_MAX,
  pool?: ChunkPool,
): Promise<void> {
  const gzip = acceptsGzip(req.headers['accept-encoding']);
  const it = chunks[Symbol.iterator]();
  const head: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const r = it.next();
    if (r.done) {
      // One chunk (a host's exposition) is sent or compressed as it is; more are joined first.
      const whole = head.length === 1 ? head[0]! : Buffer.concat(head, size);
      const body = gzip ? gzipSync(whole, GZIP) : whole;
      // The rendered chunks are free once compressed or joined.
      if (body !== whole || head.length > 1) for (const c of head) pool?.give(c);
      res.writeHead(200, headers(contentType, gzip, body.length));
      // Given back once the socket has it (the plain body is the rendered chunk itself).
      if (body === whole && head.length === 1 && pool) res.end(body, () => pool.give(body));
      else res.end(body);
      return;
    }
    const b = bytes(r.value);
    head.push(b);
    size += b.length;
    if (size > wholeMax) break;
  }
  res.writeHead(200, headers(contentType, gzip));
  await stream(res, gzip ? createGzip(GZIP_STREAM) : undefined, head, it, pool);
}

/**
 * Write `head`, then the rest of `it`, to `res` (through `z` when set) one chunk at a time, waiting for
 * 'drain' when the destination's buffer is full.
 */
async function stream(
  res: ServerResponse,
  z: Gzip | undefined,
  head: Uint8Array[],
  it: Iterator<string | Uint8Array>,
  pool: ChunkPool | undefined,
): Promise<void> {
  const dest: Writable = z ?? res;
  let gone = false;
  let wake: (() => void) | undefined;
  const onClose = () => {
    // Closed before the whole body was written: the client went away (or the server is closing).
    if (!res.writableFinished) gone = true;
    wake?.();
  };
  res.once('close', onClose);
  if (z) {
    z.pipe(res);
    z.once('error', () => res.destroy());
  }
  const release = pool
    ? (chunk: Uint8Array) => () => {
        // A stream destroyed mid-write may still read the chunk: only a completed write gives it back.
        if (!gone) pool.give(chunk);
      }
    : undefined;
  const write = async (chunk: Uint8Array): Promise<void> => {
    if (dest.write(chunk, release?.(chunk))) return;
    await new Promise<void>((resolve) => {
      wake = resolve;
      dest.once('drain', resolve);
    });
    dest.off('drain', wake!);
    wake = undefined;
  };
  try {
    for (const chunk of head) {
      if (gone) return;
      await write(chunk);
    }
    head.length = 0;
    for (;;) {
      if (gone) return;
      const r = it.next();
      if (r.done) break;
      await write(bytes(r.value));
    }
    if (gone) return;
    await new Promise<void>((resolve) => {
      wake = resolve;
      res.once('finish', resolve);
      dest.end();
    });
  } finally {
    res.off('close', onClose);
    if (gone || !res.writableFinished) {
      // Abandoned: the renderer's `finally` (it releases the collection), the gzip stream's native state.
      it.return?.();
      z?.destroy();
      res.destroy();
    }
  }
}
