// /metrics of a long exposition (2,000 pods × 32 series, ~18 MB of text) through the agent's own wiring
// (receiver/agent/server-control.ts agentServerSources on a LocalServer): it is rendered into pooled chunk
// buffers and streamed with backpressure, so the scrape holds a few chunks, never the whole text:
// - streamed with gzip (as Prometheus asks), gzip(1) inflates it to the text serializePrometheus makes, byte
//   for byte, and promtool accepts it; plain (identity) too;
// - the renderer takes at most a handful of chunk buffers from the pool per scrape (the whole text is ~280
//   chunks: rendering it at once, or ahead of the socket, fails this), and the process's ArrayBuffer memory
//   during the scrape stays under 1 MB;
// - a client that reads one chunk and stops reading: the renderer stops too (backpressure), far short of
//   the end;
// - a client that goes away mid-stream (gzip and plain): the render is abandoned (its `finally` releases the
//   collection), no error escapes, the server serves the next scrape whole, no connection is left open.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { CollectionResult } from '@opentelemetry/sdk-metrics';
import { pino } from 'pino';
import type { MetricStore } from '../../receiver/otel/metric-store.ts';
import { serializePrometheus } from '../../receiver/otel/prometheus-text.ts';
import { CHUNK, ChunkPool } from '../../receiver/otel/text-chunks.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { LocalServer } from '../../receiver/server/server.ts';
import { directionStore, onCollectionRelease, startMetricsServer } from '../env/metrics-server.ts';
import { podEntity } from '../env/pod-entity.ts';

// Every chunk buffer the renderer takes, and the pools it takes them from (the agent's own, created inside
// agentServerSources): counted through the prototype.
let taken = 0;
const pools = new Set<ChunkPool>();
const take = ChunkPool.prototype.take;
ChunkPool.prototype.take = function (this: ChunkPool): Buffer {
  taken++;
  pools.add(this);
  return take.call(this);
};
const allocated = (): number => [...pools].reduce((t, p) => t + p.allocated, 0);

const AGENT = resourceFromAttributes({ 'service.name': 'podnet', 'k8s.node.name': 'node-1' });
const PODS = 2000;
const entities: Entity[] = Array.from({ length: PODS }, (_, i) => podEntity(i));

let store: MetricStore;
let server: LocalServer;
/** Scrapes started and their renders finished or abandoned (the collection released). */
let scrapes = 0;
let released = 0;
let url: URL;

before(async () => {
  store = directionStore(entities, 't.stream.packets', (e, k) => e.netnsInode * 31 + k);
  // The pipeline's Prometheus reader, as the agent has it: a collection of the store per scrape.
  const prometheus = {
    collect: async () => {
      scrapes++;
      const r = await collectStore();
      onCollectionRelease(r, () => released++);
      return r;
    },
  };
  const log = pino({ level: 'silent' });
  server = await startMetricsServer(prometheus, log);
  url = new URL(`${server.url}/metrics`);
});

after(async () => {
  await server?.close();
});

/** A collection of the store with the agent's Resource (the store's own has none). */
async function collectStore(): Promise<CollectionResult> {
  const r = await store.collect();
  return { ...r, resourceMetrics: { ...r.resourceMetrics, resource: AGENT } };
}

/** The whole text, rendered at once (what the stream must equal). */
async function expected(): Promise<string> {
  return serializePrometheus((await collectStore()).resourceMetrics);
}

/** A raw HTTP/1.1 GET; `onData` sees each piece of the response as it arrives. */
function get(acceptEncoding: string, onData: (b: Buffer, s: Socket) => void): Socket {
  const s = connect(Number(url.port), url.hostname);
  s.write(
    `GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: ${acceptEncoding}\r\nConnection: close\r\n\r\n`,
  );
  s.on('data', (b) => onData(b, s));
  s.on('error', () => {});
  return s;
}

/**
 * A whole response fetched by curl (its own process: the body's bytes are not this process's memory), while
 * sampling this process's ArrayBuffer memory (the chunk buffers, zlib's output, the socket's queue).
 */
async function scrape(acceptEncoding: string): Promise<{ headers: string; body: Buffer; abGrowth: number }> {
  const ab0 = process.memoryUsage().arrayBuffers;
  let abMax = ab0;
  const t = setInterval(() => {
    abMax = Math.max(abMax, process.memoryUsage().arrayBuffers);
  }, 1);
  const dir = mkdtempSync(join(tmpdir(), 'pn-stream-'));
  try {
    // The body goes to a file: read through curl's stdout, it would be this process's memory.
    await promisify(execFile)('curl', [
      '-sS',
      '-D',
      join(dir, 'h'),
      '-o',
      join(dir, 'body'),
      '-H',
      `Accept-Encoding: ${acceptEncoding}`,
      url.href,
    ]);
    const abGrowth = abMax - ab0;
    return {
      headers: readFileSync(join(dir, 'h'), 'latin1').toLowerCase(),
      body: readFileSync(join(dir, 'body')),
      abGrowth,
    };
  } finally {
    clearInterval(t);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a long exposition streamed with gzip: identical text, promtool accepts it, a few chunk buffers held', async () => {
  const want = await expected();
  assert.ok(want.length > 100 * CHUNK, `a long exposition (${want.length} bytes)`);
  for (const enc of ['gzip', 'identity']) {
    const s0 = scrapes;
    const r0 = released;
    const r = await scrape(enc);
    assert.equal(scrapes - s0, 1);
    assert.match(r.headers, /transfer-encoding: chunked/, 'streamed, not sent whole');
    let text: string;
    if (enc === 'gzip') {
      assert.match(r.headers, /content-encoding: gzip/);
      const inflated = spawnSync('gzip', ['-dc'], { input: r.body, maxBuffer: 256 * 2 ** 20 });
      assert.equal(inflated.status, 0, String(inflated.stderr));
      text = inflated.stdout.toString('utf8');
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, maxBuffer: 64 * 2 ** 20 });
      assert.equal(lint.status, 0, `promtool check metrics:\n${lint.stdout}${lint.stderr}`);
    } else {
      assert.doesNotMatch(r.headers, /content-encoding/);
      text = r.body.toString('utf8');
    }
    assert.equal(text.length, want.length, enc);
    assert.ok(text === want, `${enc}: the streamed text is the text rendered at once, byte for byte`);
    assert.equal(released - r0, 1, 'the collection was released when the render ended');
    // Whole at once, the chunks alone would be the text's length in ArrayBuffers (18 MB); streamed, a few
    // chunks and zlib's output (curl writes the body to a file: none of it is this process's memory).
    console.log(`# ${enc}: ArrayBuffer memory grew ${r.abGrowth} bytes during the scrape of ${want.length}`);
    // Besides the chunks, each collection makes two Int32Arrays of one entry per series (the metric and the
    // entity of each: collectSeries, receiver/otel/metric-data.ts), made per collection and let go after
    // it: 8 bytes per series (one sample line each here, a counter), ~0.8 MB for this store — not the text.
    const series = want.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    assert.ok(
      r.abGrowth < 16 * CHUNK + 8 * series,
      `${enc}: ArrayBuffer memory grew ${r.abGrowth} bytes (${series} series)`,
    );
  }
});

test('the renderer takes a handful of pooled buffers per scrape, not one per chunk', async () => {
  const perScrape: number[] = [];
  const t0 = taken;
  for (let i = 0; i < 3; i++) {
    const before = allocated();
    await scrape(i % 2 ? 'identity' : 'gzip');
    perScrape.push(allocated() - before);
  }
  // ~280 chunks per scrape are taken from the pool; it allocates only while it has no spare.
  assert.ok(taken - t0 > 300, `chunks taken: ${taken - t0}`);
  assert.ok(
    perScrape.every((t) => t <= 8),
    `buffers allocated per scrape: ${perScrape.join(', ')}`,
  );
});

test('a client that stops reading stops the renderer (backpressure)', async () => {
  let read = 0;
  const r0 = released;
  const s = get('identity', (b, sock) => {
    read += b.length;
    if (read > CHUNK) sock.pause();
  });
  try {
    await paused(r0, () => read);
  } finally {
    s.destroy();
  }
  await waitFor(() => released === r0 + 1, 'the abandoned render was released');
});

/** While the client does not read: the renderer stops, holding a few chunks. */
async function paused(r0: number, read: () => number): Promise<void> {
  // Wait until the server stops making progress (the socket buffers are full).
  const t0 = taken;
  let last = -1;
  let stalled = 0;
  for (let i = 0; i < 100 && stalled < 3; i++) {
    await new Promise((r) => setTimeout(r, 100));
    stalled = taken === last ? stalled + 1 : 0;
    last = taken;
  }
  assert.ok(stalled >= 3, 'the renderer stopped');
  assert.equal(released, r0, 'the render is still open, waiting');
  // Rendered = read by the client + queued in the kernel (both sockets' queues, as ss reports them) + what
  // the server holds: the last must be a few chunks.
  const queued = kernelQueues();
  const held = (taken - t0) * CHUNK - read() - queued;
  const pool = [...pools][0]!;
  console.log(`# paused: rendered ${taken - t0} chunks, pool allocated ${pool.allocated}, free ${pool.free}`);
  assert.ok(
    held < 24 * CHUNK,
    `rendered ${taken - t0} chunks; read ${read()}, in the kernel ${queued} bytes`,
  );
  assert.ok((taken - t0) * CHUNK < (await expected()).length / 2, 'far short of the end');
}

async function waitFor(f: () => boolean, what: string | (() => string)): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out: ${typeof what === 'string' ? what : what()}`);
}

test('a client that goes away mid-stream: the render is abandoned, nothing leaks, the next scrape is whole', async () => {
  const want = await expected();
  for (const enc of ['gzip', 'identity']) {
    const r0 = released;
    let read = 0;
    await new Promise<void>((resolve) => {
      const s = get(enc, (b, sock) => {
        read += b.length;
        if (read > (2 * CHUNK) / (enc === 'gzip' ? 20 : 1)) sock.destroy();
      });
      s.on('close', () => resolve());
    });
    await waitFor(() => released === r0 + 1, `${enc}: the abandoned render was released`);
    const r = await scrape(enc);
    const text =
      enc === 'gzip'
        ? spawnSync('gzip', ['-dc'], { input: r.body, maxBuffer: 256 * 2 ** 20 }).stdout
        : r.body;
    assert.ok(text.toString('utf8') === want, `${enc}: the next scrape is whole`);
  }
  await waitFor(
    () => openConnections() === 0,
    () => `no connection left open: ${ssLines().join('; ')}`,
  );
});

/** Bytes in the receive and send queues of the server's port's connections (both ends), per ss. */
function kernelQueues(): number {
  const r = spawnSync(
    'ss',
    ['-Htn', 'state', 'established', `( sport = :${url.port} or dport = :${url.port} )`],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
  let n = 0;
  for (const l of r.stdout.split('\n')) {
    const [recvQ, sendQ] = l.trim().split(/\s+/);
    if (recvQ !== undefined && sendQ !== undefined && recvQ !== '') n += Number(recvQ) + Number(sendQ);
  }
  return n;
}

/** TCP connections of the server's port in any state but listening and TIME-WAIT, as ss lists them. */
function ssLines(): string[] {
  const r = spawnSync(
    'ss',
    ['-Htan', 'exclude', 'listening', 'exclude', 'time-wait', `( sport = :${url.port} )`],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}
const openConnections = (): number => ssLines().length;
