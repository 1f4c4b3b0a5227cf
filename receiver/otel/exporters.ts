// OTLP export settings, request splitting and the counting metric exporter. The exporters themselves
// (official SDK transports) are built in otlp-metric-exporter.ts and, in the event export worker,
// otlp-log-exporter.ts.
//
// Protocol: config, else OTEL_EXPORTER_OTLP_{METRICS,LOGS}_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else
// http/protobuf. The endpoint from the config is passed to the exporter (the HTTP ones get `/v1/<signal>`
// appended); without one the exporters read OTEL_EXPORTER_OTLP_[<SIGNAL>_]ENDPOINT and _HEADERS themselves.
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import {
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
  type PushMetricExporter,
  type ResourceMetrics,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import type { EntityResources } from './entity-resources.ts';
import type { EncodedMetricsRequest } from './protobuf/metrics.ts';

export const OTLP_PROTOCOLS = ['grpc', 'http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export interface OtlpSignalSettings {
  readonly protocol: OtlpProtocol;
  /** From the config: base endpoint (`http://host:4317` / `http://host:4318`). Undefined = env. */
  readonly endpoint?: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** From the config; unset = OTEL_EXPORTER_OTLP_[<SIGNAL>_]COMPRESSION (read by the SDK exporter). */
  readonly compression?: 'gzip' | 'none' | undefined;
  /** From the config; unset = the OTEL_EXPORTER_OTLP_*CERTIFICATE / _CLIENT_KEY variables. */
  readonly tls?: OtlpTlsSettings | undefined;
}

export interface OtlpTlsSettings {
  /** PEM file of the CA that signs the endpoint's certificate. */
  readonly caFile?: string | undefined;
  /** PEM client certificate (chain) and key, for mutual TLS. */
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  /** gRPC only: plaintext even for an https:// endpoint (as the Collector's `tls.insecure`). */
  readonly insecure?: boolean | undefined;
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

/**
 * Sends one OTLP metrics request holding several resources (otlp-metric-exporter.ts): a list of
 * ResourceMetrics, or (protobuf protocols) a request `encode` wrote.
 */
export interface MultiResourceMetricExporter {
  export(request: ResourceMetrics[] | EncodedMetricsRequest, cb: (result: ExportResult) => void): void;
  /**
   * The collection's requests encoded directly (protobuf/metrics.ts), made as they are iterated, or
   * undefined when this exporter takes ResourceMetrics lists (JSON) or the collection holds a point type
   * the encoder does not write.
   */
  encode?(
    rm: ResourceMetrics,
    entities: EntityResources | undefined,
    maxPoints: number,
  ): Iterable<EncodedMetricsRequest> | undefined;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
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
 * Split one collection (one ResourceMetrics per entity) into requests of at most `maxPoints` (weighted)
 * data points: resources, metrics and points in order; a resource or a metric with more points than fit
 * is cut across requests (its resource and descriptor repeated). Always at least one request (an empty
 * collection is still exported, as the SDK does).
 */
export function splitResourceMetrics(
  rms: readonly ResourceMetrics[],
  maxPoints: number,
): ResourceMetrics[][] {
  const out: ResourceMetrics[][] = [];
  let request: ResourceMetrics[] = [];
  let room = maxPoints;
  const flush = (): void => {
    out.push(request);
    request = [];
    room = maxPoints;
  };
  const add = (rm: ResourceMetrics, scope: ScopeMetrics['scope'], metric: MetricData): void => {
    let r = request[request.length - 1];
    if (!r || r.resource !== rm.resource) {
      r = { resource: rm.resource, scopeMetrics: [] };
      request.push(r);
    }
    const last = r.scopeMetrics[r.scopeMetrics.length - 1];
    if (last && last.scope === scope) last.metrics.push(metric);
    else r.scopeMetrics.push({ scope, metrics: [metric] });
  };
  for (const rm of rms) {
    for (const sm of rm.scopeMetrics) {
      for (const metric of sm.metrics) {
        const w = pointWeight(metric);
        const n = metric.dataPoints.length;
        if (n * w <= room) {
          add(rm, sm.scope, metric);
          room -= n * w;
          continue;
        }
        let i = 0;
        while (i < n) {
          // Not below 0: after a point heavier than a whole request the room is negative.
          let take = Math.max(0, Math.floor(room / w));
          if (take === 0) {
            if (request.length > 0) {
              flush();
              continue;
            }
            take = 1; // a single point heavier than a whole request still goes
          }
          const end = Math.min(n, i + take);
          add(rm, sm.scope, { ...metric, dataPoints: metric.dataPoints.slice(i, end) } as MetricData);
          room -= (end - i) * w;
          i = end;
          if (room <= 0 && i < n) flush();
        }
      }
    }
  }
  if (request.length > 0 || out.length === 0) {
    if (request.length === 0 && rms.length > 0)
      request.push({ resource: rms[0]!.resource, scopeMetrics: [] });
    flush();
  }
  return out;
}

/**
 * The metric exporter the periodic reader drives: it regroups each collection into one Resource per entity
 * (entity-resources.ts) and counts failed exports. One collection is sent as several requests of at most
 * `maxPointsPerRequest` points, one after another (the next once the previous is answered); the first
 * failed request fails the export (the rest is not sent: the next export carries cumulative values again).
 */
export class CountingMetricExporter implements PushMetricExporter {
  readonly #inner: MultiResourceMetricExporter;
  readonly #onResult: (ok: boolean, error?: Error) => void;
  readonly #maxPoints: number;
  readonly #entities: EntityResources | undefined;

  constructor(
    inner: MultiResourceMetricExporter,
    onResult: (ok: boolean, error?: Error) => void,
    options: { maxPointsPerRequest?: number; entities?: EntityResources } = {},
  ) {
    this.#inner = inner;
    this.#onResult = onResult;
    this.#maxPoints = Math.max(1, options.maxPointsPerRequest ?? METRIC_POINTS_PER_REQUEST);
    this.#entities = options.entities;
  }

  export(metrics: ResourceMetrics, cb: (result: ExportResult) => void): void {
    // Requests are made as they are sent (the next once the previous is answered): a collection's
    // encoded bytes are not all held at once.
    const requests: Iterator<ResourceMetrics[] | EncodedMetricsRequest> = (this.#inner.encode?.(
      metrics,
      this.#entities,
      this.#maxPoints,
    ) ??
      splitResourceMetrics(this.#entities ? this.#entities.byEntity(metrics) : [metrics], this.#maxPoints))[
      Symbol.iterator
    ]();
    const done = (r: ExportResult): void => {
      if (r.code !== ExportResultCode.SUCCESS) requests.return?.();
      this.#onResult(r.code === ExportResultCode.SUCCESS, r.error);
      cb(r);
    };
    const next = (): void => {
      let n: IteratorResult<ResourceMetrics[] | EncodedMetricsRequest>;
      try {
        n = requests.next();
      } catch (err) {
        done({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
        return;
      }
      if (n.done) {
        done({ code: ExportResultCode.SUCCESS });
        return;
      }
      this.#inner.export(n.value, (r) => {
        if (r.code === ExportResultCode.SUCCESS) next();
        else done(r);
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
