// OTLP exporters (official SDK packages) chosen by protocol, wrapped to count what fails. The log exporter
// is loaded by the event export worker (otlp-log-exporter.ts).
//
// Protocol: config, else OTEL_EXPORTER_OTLP_{METRICS,LOGS}_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else
// http/protobuf. The endpoint from the config is passed to the exporter (the HTTP ones get `/v1/<signal>`
// appended); without one the exporters read OTEL_EXPORTER_OTLP_[<SIGNAL>_]ENDPOINT and _HEADERS themselves.
import { Metadata } from '@grpc/grpc-js';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import {
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
  type PushMetricExporter,
  type ResourceMetrics,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';

export const OTLP_PROTOCOLS = ['grpc', 'http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export interface OtlpSignalSettings {
  readonly protocol: OtlpProtocol;
  /** From the config: base endpoint (`http://host:4317` / `http://host:4318`). Undefined = env. */
  readonly endpoint?: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

export interface MetricsExportSettings extends OtlpSignalSettings {
  readonly intervalMs: number;
  /** Monotonic sums and histograms as cumulative (default) or delta since the previous export. */
  readonly temporality?: 'cumulative' | 'delta';
}

export interface LogsExportSettings extends OtlpSignalSettings {
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMs: number;
}

export function protocolFromEnv(
  signal: 'metrics' | 'logs',
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  return env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_PROTOCOL`] ?? env['OTEL_EXPORTER_OTLP_PROTOCOL'];
}

/** An OTLP endpoint is configured through the environment for this signal. */
export function endpointFromEnv(
  signal: 'metrics' | 'logs',
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const v = env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`] ?? env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  return v === undefined || v === '' ? undefined : v;
}

function httpUrl(endpoint: string, signal: 'metrics' | 'logs'): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/${signal}`;
}

function grpcMetadata(headers: Readonly<Record<string, string>>): Metadata | undefined {
  const keys = Object.keys(headers);
  if (keys.length === 0) return undefined;
  const md = new Metadata();
  for (const k of keys) md.set(k, headers[k]!);
  return md;
}

export function createMetricExporter(s: OtlpSignalSettings): PushMetricExporter {
  const timeoutMillis = s.timeoutMs;
  const hasHeaders = Object.keys(s.headers).length > 0;
  switch (s.protocol) {
    case 'grpc': {
      const metadata = grpcMetadata(s.headers);
      return new GrpcMetricExporter({
        timeoutMillis,
        ...(s.endpoint ? { url: s.endpoint } : {}),
        ...(metadata ? { metadata } : {}),
      });
    }
    case 'http/protobuf':
      return new ProtoMetricExporter({
        timeoutMillis,
        ...(s.endpoint ? { url: httpUrl(s.endpoint, 'metrics') } : {}),
        ...(hasHeaders ? { headers: { ...s.headers } } : {}),
      });
    case 'http/json':
      return new JsonMetricExporter({
        timeoutMillis,
        ...(s.endpoint ? { url: httpUrl(s.endpoint, 'metrics') } : {}),
        ...(hasHeaders ? { headers: { ...s.headers } } : {}),
      });
  }
}

/**
 * Data points per OTLP metrics request. At 1,000 pods one export holds ~170,000 points (~25 MB of
 * protobuf): as one request it exceeds the 4 MiB a gRPC receiver (the OTel Collector's default
 * `max_recv_msg_size_mib`) accepts, and its buffer and HTTP copies are a peak of their own. Histogram
 * points weigh more (see `pointWeight`).
 */
export const METRIC_POINTS_PER_REQUEST = 5_000;

/** A point's share of a request: number points 1, histogram points 1 + a quarter of their buckets. */
function pointWeight(metric: MetricData): number {
  if (metric.dataPointType !== DataPointType.HISTOGRAM) return 1;
  const p = metric.dataPoints[0] as DataPoint<Histogram> | undefined;
  return 1 + Math.ceil((p?.value.buckets.counts.length ?? 0) / 4);
}

/**
 * Split one collection into requests of at most `maxPoints` (weighted) data points: metrics in order, a
 * metric with more points than fit is cut across requests (its descriptor repeated). Always at least one
 * request (an empty collection is still exported, as the SDK does).
 */
export function splitResourceMetrics(rm: ResourceMetrics, maxPoints: number): ResourceMetrics[] {
  const out: ResourceMetrics[] = [];
  let scopes: ScopeMetrics[] = [];
  let room = maxPoints;
  const flush = (): void => {
    out.push({ resource: rm.resource, scopeMetrics: scopes });
    scopes = [];
    room = maxPoints;
  };
  const add = (scope: ScopeMetrics['scope'], metric: MetricData): void => {
    const last = scopes[scopes.length - 1];
    if (last && last.scope === scope) last.metrics.push(metric);
    else scopes.push({ scope, metrics: [metric] });
  };
  for (const sm of rm.scopeMetrics) {
    for (const metric of sm.metrics) {
      const w = pointWeight(metric);
      const n = metric.dataPoints.length;
      if (n * w <= room) {
        add(sm.scope, metric);
        room -= n * w;
        continue;
      }
      let i = 0;
      while (i < n) {
        let take = Math.floor(room / w);
        if (take === 0) {
          if (scopes.length > 0) {
            flush();
            continue;
          }
          take = 1; // a single point heavier than a whole request still goes
        }
        const end = Math.min(n, i + take);
        add(sm.scope, { ...metric, dataPoints: metric.dataPoints.slice(i, end) } as MetricData);
        room -= (end - i) * w;
        i = end;
        if (room <= 0 && i < n) flush();
      }
    }
  }
  if (scopes.length > 0 || out.length === 0) flush();
  return out;
}

/**
 * Counts failed metric exports; everything else is delegated. One collection is sent as several requests
 * of at most `maxPointsPerRequest` points, one after another (the next once the previous is answered);
 * the first failed request fails the export (the rest is not sent: the next export carries cumulative
 * values again).
 */
export class CountingMetricExporter implements PushMetricExporter {
  readonly #inner: PushMetricExporter;
  readonly #onResult: (ok: boolean, error?: Error) => void;
  readonly #maxPoints: number;
  readonly selectAggregationTemporality: PushMetricExporter['selectAggregationTemporality'];
  readonly selectAggregation: PushMetricExporter['selectAggregation'];

  constructor(
    inner: PushMetricExporter,
    onResult: (ok: boolean, error?: Error) => void,
    options: { maxPointsPerRequest?: number } = {},
  ) {
    this.#inner = inner;
    this.#onResult = onResult;
    this.#maxPoints = Math.max(1, options.maxPointsPerRequest ?? METRIC_POINTS_PER_REQUEST);
    this.selectAggregationTemporality = inner.selectAggregationTemporality?.bind(inner);
    this.selectAggregation = inner.selectAggregation?.bind(inner);
  }

  export(metrics: ResourceMetrics, cb: (result: ExportResult) => void): void {
    const requests = splitResourceMetrics(metrics, this.#maxPoints);
    let i = 0;
    const next = (): void => {
      const request = requests[i]!;
      requests[i++] = undefined as never; // let a sent request's points go
      this.#inner.export(request, (r) => {
        if (r.code === ExportResultCode.SUCCESS && i < requests.length) {
          next();
          return;
        }
        this.#onResult(r.code === ExportResultCode.SUCCESS, r.error);
        cb(r);
      });
    };
    next();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
}
