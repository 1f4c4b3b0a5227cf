// A real OTLP receiver for tests: gRPC (grpc-js + proto-loader) and HTTP (/v1/metrics, /v1/logs;
// application/x-protobuf and application/json, optional gzip) for metrics and logs, decoding with the
// opentelemetry-proto message definitions vendored under ./proto. What it receives is flattened into plain
// points and log records for assertions. `down()` closes both listeners; `up()` listens again on the same
// ports, so exporters see an outage and a recovery.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), 'proto');
const METRICS_SERVICE = 'opentelemetry/proto/collector/metrics/v1/metrics_service.proto';
const LOGS_SERVICE = 'opentelemetry/proto/collector/logs/v1/logs_service.proto';

export type AttrValue = string | number | boolean | null | AttrValue[] | { [k: string]: AttrValue };
export type Attrs = Record<string, AttrValue>;

export interface ReceivedPoint {
  readonly transport: 'grpc' | 'http/protobuf' | 'http/json';
  readonly resource: Attrs;
  readonly scope: string;
  readonly name: string;
  readonly unit: string;
  readonly description: string;
  readonly type: 'sum' | 'gauge' | 'histogram' | 'exponential_histogram' | 'summary';
  readonly isMonotonic?: boolean;
  readonly temporality?: string;
  readonly attributes: Attrs;
  readonly startTimeUnixNano: bigint;
  readonly timeUnixNano: bigint;
  /** Number points: the value. Histograms: the count. */
  readonly value: number;
  readonly histogram?: {
    readonly count: number;
    readonly sum?: number;
    readonly bucketCounts: number[];
    readonly explicitBounds: number[];
  };
}

export interface ReceivedLog {
  readonly transport: 'grpc' | 'http/protobuf' | 'http/json';
  readonly resource: Attrs;
  readonly scope: string;
  readonly eventName: string;
  readonly severityNumber: number;
  readonly severityText: string;
  readonly timeUnixNano: bigint;
  readonly observedTimeUnixNano: bigint;
  readonly attributes: Attrs;
  readonly body: AttrValue;
}

export interface OtlpReceiverOptions {
  grpcPort?: number;
  httpPort?: number;
  /** Keep at most this many points/log records (oldest dropped); default 200000. */
  maxKept?: number;
  /** Serve HTTPS and gRPC over TLS with this PEM certificate and key (and require client certificates
   *  signed by `clientCa` when given). */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
}

const SEVERITY_NAMES = [
  'UNSPECIFIED',
  'TRACE',
  'TRACE2',
  'TRACE3',
  'TRACE4',
  'DEBUG',
  'DEBUG2',
  'DEBUG3',
  'DEBUG4',
  'INFO',
  'INFO2',
  'INFO3',
  'INFO4',
  'WARN',
  'WARN2',
  'WARN3',
  'WARN4',
  'ERROR',
  'ERROR2',
  'ERROR3',
  'ERROR4',
  'FATAL',
  'FATAL2',
  'FATAL3',
  'FATAL4',
];

// biome-ignore lint/suspicious/noExplicitAny: decoded protobuf objects are dynamic by nature.
type Obj = any;

function anyValue(v: Obj): AttrValue {
  if (v == null) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return ((v.arrayValue?.values ?? []) as Obj[]).map(anyValue);
  if ('kvlistValue' in v) return kvs(v.kvlistValue?.values);
  if ('bytesValue' in v) return String(v.bytesValue);
  return null;
}

function kvs(list: Obj[] | undefined): Attrs {
  const out: Attrs = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

function big(v: Obj): bigint {
  if (v == null) return 0n;
  return BigInt(typeof v === 'object' && 'toString' in v ? v.toString() : v);
}

function severityNumber(v: Obj): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const i = SEVERITY_NAMES.indexOf(v.replace('SEVERITY_NUMBER_', ''));
    return Math.max(i, 0);
  }
  return 0;
}

function temporalityName(v: Obj): string {
  if (v === 1 || v === 'AGGREGATION_TEMPORALITY_DELTA') return 'delta';
  if (v === 2 || v === 'AGGREGATION_TEMPORALITY_CUMULATIVE') return 'cumulative';
  return 'unspecified';
}

function numberValue(dp: Obj): number {
  if (dp.asDouble != null) return Number(dp.asDouble);
  if (dp.asInt != null) return Number(dp.asInt);
  return 0;
}

export function flattenMetrics(req: Obj, transport: ReceivedPoint['transport']): ReceivedPoint[] {
  const out: ReceivedPoint[] = [];
  for (const rm of req.resourceMetrics ?? []) {
    const resource = kvs(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      const scope = sm.scope?.name ?? '';
      for (const m of sm.metrics ?? []) {
        const base = {
          transport,
          resource,
          scope,
          name: m.name,
          unit: m.unit ?? '',
          description: m.description ?? '',
        };
        if (m.sum) {
          for (const dp of m.sum.dataPoints ?? []) {
            out.push({
              ...base,
              type: 'sum',
              isMonotonic: Boolean(m.sum.isMonotonic),
              temporality: temporalityName(m.sum.aggregationTemporality),
              attributes: kvs(dp.attributes),
              startTimeUnixNano: big(dp.startTimeUnixNano),
              timeUnixNano: big(dp.timeUnixNano),
              value: numberValue(dp),
            });
          }
        } else if (m.gauge) {
          for (const dp of m.gauge.dataPoints ?? []) {
            out.push({
              ...base,
              type: 'gauge',
              attributes: kvs(dp.attributes),
              startTimeUnixNano: big(dp.startTimeUnixNano),
              timeUnixNano: big(dp.timeUnixNano),
              value: numberValue(dp),
            });
          }
        } else if (m.histogram) {
          for (const dp of m.histogram.dataPoints ?? []) {
            const count = Number(dp.count ?? 0);
            out.push({
              ...base,
              type: 'histogram',
              temporality: temporalityName(m.histogram.aggregationTemporality),
              attributes: kvs(dp.attributes),
              startTimeUnixNano: big(dp.startTimeUnixNano),
              timeUnixNano: big(dp.timeUnixNano),
              value: count,
              histogram: {
                count,
                ...(dp.sum != null ? { sum: Number(dp.sum) } : {}),
                bucketCounts: ((dp.bucketCounts ?? []) as Obj[]).map(Number),
                explicitBounds: ((dp.explicitBounds ?? []) as Obj[]).map(Number),
              },
            });
          }
        } else {
          const type = m.exponentialHistogram ? 'exponential_histogram' : 'summary';
          for (const dp of (m.exponentialHistogram ?? m.summary)?.dataPoints ?? []) {
            out.push({
              ...base,
              type,
              attributes: kvs(dp.attributes),
              startTimeUnixNano: big(dp.startTimeUnixNano),
              timeUnixNano: big(dp.timeUnixNano),
              value: Number(dp.count ?? 0),
            });
          }
        }
      }
    }
  }
  return out;
}

export function flattenLogs(req: Obj, transport: ReceivedLog['transport']): ReceivedLog[] {
  const out: ReceivedLog[] = [];
  for (const rl of req.resourceLogs ?? []) {
    const resource = kvs(rl.resource?.attributes);
    for (const sl of rl.scopeLogs ?? []) {
      const scope = sl.scope?.name ?? '';
      for (const r of sl.logRecords ?? []) {
        out.push({
          transport,
          resource,
          scope,
          eventName: r.eventName ?? '',
          severityNumber: severityNumber(r.severityNumber),
          severityText: r.severityText ?? '',
          timeUnixNano: big(r.timeUnixNano),
          observedTimeUnixNano: big(r.observedTimeUnixNano),
          attributes: kvs(r.attributes),
          body: anyValue(r.body),
        });
      }
    }
  }
  return out;
}

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: String,
  enums: Number,
  bytes: String,
  defaults: false,
  oneofs: false,
};

export class OtlpReceiver {
  readonly points: ReceivedPoint[] = [];
  readonly logs: ReceivedLog[] = [];
  /** Log records received in all, including those `maxKept` let go (benchmarks: sink = sent). */
  logsReceived = 0;
  /** Export requests received, by `<signal> <transport>`. */
  readonly requests = new Map<string, number>();
  /** Headers (HTTP) or metadata (gRPC) of the latest request, by `<signal> <transport>`. */
  readonly headers = new Map<string, Record<string, string>>();
  /** Bodies that failed to decode (a test asserts this stays empty). */
  readonly decodeErrors: string[] = [];
  /** HTTP: the first bytes of the latest request body as received (before any gunzip), by signal. */
  readonly rawHead = new Map<string, Buffer>();
  /** TLS: the subject CN of the client certificate of the latest HTTPS request, by signal. */
  readonly clientCertCn = new Map<string, string>();
  #grpc: grpc.Server | undefined;
  #http: Server | undefined;
  #grpcPort = 0;
  #httpPort = 0;
  readonly #maxKept: number;
  readonly #tls: OtlpReceiverOptions['tls'];
  readonly #root: protobuf.Root;
  readonly #metricsReq: protobuf.Type;
  readonly #logsReq: protobuf.Type;
  readonly #metricsResp: protobuf.Type;
  readonly #logsResp: protobuf.Type;
  readonly #grpcDef: grpc.GrpcObject;
  #waiters: Array<() => void> = [];
  #stalled = false;
  readonly #held = new Set<() => void>();

  constructor(options: OtlpReceiverOptions = {}) {
    this.#grpcPort = options.grpcPort ?? 0;
    this.#httpPort = options.httpPort ?? 0;
    this.#maxKept = options.maxKept ?? 200_000;
    this.#tls = options.tls;
    this.#root = new protobuf.Root();
    this.#root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : join(PROTO_DIR, target));
    this.#root.loadSync([METRICS_SERVICE, LOGS_SERVICE]);
    this.#metricsReq = this.#root.lookupType(
      'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest',
    );
    this.#logsReq = this.#root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
    this.#metricsResp = this.#root.lookupType(
      'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse',
    );
    this.#logsResp = this.#root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');
    const def = protoLoader.loadSync([METRICS_SERVICE, LOGS_SERVICE], {
      includeDirs: [PROTO_DIR],
      keepCase: false,
      longs: String,
      enums: Number,
      defaults: false,
      oneofs: false,
    });
    this.#grpcDef = grpc.loadPackageDefinition(def);
  }

  get grpcEndpoint(): string {
    return `${this.#tls ? 'https' : 'http'}://127.0.0.1:${this.#grpcPort}`;
  }

  get httpEndpoint(): string {
    return `${this.#tls ? 'https' : 'http'}://127.0.0.1:${this.#httpPort}`;
  }

  get isUp(): boolean {
    return this.#http !== undefined;
  }

  async up(): Promise<void> {
    if (this.#http) return;
    await this.#startGrpc();
    await this.#startHttp();
  }

  async down(): Promise<void> {
    const g = this.#grpc;
    const h = this.#http;
    this.#grpc = undefined;
    this.#http = undefined;
    if (g) g.forceShutdown();
    if (h) {
      h.closeAllConnections();
      await new Promise<void>((resolve) => h.close(() => resolve()));
    }
  }

  /**
   * Stall: keep listening but answer nothing (an overloaded or black-holed collector); requests hang
   * until the exporter times out. `unstall()` fails the held requests and answers normally again.
   */
  stall(): void {
    this.#stalled = true;
  }

  unstall(): void {
    this.#stalled = false;
    const held = [...this.#held];
    this.#held.clear();
    for (const f of held) f();
  }

  clear(): void {
    this.points.length = 0;
    this.logs.length = 0;
    this.requests.clear();
  }

  /** Resolves when `pred` holds, re-checked after every request; rejects after `timeoutMs`. */
  async waitFor(pred: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`OTLP receiver: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  #record(
    signal: 'metrics' | 'logs',
    transport: ReceivedPoint['transport'],
    req: Obj,
    headers: Record<string, string>,
  ): void {
    const key = `${signal} ${transport}`;
    this.headers.set(key, headers);
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    if (signal === 'metrics') push(this.points, flattenMetrics(req, transport), this.#maxKept);
    else {
      const logs = flattenLogs(req, transport);
      this.logsReceived += logs.length;
      push(this.logs, logs, this.#maxKept);
    }
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** While stalled, park `release` (called on unstall) and report true. */
  #hold(release: () => void): boolean {
    if (!this.#stalled) return false;
    this.#held.add(release);
    return true;
  }

  async #startGrpc(): Promise<void> {
    const server = new grpc.Server();
    const pkg = this.#grpcDef as Obj;
    const metricsService = pkg.opentelemetry.proto.collector.metrics.v1.MetricsService.service;
    const logsService = pkg.opentelemetry.proto.collector.logs.v1.LogsService.service;
    server.addService(metricsService, {
      Export: (call: Obj, cb: grpc.sendUnaryData<Obj>) => {
        if (this.#hold(() => cb({ code: grpc.status.UNAVAILABLE, details: 'stalled' } as grpc.ServiceError)))
          return;
        this.#record('metrics', 'grpc', call.request, grpcHeaders(call));
        cb(null, {});
      },
    });
    server.addService(logsService, {
      Export: (call: Obj, cb: grpc.sendUnaryData<Obj>) => {
        if (this.#hold(() => cb({ code: grpc.status.UNAVAILABLE, details: 'stalled' } as grpc.ServiceError)))
          return;
        this.#record('logs', 'grpc', call.request, grpcHeaders(call));
        cb(null, {});
      },
    });
    this.#grpcPort = await new Promise<number>((resolve, reject) => {
      const creds = this.#tls
        ? grpc.ServerCredentials.createSsl(
            this.#tls.clientCa ?? null,
            [{ private_key: this.#tls.key, cert_chain: this.#tls.cert }],
            this.#tls.clientCa !== undefined,
          )
        : grpc.ServerCredentials.createInsecure();
      server.bindAsync(`127.0.0.1:${this.#grpcPort}`, creds, (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
    this.#grpc = server;
  }

  async #startHttp(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.#handleHttp(req, res).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    };
    const tls = this.#tls;
    const server: Server = tls
      ? createHttpsServer(
          {
            cert: tls.cert,
            key: tls.key,
            ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
          },
          handler,
        )
      : createServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#httpPort, '127.0.0.1', () => resolve());
    });
    this.#httpPort = (server.address() as AddressInfo).port;
    this.#http = server;
  }

  async #handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body = Buffer.concat(chunks);
    const url = req.url ?? '';
    this.rawHead.set(url, body.subarray(0, 4));
    const peer = (req.socket as TLSSocket).getPeerCertificate?.();
    if (peer?.subject?.CN) this.clientCertCn.set(url, String(peer.subject.CN));
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    if (
      this.#hold(() => {
        res.statusCode = 503;
        res.end();
      })
    )
      return;
    const signal = req.url === '/v1/metrics' ? 'metrics' : req.url === '/v1/logs' ? 'logs' : undefined;
    if (req.method !== 'POST' || !signal) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const reqType = signal === 'metrics' ? this.#metricsReq : this.#logsReq;
    const respType = signal === 'metrics' ? this.#metricsResp : this.#logsResp;
    const json = (req.headers['content-type'] ?? '').includes('json');
    let decoded: Obj;
    try {
      decoded = json
        ? reqType.toObject(reqType.fromObject(JSON.parse(body.toString('utf8'))), TO_OBJECT)
        : reqType.toObject(reqType.decode(body), TO_OBJECT);
    } catch (err) {
      this.decodeErrors.push(`${signal} ${json ? 'json' : 'protobuf'}: ${String(err)}`);
      res.statusCode = 400;
      res.end();
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    this.#record(signal, json ? 'http/json' : 'http/protobuf', decoded, headers);
    res.statusCode = 200;
    if (json) {
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    } else {
      res.setHeader('content-type', 'application/x-protobuf');
      res.end(Buffer.from(respType.encode(respType.create({})).finish()));
    }
  }
}

function grpcHeaders(call: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  const md = call.metadata?.getMap?.() ?? {};
  for (const [k, v] of Object.entries(md)) out[k] = String(v);
  return out;
}

function push<T>(arr: T[], items: T[], max: number): void {
  for (const i of items) arr.push(i);
  if (arr.length > max) arr.splice(0, arr.length - max);
}

export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const r = new OtlpReceiver(options);
  await r.up();
  return r;
}

// Standalone: `node test/env/otlp-receiver/receiver.ts [--grpc 4317] [--http 4318]` prints every received
// point and log record as a JSON line (bigints as strings) until interrupted.
if (import.meta.main) {
  const arg = (name: string, def: number): number => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : def;
  };
  const rx = await startOtlpReceiver({
    grpcPort: arg('grpc', 4317),
    httpPort: arg('http', 4318),
    maxKept: 10_000,
  });
  process.stderr.write(`OTLP receiver: gRPC ${rx.grpcEndpoint}, HTTP ${rx.httpEndpoint}\n`);
  let p = 0;
  let l = 0;
  const replacer = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);
  setInterval(() => {
    for (; p < rx.points.length; p++)
      process.stdout.write(`${JSON.stringify({ point: rx.points[p] }, replacer)}\n`);
    for (; l < rx.logs.length; l++)
      process.stdout.write(`${JSON.stringify({ log: rx.logs[l] }, replacer)}\n`);
    if (rx.points.length > 5000 || rx.logs.length > 5000) {
      rx.clear();
      p = 0;
      l = 0;
    }
  }, 200);
  process.on('SIGINT', () => void rx.down().then(() => process.exit(0)));
  process.on('SIGTERM', () => void rx.down().then(() => process.exit(0)));
}
