// The OTLP log exporter of the event export worker (official SDK packages, chosen by protocol), wrapped to
// count what it sent and what failed. Only the package of the configured protocol is loaded (dynamic
// import): a worker thread loads its modules anew, and the three log exporters with gRPC would take it
// seconds on a busy node. Settings as in exporters.ts: the endpoint from the config (HTTP ones get
// `/v1/logs` appended); without one the exporter reads OTEL_EXPORTER_OTLP_[LOGS_]ENDPOINT and _HEADERS.
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { OtlpSignalSettings } from './exporters.ts';

export async function loadLogExporter(s: OtlpSignalSettings): Promise<LogRecordExporter> {
  const timeoutMillis = s.timeoutMs;
  const keys = Object.keys(s.headers);
  const url = s.endpoint ? `${s.endpoint.replace(/\/+$/, '')}/v1/logs` : undefined;
  switch (s.protocol) {
    case 'grpc': {
      const [{ OTLPLogExporter }, { Metadata }] = await Promise.all([
        import('@opentelemetry/exporter-logs-otlp-grpc'),
        import('@grpc/grpc-js'),
      ]);
      let metadata: InstanceType<typeof Metadata> | undefined;
      if (keys.length > 0) {
        metadata = new Metadata();
        for (const k of keys) metadata.set(k, s.headers[k]!);
      }
      return new OTLPLogExporter({
        timeoutMillis,
        ...(s.endpoint ? { url: s.endpoint } : {}),
        ...(metadata ? { metadata } : {}),
      });
    }
    case 'http/protobuf': {
      const [{ OTLPLogExporter }] = await Promise.all([
        import('@opentelemetry/exporter-logs-otlp-proto'),
        import('node:http'), // loaded now, not by the first export (its timeout runs meanwhile)
      ]);
      return new OTLPLogExporter({
        timeoutMillis,
        ...(url ? { url } : {}),
        ...(keys.length > 0 ? { headers: { ...s.headers } } : {}),
      });
    }
    case 'http/json': {
      const [{ OTLPLogExporter }] = await Promise.all([
        import('@opentelemetry/exporter-logs-otlp-http'),
        import('node:http'),
      ]);
      return new OTLPLogExporter({
        timeoutMillis,
        ...(url ? { url } : {}),
        ...(keys.length > 0 ? { headers: { ...s.headers } } : {}),
      });
    }
  }
}

/** Counts log records exported and lost to failed exports. */
export class CountingLogExporter implements LogRecordExporter {
  readonly #inner: LogRecordExporter;
  readonly #onResult: (ok: boolean, records: number, error?: Error) => void;

  constructor(inner: LogRecordExporter, onResult: (ok: boolean, records: number, error?: Error) => void) {
    this.#inner = inner;
    this.#onResult = onResult;
  }

  export(records: ReadableLogRecord[], cb: (result: ExportResult) => void): void {
    this.#inner.export(records, (r) => {
      this.#onResult(r.code === ExportResultCode.SUCCESS, records.length, r.error);
      cb(r);
    });
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }
}
