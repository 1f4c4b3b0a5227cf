// A text response: in one piece when it is small (a host's /metrics, ~50 KB), else written as it is produced
// (the /metrics exposition at 1,000 pods is ~35 MB): chunk by chunk with the socket's backpressure, so what
// is held at once is a chunk and the socket's buffer, not the whole text and its UTF-8 copy. Gzip-compressed
// when the client accepts it (Prometheus sends `Accept-Encoding: gzip` on every scrape).
//
// Why two paths: a stream costs a fixed ~0.5 ms of CPU per response (a Readable, a zlib stream with its
// native deflate state, a pipeline, their callbacks) and its deflate state (~256 KB, reported to V8 as
// external memory) brings garbage collections forward: on a host-only agent scraped every second it was
// more CPU than the collection itself (benchmarks/suite/node-exporter.ts --profile). One gzipSync of a
// small body is a fraction of that.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGzip, gzipSync } from 'node:zlib';

/** Bodies up to this many bytes (or characters) are sent in one piece, with a Content-Length. */
export const WHOLE_MAX = 1024 * 1024;

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

/** A chunk as bytes (a string as UTF-8). */
const bytes = (chunk: string | Uint8Array): Uint8Array =>
  typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;

/** The chunks before and after what was read ahead. */
function* prepend(head: Uint8Array[], rest: Iterator<string | Uint8Array>): Generator<Uint8Array> {
  yield* head;
  for (let r = rest.next(); !r.done; r = rest.next()) yield bytes(r.value);
}

/**
 * Send `chunks` (strings, or UTF-8 bytes: prometheus-text.ts renders into buffers) as the 200 response.
 * Reads up to `wholeMax` bytes ahead: a body that ends within them goes in one write with a
 * Content-Length, a longer one is streamed (chunked). Resolves when the response is written or the client
 * went away.
 */
export async function sendText(
  req: IncomingMessage,
  res: ServerResponse,
  chunks: Iterable<string | Uint8Array>,
  contentType: string,
  wholeMax = WHOLE_MAX,
): Promise<void> {
  res.statusCode = 200;
  res.setHeader('content-type', contentType);
  res.setHeader('vary', 'accept-encoding');
  const gzip = acceptsGzip(req.headers['accept-encoding']);
  if (gzip) res.setHeader('content-encoding', 'gzip');
  const it = chunks[Symbol.iterator]();
  let head: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const r = it.next();
    if (r.done) {
      // One chunk (a host's exposition) is sent or compressed as it is; more are joined first.
      const whole = head.length === 1 ? head[0]! : Buffer.concat(head, size);
      const body = gzip ? gzipSync(whole, GZIP) : whole;
      res.setHeader('content-length', body.length);
      res.end(body);
      return;
    }
    const b = bytes(r.value);
    head.push(b);
    size += b.length;
    if (size > wholeMax) break;
  }
  const body = Readable.from(prepend(head, it), { objectMode: false, highWaterMark: 64 * 1024 });
  head = [];
  try {
    if (gzip) await pipeline(body, createGzip(GZIP), res);
    else await pipeline(body, res);
  } catch {
    // The client closed the connection: nothing left to answer.
    res.destroy();
  }
}
