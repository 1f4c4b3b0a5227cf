// The OTLP metric exporter: the SDK's own transports (HTTP with protobuf or JSON, gRPC) and serializers,
// fed a list of ResourceMetrics per request (one per entity, entity-resources.ts) where the SDK's metric
// exporters take one. The protobuf request is the concatenation of the SDK's one-resource requests:
// `resource_metrics` is a repeated field, and protobuf parses concatenated messages as one message with
// the repeated fields appended. The JSON request joins the SDK's `resourceMetrics` arrays.
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

const protobufMulti = multi(ProtobufMetricsSerializer as Serializer, (parts) => Buffer.concat(parts));

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
      return new OTLPExporterBase(
        createOtlpGrpcExportDelegate(
          convertLegacyOtlpGrpcOptions(o, 'METRICS'),
          protobufMulti,
          'otlp_grpc_metric_exporter',
          itemsHelper,
          undefined,
          'MetricsExportService',
          '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
        ),
      );
    }
    case 'http/protobuf':
      return new OTLPExporterBase(
        createOtlpHttpExportDelegate(
          convertLegacyHttpOptions(o, 'METRICS', 'v1/metrics', { 'Content-Type': 'application/x-protobuf' }),
          protobufMulti,
          'otlp_http_metric_exporter',
          itemsHelper,
          undefined,
        ),
      );
    case 'http/json':
      return new OTLPExporterBase(
        createOtlpHttpExportDelegate(
          convertLegacyHttpOptions(o, 'METRICS', 'v1/metrics', { 'Content-Type': 'application/json' }),
          jsonMulti,
          'otlp_http_metric_exporter',
          itemsHelper,
          undefined,
        ),
      );
  }
}
