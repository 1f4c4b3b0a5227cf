// The SDK path the direct OTLP metrics encoder (receiver/otel/protobuf/metrics.ts) is compared with, for
// test/otel/protobuf-metrics*.test.ts: EntityResources.byEntity → splitResourceMetrics →
// @opentelemetry/otlp-transformer's ProtobufMetricsSerializer per ResourceMetrics, concatenated.
import { MetricsExporterMetricsHelper, ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { EntityResources } from '../../receiver/otel/entity-resources.ts';
import { splitResourceMetrics } from '../../receiver/otel/exporters.ts';
import { StoreMetricData } from '../../receiver/otel/metric-data.ts';

/** The SDK's requests of at most `max` points: by entity, or one Resource when `entities` is undefined. */
export function sdkRequests(
  rm: ResourceMetrics,
  entities: EntityResources | undefined,
  max: number,
): { bytes: Buffer; points: number }[] {
  const rms = entities ? entities.byEntity(rm) : [rm];
  return splitResourceMetrics(rms, max).map((req) => ({
    bytes: Buffer.concat(req.map((r) => ProtobufMetricsSerializer.serializeRequest(r)!)),
    points: req.reduce((n, r) => n + MetricsExporterMetricsHelper.countItems(r), 0),
  }));
}

/**
 * `direct` with the store metrics of `other` (a second collection of the same state, read by the SDK):
 * the SDK's serializer makes data point objects of a StoreMetricData, which the direct encoder must not
 * have done to the collection it writes. Other metrics (self-telemetry, which reads the clock) are
 * `direct`'s own, so both sides carry the same values.
 */
export function twin(direct: ResourceMetrics, other: ResourceMetrics): ResourceMetrics {
  return {
    resource: direct.resource,
    scopeMetrics: direct.scopeMetrics.map((sm, i) => ({
      scope: sm.scope,
      metrics: sm.metrics.map((m, j) =>
        m instanceof StoreMetricData ? other.scopeMetrics[i]!.metrics[j]! : m,
      ),
    })),
  };
}
