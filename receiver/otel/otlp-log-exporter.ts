// The OTLP log exporter of the event export worker (official SDK packages, chosen by protocol), wrapped to
// count what it sent and what failed. Only the package of the configured protocol is loaded (dynamic
// import): a worker thread loads its modules anew, and the three log exporters with gRPC would take it
// seconds on a busy node. Options as for metrics (otlp-options.ts): what the config leaves unset the
// exporter reads from OTEL_EXPORTER_OTLP_[LOGS_]* itself.
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { OtlpSignalSettings } from './exporters.ts';
import { sdkExporterOptions } from './otlp-options.ts';

export async function loadLogExporter(s: OtlpSignalSettings): Promise<LogRecordExporter> {
  const options = await sdkExporterOptions(s, 'logs');
  switch (s.protocol) {
    case 'grpc': {
      const { OTLPLogExporter } = await import('@opentelemetry/exporter-logs-otlp-grpc');
      return new OTLPLogExporter(options);
    }
    case 'http/protobuf': {
      const [{ OTLPLogExporter }] = await Promise.all([
        import('@opentelemetry/exporter-logs-otlp-proto'),
        import('node:http'), // loaded now, not by the first export (its timeout runs meanwhile)
      ]);
      return new OTLPLogExporter(options);
    }
    case 'http/json': {
      const [{ OTLPLogExporter }] = await Promise.all([
        import('@opentelemetry/exporter-logs-otlp-http'),
        import('node:http'),
      ]);
      return new OTLPLogExporter(options);
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
