// A counting OTLP/HTTP sink for load tests, run as its own process so that its CPU is not podnet's:
// POST /v1/logs and /v1/metrics (protobuf, optional gzip) are answered 200 at once; log records and metric
// data points are counted by walking the protobuf wire format (no decode into objects, so it keeps up with
// 1M records/s where the full test receiver in test/env/otlp-receiver would saturate a core).
// GET /counts → JSON; POST /reset zeroes. Started by startSink(); standalone:
//   node benchmarks/lib/otlp-sink.ts   (prints {"port":N})
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export interface SignalCounts {
  requests: number;
  /** Log records or metric data points. */
  items: number;
  /** Body bytes as sent (compressed if the exporter compressed). */
  bytes: number;
  /** Body bytes after decompression. */
  rawBytes: number;
  /** Largest request, raw bytes. */
  maxRequestBytes: number;
}

export interface SinkCounts {
  logs: SignalCounts;
  metrics: SignalCounts;
  errors: number;
}

function varint(b: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const x = b[pos++];
    if (x === undefined) throw new Error('truncated varint');
    v += (x & 0x7f) * mul;
    if (x < 0x80) return [v, pos];
    mul *= 128;
  }
}

/** Calls `fn(field, start, end)` for each length-delimited field of the message in b[start, end). */
function eachLen(
  b: Uint8Array,
  start: number,
  end: number,
  fn: (field: number, s: number, e: number) => void,
): void {
  let p = start;
  while (p < end) {
    const [key, p1] = varint(b, p);
    p = p1;
    const field = Math.floor(key / 8);
    const wt = key & 7;
    if (wt === 0) p = varint(b, p)[1];
    else if (wt === 1) p += 8;
    else if (wt === 5) p += 4;
    else if (wt === 2) {
      const [len, p2] = varint(b, p);
      fn(field, p2, p2 + len);
      p = p2 + len;
    } else throw new Error(`unsupported wire type ${wt}`);
  }
}

/** ExportLogsServiceRequest → resource_logs(1) → scope_logs(2) → log_records(2). */
export function countLogRecords(b: Uint8Array): number {
  let n = 0;
  eachLen(b, 0, b.length, (f, s, e) => {
    if (f !== 1) return;
    eachLen(b, s, e, (f2, s2, e2) => {
      if (f2 !== 2) return;
      eachLen(b, s2, e2, (f3) => {
        if (f3 === 2) n++;
      });
    });
  });
  return n;
}

const DATA_FIELDS = new Set([5, 7, 9, 10, 11]); // gauge, sum, histogram, exponential_histogram, summary

/** ExportMetricsServiceRequest → resource_metrics(1) → scope_metrics(2) → metrics(2) → <data>(5,7,9,10,11) → data_points(1). */
export function countDataPoints(b: Uint8Array): number {
  let n = 0;
  eachLen(b, 0, b.length, (f, s, e) => {
    if (f !== 1) return;
    eachLen(b, s, e, (f2, s2, e2) => {
      if (f2 !== 2) return;
      eachLen(b, s2, e2, (f3, s3, e3) => {
        if (f3 !== 2) return;
        eachLen(b, s3, e3, (f4, s4, e4) => {
          if (!DATA_FIELDS.has(f4)) return;
          eachLen(b, s4, e4, (f5) => {
            if (f5 === 1) n++;
          });
        });
      });
    });
  });
  return n;
}

const zero = (): SignalCounts => ({ requests: 0, items: 0, bytes: 0, rawBytes: 0, maxRequestBytes: 0 });

function serve(): void {
  let counts: SinkCounts = { logs: zero(), metrics: zero(), errors: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/counts') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(counts));
        return;
      }
      if (req.method === 'POST' && req.url === '/reset') {
        counts = { logs: zero(), metrics: zero(), errors: 0 };
        res.end('{}');
        return;
      }
      const signal = req.url === '/v1/logs' ? 'logs' : req.url === '/v1/metrics' ? 'metrics' : undefined;
      if (req.method !== 'POST' || !signal) {
        res.statusCode = 404;
        res.end();
        return;
      }
      let body = Buffer.concat(chunks);
      const sent = body.length;
      try {
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const c = counts[signal];
        c.items += signal === 'logs' ? countLogRecords(body) : countDataPoints(body);
        c.requests++;
        c.bytes += sent;
        c.rawBytes += body.length;
        c.maxRequestBytes = Math.max(c.maxRequestBytes, body.length);
      } catch {
        counts.errors++;
        res.statusCode = 400;
        res.end();
        return;
      }
      res.statusCode = 200;
      res.setHeader('content-type', 'application/x-protobuf');
      res.end(); // an empty Export*ServiceResponse
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(Number(process.env['SINK_PORT'] ?? 0), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

export interface Sink {
  readonly pid: number;
  /** OTLP/HTTP base URL (the exporter appends /v1/logs, /v1/metrics). */
  readonly endpoint: string;
  counts(): Promise<SinkCounts>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /\{"port":(\d+)\}/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`OTLP sink exited ${code}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    pid: child.pid!,
    endpoint: base,
    counts: async () => (await (await fetch(`${base}/counts`)).json()) as SinkCounts,
    reset: async () => {
      await fetch(`${base}/reset`, { method: 'POST' });
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve();
