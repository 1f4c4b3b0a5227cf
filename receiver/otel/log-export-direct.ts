// The event export worker's direct path (OTLP/HTTP protobuf and gRPC): record batches from the main thread
// are queued as they arrived (compact arrays, log-export-protocol.ts) and encoded into one
// ExportLogsServiceRequest per export by receiver/otel/protobuf/logs.ts — no SDK LogRecord per event. It
// takes the place of the SDK's LoggerProvider → BatchLogRecordProcessor → OTLPLogExporter with the same
// settings (max_queue_size, max_export_batch_size, schedule_delay, timeout) and the SDK's own transports
// (HTTP with compression, TLS, headers and retries; gRPC), so only the serialization differs, and its
// bytes are the SDK serializer's (test/otel/protobuf/logs.test.ts).
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from '@opentelemetry/otlp-exporter-base/node-http';
import {
  type IExporterMetricsHelper,
  type ISerializer,
  ProtobufLogsSerializer,
} from '@opentelemetry/otlp-transformer';
import type { LogsExportSettings } from './exporters.ts';
import type { TableEntry } from './log-export-protocol.ts';
import { sdkExporterOptions } from './otlp-options.ts';
import { LogsEncoder, type LogsEncoderOptions, type RecordRun, recordEnd } from './protobuf/logs.ts';

/** One encoded request and the records in it. */
interface Encoded {
  readonly bytes: Uint8Array;
  readonly n: number;
}

const serializer: ISerializer<Encoded[], unknown> = {
  serializeRequest: (items) => items[0]?.bytes,
  deserializeResponse: (b) => ProtobufLogsSerializer.deserializeResponse(b),
};
const itemsHelper: IExporterMetricsHelper<Encoded[]> = {
  name: 'log',
  countItems: (items) => items.reduce((n, e) => n + e.n, 0),
};

async function createTransport(s: LogsExportSettings): Promise<OTLPExporterBase<Encoded[]>> {
  const o = await sdkExporterOptions(s, 'logs');
  if (s.protocol === 'grpc') {
    const { convertLegacyOtlpGrpcOptions, createOtlpGrpcExportDelegate } = await import(
      '@opentelemetry/otlp-grpc-exporter-base'
    );
    return new OTLPExporterBase(
      createOtlpGrpcExportDelegate(
        convertLegacyOtlpGrpcOptions(o, 'LOGS'),
        serializer,
        'otlp_grpc_log_exporter',
        itemsHelper,
        undefined,
        'LogsExportService',
        '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
      ),
    );
  }
  await import('node:http'); // loaded now, not by the first export (its timeout runs meanwhile)
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(o, 'LOGS', 'v1/logs', { 'Content-Type': 'application/x-protobuf' }),
      serializer,
      'otlp_http_log_exporter',
      itemsHelper,
      undefined,
    ),
  );
}

/**
 * Exports in flight at once: the next request is encoded while the previous one is on the wire (the
 * SDK's BatchLogRecordProcessor has one in flight and builds the next batch meanwhile).
 */
const MAX_IN_FLIGHT = 2;

export interface DirectLogExportHooks {
  /** An export finished: `n` records sent (ok) or lost (the error). */
  onResult(ok: boolean, n: number, error?: Error): void;
  /** Records refused because the queue was full (never expected: the main thread bounds what it posts). */
  onQueueFull(n: number): void;
}

export class DirectLogExport {
  readonly #s: LogsExportSettings;
  readonly #encoder: LogsEncoder;
  readonly #transport: OTLPExporterBase<Encoded[]>;
  readonly #hooks: DirectLogExportHooks;
  #runs: RecordRun[] = [];
  #queued = 0;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Export below max_export_batch_size too (schedule_delay passed, or a flush). */
  #due = false;
  #idle: Array<() => void> = [];

  static async create(
    s: LogsExportSettings,
    encoder: LogsEncoderOptions,
    hooks: DirectLogExportHooks,
  ): Promise<DirectLogExport> {
    return new DirectLogExport(s, new LogsEncoder(encoder), await createTransport(s), hooks);
  }

  private constructor(
    s: LogsExportSettings,
    encoder: LogsEncoder,
    transport: OTLPExporterBase<Encoded[]>,
    hooks: DirectLogExportHooks,
  ) {
    this.#s = s;
    this.#encoder = encoder;
    this.#transport = transport;
    this.#hooks = hooks;
  }

  /** Records queued, not yet in an export. */
  get queued(): number {
    return this.#queued;
  }

  /** Queue the `n` records of one batch (`data` as the protocol lays them out). */
  push(data: readonly unknown[], n: number, table: readonly TableEntry[], observed: [number, number]): void {
    if (this.#queued + n > this.#s.maxQueueSize) {
      this.#hooks.onQueueFull(n);
      return;
    }
    this.#runs.push({ data, table, at: 0, n, observed });
    this.#queued += n;
    if (this.#queued >= this.#batchSize()) this.#pump();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#due = true;
        this.#pump();
      }, this.#s.scheduledDelayMs);
    }
  }

  /** Export everything queued; resolves when no export is in flight and nothing is queued. */
  forceFlush(): Promise<void> {
    this.#due = true;
    this.#pump();
    if (this.#queued === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    if (this.#timer) clearTimeout(this.#timer);
    await this.#transport.shutdown();
  }

  #batchSize(): number {
    return Math.min(this.#s.maxExportBatchSize, this.#s.maxQueueSize);
  }

  #pump(): void {
    while (this.#inFlight < MAX_IN_FLIGHT && this.#queued > 0) {
      const size = this.#batchSize();
      if (this.#queued < size && !this.#due) break;
      this.#exportOne(this.#take(size));
    }
    if (this.#queued === 0) {
      this.#due = false;
      if (this.#timer) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
    }
    if (this.#queued === 0 && this.#inFlight === 0) for (const fn of this.#idle.splice(0)) fn();
  }

  /** Up to `size` records from the head of the queue (a run is split where the batch ends). */
  #take(size: number): RecordRun[] {
    const out: RecordRun[] = [];
    let left = size;
    while (left > 0 && this.#runs.length > 0) {
      const r = this.#runs[0]!;
      if (r.n <= left) {
        out.push(r);
        this.#runs.shift();
        left -= r.n;
        continue;
      }
      let at = r.at;
      for (let k = 0; k < left; k++) at = recordEnd(r.data, at);
      out.push({ ...r, n: left });
      this.#runs[0] = { ...r, at, n: r.n - left };
      left = 0;
    }
    const n = size - left;
    this.#queued -= n;
    return out;
  }

  #exportOne(runs: RecordRun[]): void {
    let n = 0;
    for (const r of runs) n += r.n;
    let bytes: Uint8Array;
    try {
      // A copy: the encoder's buffer is reused, the transport may retry later.
      bytes = Buffer.from(this.#encoder.encode(runs));
    } catch (err) {
      // Never expected (the main thread encodes what it validated); counted, never silent.
      this.#hooks.onResult(false, n, new Error(`event records rejected by the OTLP encoder: ${String(err)}`));
      return;
    }
    this.#inFlight++;
    this.#transport.export([{ bytes, n }], (r: ExportResult) => {
      this.#inFlight--;
      this.#hooks.onResult(r.code === ExportResultCode.SUCCESS, n, r.error);
      this.#pump();
    });
  }
}
