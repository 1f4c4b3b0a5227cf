// The options podnet's OTLP settings give the SDK exporters (metrics: otlp-metric-exporter.ts; logs, in the
// export worker: otlp-log-exporter.ts), in the shape the SDK's exporter constructors take. What the config
// leaves unset the SDK reads from the environment itself: OTEL_EXPORTER_OTLP_[<SIGNAL>_]ENDPOINT, _HEADERS,
// _COMPRESSION, _CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE (and _INSECURE for gRPC); what the config
// sets wins over them.
import { readFileSync } from 'node:fs';
import type { ChannelCredentials, Metadata } from '@grpc/grpc-js';
import type { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import type { OtlpSignalSettings } from './exporters.ts';

export interface SdkExporterOptions {
  timeoutMillis: number;
  url?: string;
  headers?: Record<string, string>;
  metadata?: Metadata;
  compression?: CompressionAlgorithm;
  /** HTTP: the https agent's CA and client certificate. */
  httpAgentOptions?: { ca?: Buffer; cert?: Buffer; key?: Buffer; keepAlive: boolean };
  /** gRPC. */
  credentials?: ChannelCredentials;
}

function read(path: string | undefined, what: string): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`exporters.otlp.tls.${what}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/** gRPC's package is loaded only for gRPC (a worker thread loads its modules anew: it takes a while). */
export async function sdkExporterOptions(
  s: OtlpSignalSettings,
  signal: 'metrics' | 'logs',
): Promise<SdkExporterOptions> {
  const o: SdkExporterOptions = { timeoutMillis: s.timeoutMs };
  const keys = Object.keys(s.headers);
  const grpc = s.protocol === 'grpc' ? await import('@grpc/grpc-js') : undefined;
  if (grpc) {
    if (s.endpoint) o.url = s.endpoint;
    if (keys.length > 0) {
      const md = new grpc.Metadata();
      for (const k of keys) md.set(k, s.headers[k]!);
      o.metadata = md;
    }
  } else {
    if (s.endpoint) o.url = `${s.endpoint.replace(/\/+$/, '')}/v1/${signal}`;
    if (keys.length > 0) o.headers = { ...s.headers };
  }
  if (s.compression !== undefined) o.compression = s.compression as CompressionAlgorithm; // the enum's values are 'gzip' and 'none'
  const tls = s.tls;
  if (tls) {
    const ca = read(tls.caFile, 'ca_file');
    const cert = read(tls.certFile, 'cert_file');
    const key = read(tls.keyFile, 'key_file');
    if (grpc) {
      o.credentials = tls.insecure
        ? grpc.credentials.createInsecure()
        : grpc.credentials.createSsl(ca ?? null, key ?? null, cert ?? null);
    } else if (ca || cert || key) {
      o.httpAgentOptions = {
        keepAlive: true,
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
      };
    }
  }
  return o;
}
