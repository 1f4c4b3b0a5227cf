// The event export worker's direct path (OTLP/HTTP protobuf and gRPC): record batches from the main thread
// (Float64Array slots, log-export-protocol.ts) are encoded as they arrive into ExportLogsServiceRequests of
// max_export_batch_size records by receiver/otel/protobuf/logs.ts — no SDK LogRecord per event, and no
// batch kept on the JavaScript heap until its export (what outlives a young-generation GC costs). It
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
import { LogsEncoder, type LogsEncoderOptions, recordEnd } from './protobuf/logs.ts';

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
 * Exports in flight at once: records are encoded while the previous request is on the wire (the SDK's
 * BatchLogRecordProcessor has one export in flight and queues records meanwhile).
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
  /** Sealed requests waiting for an export slot. */
  #ready: Encoded[] = [];
  #readyN = 0;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
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

  /** Records queued (encoded), not yet in an export. */
  get queued(): number {
    return this.#readyN + this.#encoder.pending;
  }

  /**
   * Queue the `n` records of one batch (`data` as the protocol lays them out): encoded now, into requests
   * of max_export_batch_size records (the SDK's batches: whole records, in order); a partial request is
   * sealed after schedule_delay.
   */
  push(
    data: Float64Array,
    extra: readonly unknown[],
    n: number,
    table: readonly TableEntry[],
    observed: [number, number],
  ): void {
    if (this.queued + n > this.#s.maxQueueSize) {
      this.#hooks.onQueueFull(n);
      return;
    }
    const size = this.#batchSize();
    let at = 0;
    let left = n;
    while (left > 0) {
      const room = size - this.#encoder.pending;
      const take = Math.min(room, left);
      const before = this.#encoder.pending;
      try {
        this.#encoder.add({ data, extra, table, at, n: take, observed });
      } catch (err) {
        // Never expected (the main thread encodes what it validated); counted, never silent. What the
        // open request held is lost with it (its buffers may hold a partial record): the records before
        // this run, and all of this batch not yet sealed (`left` still counts this run's).
        const lost = before + left;
        this.#encoder.finish();
        this.#hooks.onResult(
          false,
          lost,
          new Error(`event records rejected by the OTLP encoder: ${String(err)}`),
        );
        return;
      }
      left -= take;
      if (left > 0) for (let k = 0; k < take; k++) at = recordEnd(data, at);
      if (this.#encoder.pending >= size) this.#seal();
    }
    if (this.#encoder.pending > 0 && this.#timer === undefined)
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#seal();
      }, this.#s.scheduledDelayMs);
    this.#pump();
  }

  /**
   * Export everything queued now; resolves when what was sealed here is exported. Records that arrive
   * meanwhile open a new request and are not waited for (it would be sealed only by schedule_delay): the
   * caller's next flush round takes them (log-export.ts forceFlush loops until nothing is held).
   */
  forceFlush(): Promise<void> {
    this.#seal();
    if (this.#flushed()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #flushed(): boolean {
    return this.#readyN === 0 && this.#inFlight === 0;
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    if (this.#timer) clearTimeout(this.#timer);
    await this.#transport.shutdown();
  }

  #batchSize(): number {
    return Math.max(1, Math.min(this.#s.maxExportBatchSize, this.#s.maxQueueSize));
  }

  /** Close the open request (if any) and queue it for export. */
  #seal(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const n = this.#encoder.pending;
    if (n > 0) {
      this.#ready.push({ bytes: this.#encoder.finish(), n });
      this.#readyN += n;
    }
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight < MAX_IN_FLIGHT && this.#ready.length > 0) {
      const e = this.#ready.shift()!;
      this.#readyN -= e.n;
      this.#inFlight++;
      this.#transport.export([e], (r: ExportResult) => {
        this.#inFlight--;
        const ok = r.code === ExportResultCode.SUCCESS;
        // Its bytes are written over by a later request: only after a success (the receiver read them
        // all); a failed or timed-out request's socket may still hold a reference, so its buffer is left
        // to the garbage collector.
        if (ok) this.#encoder.release(e.bytes);
        this.#hooks.onResult(ok, e.n, r.error);
        this.#pump();
      });
    }
    if (this.#flushed()) for (const fn of this.#idle.splice(0)) fn();
  }
}
