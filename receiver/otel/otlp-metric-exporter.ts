// The OTLP metric exporter: the SDK's own transports (HTTP with protobuf or JSON, gRPC), fed several
// Resources per request (one per entity, entity-resources.ts) where the SDK's metric exporters take one.
// Protobuf (HTTP and gRPC): the requests are encoded straight from the collection, one at a time, by
// protobuf/metrics.ts (byte for byte what the SDK's serializer writes for the same Resources, checked in
// test/otel/protobuf-metrics.test.ts) and handed to the transport as they are. JSON: the SDK's serializer
// per Resource, the `resourceMetrics` arrays joined.
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from '@opentelemetry/otlp-exporter-base/node-http';
import {
  type IExporterMetricsHelper,
  type ISerializer,
  JsonMetricsSerializer,
  MetricsExporterMetricsHelper,
  ProtobufMetricsSerializer,
} from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { MultiResourceMetricExporter, OtlpSignalSettings } from './exporters.ts';
import { sdkExporterOptions } from './otlp-options.ts';
import { type EncodedMetricsRequest, encodable, metricRequests } from './protobuf/metrics.ts';

type Serializer = ISerializer<ResourceMetrics, unknown>;

function multi(
  one: Serializer,
  join: (parts: Uint8Array[]) => Uint8Array,
): ISerializer<ResourceMetrics[], unknown> {
  return {
    serializeRequest: (rms) => {
      const parts: Uint8Array[] = [];
      for (const rm of rms) {
        const b = one.serializeRequest(rm);
        if (b === undefined) return undefined;
        parts.push(b);
      }
      return join(parts);
    },
    deserializeResponse: (b) => one.deserializeResponse(b),
  };
}

/** Requests encoded by protobuf/metrics.ts go to the transport as they are. */
const encodedSerializer: ISerializer<EncodedMetricsRequest, unknown> = {
  serializeRequest: (r) => r.bytes,
  deserializeResponse: (b) => ProtobufMetricsSerializer.deserializeResponse(b),
};

const encodedItems: IExporterMetricsHelper<EncodedMetricsRequest> = {
  name: MetricsExporterMetricsHelper.name,
  countItems: (r) => r.points,
};

/** An SDK exporter of encoded requests as a MultiResourceMetricExporter. */
function encoded(inner: OTLPExporterBase<EncodedMetricsRequest>): MultiResourceMetricExporter {
  return {
    export: (request, cb) => inner.export(request as EncodedMetricsRequest, cb),
    encode: (rm, entities, maxPoints) =>
      // One buffer for all the requests: CountingMetricExporter asks for the next request once the previous
      // is answered (a failed one ends the export: its bytes are not written over while a retry may read them).
      encodable(rm) ? metricRequests(rm, entities, maxPoints, true) : undefined,
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
  };
}

const jsonMulti = multi(JsonMetricsSerializer as Serializer, (parts) => {
  if (parts.length === 1) return parts[0]!;
  const dec = new TextDecoder();
  const resourceMetrics: unknown[] = [];
  for (const p of parts)
    for (const r of (JSON.parse(dec.decode(p)) as { resourceMetrics?: unknown[] }).resourceMetrics ?? [])
      resourceMetrics.push(r);
  return new TextEncoder().encode(JSON.stringify({ resourceMetrics }));
});

const itemsHelper: IExporterMetricsHelper<ResourceMetrics[]> = {
  name: MetricsExporterMetricsHelper.name,
  countItems: (rms) => rms.reduce((n, rm) => n + MetricsExporterMetricsHelper.countItems(rm), 0),
};

export async function createMetricExporter(s: OtlpSignalSettings): Promise<MultiResourceMetricExporter> {
  const o = await sdkExporterOptions(s, 'metrics');
  switch (s.protocol) {
    case 'grpc': {
      // Imported here: gRPC loads only when the gRPC protocol is configured.
      const { convertLegacyOtlpGrpcOptions, createOtlpGrpcExportDelegate } = await import(
        '@opentelemetry/otlp-grpc-exporter-base'
      );
      return encoded(
        new OTLPExporterBase(
          createOtlpGrpcExportDelegate(
            convertLegacyOtlpGrpcOptions(o, 'METRICS'),
            encodedSerializer,
            'otlp_grpc_metric_exporter',
            encodedItems,
            undefined,
            'MetricsExportService',
            '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
          ),
        ),
      );
    }
    case 'http/protobuf':
      return encoded(
        new OTLPExporterBase(
          createOtlpHttpExportDelegate(
            convertLegacyHttpOptions(o, 'METRICS', 'v1/metrics', {
              'Content-Type': 'application/x-protobuf',
            }),
            encodedSerializer,
            'otlp_http_metric_exporter',
            encodedItems,
            undefined,
          ),
        ),
      );
    case 'http/json': {
      const json = new OTLPExporterBase(
        createOtlpHttpExportDelegate(
          convertLegacyHttpOptions(o, 'METRICS', 'v1/metrics', { 'Content-Type': 'application/json' }),
          jsonMulti,
          'otlp_http_metric_exporter',
          itemsHelper,
          undefined,
        ),
      );
      return {
        export: (request, cb) => json.export(request as ResourceMetrics[], cb),
        forceFlush: () => json.forceFlush(),
        shutdown: () => json.shutdown(),
      };
    }
  }
}
