// OTLP exporter settings of the config: `exporters.otlp` merged with the OpenTelemetry SDK environment
// variables (OTEL_{METRICS,LOGS}_EXPORTER, OTEL_EXPORTER_OTLP_[<SIGNAL>_]{PROTOCOL,TIMEOUT,ENDPOINT},
// OTEL_METRIC_EXPORT_INTERVAL, OTEL_SDK_DISABLED, the temporality preference) and the tls files checked.
// Its own file so load.ts keeps the file parsing and the rest of the resolution. Problems are
// pushed to the caller's `issues` in the order load.ts has always reported them: exporter lists first,
// then the shared settings (otlpSettings), then the per-signal ones (otlpSignals).
import { accessSync, constants } from 'node:fs';
import {
  endpointFromEnv,
  type MetricsExportSettings,
  OTLP_PROTOCOLS,
  type OtlpProtocol,
  type OtlpSignalSettings,
  protocolFromEnv,
} from '../otel/exporters.ts';
import type { ConfigIssue } from './errors.ts';
import type { RawConfig } from './schema.ts';

export type OtlpResolved = OtlpSignalSettings;

/** What the pipeline takes (exporters.ts), with the temporality always resolved. */
export type OtlpMetricsResolved = MetricsExportSettings & {
  readonly temporality: NonNullable<MetricsExportSettings['temporality']>;
};

type Signal = 'metrics' | 'logs';

/** OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER as sets; undefined when unset. */
export interface ExporterLists {
  readonly metrics: Set<string> | undefined;
  readonly logs: Set<string> | undefined;
}

export function exporterLists(env: NodeJS.ProcessEnv, issues: ConfigIssue[]): ExporterLists {
  const exporterList = (name: string, allowed: readonly string[]): Set<string> | undefined => {
    const v = env[name];
    if (v === undefined || v.trim() === '') return undefined;
    const list = v
      .split(',')
      .map((x) => x.trim().toLowerCase())
      .filter(Boolean);
    const bad = list.filter((x) => !allowed.includes(x));
    if (bad.length > 0)
      issues.push({
        path: `env ${name}`,
        message: `got ${JSON.stringify(v)}, expected a comma-separated list of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`,
      });
    return new Set(list);
  };
  return {
    metrics: exporterList('OTEL_METRICS_EXPORTER', ['otlp', 'prometheus', 'none']),
    logs: exporterList('OTEL_LOGS_EXPORTER', ['otlp', 'none']),
  };
}

export interface OtlpContext {
  readonly raw: RawConfig;
  readonly env: NodeJS.ProcessEnv;
  readonly issues: ConfigIssue[];
  readonly exporters: ExporterLists;
  /** Was `path` written in the file (as opposed to filled in by a default)? */
  readonly explicit: (...path: string[]) => boolean;
  /** A standard integer env var; undefined when unset; an issue when malformed. */
  readonly envInt: (name: string, min: number) => number | undefined;
}

/** The settings shared by both signals, checked before the rest of the config's env variables. */
export interface OtlpSettings {
  readonly intervalMs: number;
  readonly sdkDisabled: boolean;
}

export function otlpSettings(ctx: OtlpContext): OtlpSettings {
  const { raw, env, issues } = ctx;
  const otlp = raw.exporters.otlp;
  let intervalMs = otlp.interval ?? raw.collection_interval;
  if (otlp.interval === undefined && env['OTEL_METRIC_EXPORT_INTERVAL']) {
    const v = Number(env['OTEL_METRIC_EXPORT_INTERVAL']);
    if (!Number.isInteger(v) || v < 100) {
      issues.push({
        path: 'env OTEL_METRIC_EXPORT_INTERVAL',
        message: `got ${JSON.stringify(env['OTEL_METRIC_EXPORT_INTERVAL'])}, expected an integer number of milliseconds >= 100`,
      });
    } else intervalMs = v;
  }
  // OTEL_SDK_DISABLED=true: no OTLP export of either signal (the local server and /metrics stay).
  const sdkDisabledRaw = (env['OTEL_SDK_DISABLED'] ?? '').trim().toLowerCase();
  if (sdkDisabledRaw !== '' && sdkDisabledRaw !== 'true' && sdkDisabledRaw !== 'false')
    issues.push({
      path: 'env OTEL_SDK_DISABLED',
      message: `got ${JSON.stringify(env['OTEL_SDK_DISABLED'])}, expected "true" or "false"`,
    });
  const sdkDisabled = sdkDisabledRaw === 'true';
  const tls = otlp.tls;
  if (tls) {
    for (const k of ['ca_file', 'cert_file', 'key_file'] as const) {
      const f = tls[k];
      if (f === undefined) continue;
      try {
        accessSync(f, constants.R_OK);
      } catch (err) {
        issues.push({
          path: `exporters.otlp.tls.${k}`,
          message: `got ${JSON.stringify(f)}, cannot read it (${(err as Error).message})`,
        });
      }
    }
    if ((tls.cert_file === undefined) !== (tls.key_file === undefined))
      issues.push({
        path: 'exporters.otlp.tls',
        message: 'cert_file and key_file go together (a client certificate and its key)',
      });
  }
  return { intervalMs, sdkDisabled };
}

/** The OTLP exporter of each signal, or undefined when that signal is not exported over OTLP. */
export function otlpSignals(
  ctx: OtlpContext,
  settings: OtlpSettings,
): { otlpMetrics: OtlpMetricsResolved | undefined; otlpLogs: OtlpResolved | undefined } {
  const { raw, env, issues, explicit, envInt } = ctx;
  const { intervalMs, sdkDisabled } = settings;
  const otlp = raw.exporters.otlp;
  const tls = otlp.tls;
  const protocolFor = (signal: Signal): OtlpProtocol => {
    if (otlp.protocol) return otlp.protocol;
    const fromEnv = protocolFromEnv(signal, env);
    if (fromEnv === undefined || fromEnv === '') return 'http/protobuf';
    if ((OTLP_PROTOCOLS as readonly string[]).includes(fromEnv)) return fromEnv as OtlpProtocol;
    issues.push({
      path: `env OTEL_EXPORTER_OTLP_${env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_PROTOCOL`] ? `${signal.toUpperCase()}_` : ''}PROTOCOL`,
      message: `got ${JSON.stringify(fromEnv)}, expected one of ${OTLP_PROTOCOLS.map((p) => JSON.stringify(p)).join(', ')}`,
    });
    return 'http/protobuf';
  };
  // OTLP per signal: `exporters.otlp.enabled` when written; else OTEL_{METRICS,LOGS}_EXPORTER when set
  // (`otlp` on, `none` off); else on when an endpoint is configured or in the environment.
  const otlpOn = (signal: Signal): boolean => {
    const listed = ctx.exporters[signal];
    const on =
      otlp.enabled ??
      (listed !== undefined
        ? listed.has('otlp')
        : otlp.endpoint !== undefined || endpointFromEnv(signal, env) !== undefined);
    return on && !sdkDisabled && (signal === 'metrics' ? otlp.metrics : otlp.logs);
  };
  const timeoutFor = (signal: Signal): number => {
    if (explicit('exporters', 'otlp', 'timeout')) return otlp.timeout;
    return (
      envInt(`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_TIMEOUT`, 1) ??
      envInt('OTEL_EXPORTER_OTLP_TIMEOUT', 1) ??
      (signal === 'logs' ? envInt('OTEL_BLRP_EXPORT_TIMEOUT', 1) : envInt('OTEL_METRIC_EXPORT_TIMEOUT', 1)) ??
      otlp.timeout
    );
  };
  const protocols = { metrics: protocolFor('metrics'), logs: protocolFor('logs') };
  const base = (signal: Signal): OtlpResolved => ({
    protocol: protocols[signal],
    endpoint: otlp.endpoint,
    headers: otlp.headers,
    timeoutMs: timeoutFor(signal),
    ...(otlp.compression !== undefined ? { compression: otlp.compression } : {}),
    ...(tls
      ? {
          tls: {
            caFile: tls.ca_file,
            certFile: tls.cert_file,
            keyFile: tls.key_file,
            insecure: tls.insecure,
          },
        }
      : {}),
  });
  let temporality: 'cumulative' | 'delta' = otlp.temporality ?? 'cumulative';
  const tp = env['OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE'];
  if (otlp.temporality === undefined && tp !== undefined && tp !== '') {
    const v = tp.toLowerCase();
    // lowmemory makes only synchronous counters and histograms delta; kernel counters are observed values.
    if (v === 'delta') temporality = 'delta';
    else if (v !== 'cumulative' && v !== 'lowmemory')
      issues.push({
        path: 'env OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE',
        message: `got ${JSON.stringify(tp)}, expected one of "cumulative", "delta", "lowmemory"`,
      });
  }
  const otlpMetrics = otlpOn('metrics') ? { ...base('metrics'), intervalMs, temporality } : undefined;
  const otlpLogs = otlpOn('logs') ? base('logs') : undefined;
  return { otlpMetrics, otlpLogs };
}
