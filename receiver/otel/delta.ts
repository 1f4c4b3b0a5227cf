// Delta temporality for an OTLP reader (`exporters.otlp.temporality: delta`, or
// OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta): wraps the cumulative MetricStore and turns
// monotonic sums and histograms into the change since this reader's previous export. Each delta point
// starts where the previous one of its series ended; a counter that went down (a reset) reports its new
// value. Gauges and non-monotonic sums stay as they are (as the OTel delta preference specifies).
// State is kept per series seen in the last export only, so series of gone pods do not accumulate.
import type { HrTime } from '@opentelemetry/api';
import {
  AggregationTemporality,
  type CollectionResult,
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { ATTRIBUTE_PARTS, type AttributeParts } from './attribute-parts.ts';
import { cachedAttributesKey } from './attributes-key.ts';
import { withValue } from './metric-data.ts';

interface Prev {
  readonly end: HrTime;
  readonly value: number | Histogram;
}

/** A point's series key: from the store's (frozen, shared) attribute parts, else its attributes. */
function pointKey(name: string, dp: DataPoint<unknown>): string {
  const parts = (dp as { [ATTRIBUTE_PARTS]?: AttributeParts })[ATTRIBUTE_PARTS];
  if (parts === undefined) return key(name, dp.attributes);
  return `${name}\u0002${cachedAttributesKey(parts[0])}\u0002${cachedAttributesKey(parts[1])}`;
}

function key(name: string, attrs: Readonly<Record<string, unknown>>): string {
  const keys = Object.keys(attrs).sort();
  let k = name;
  for (const a of keys) k += `\u0000${a}\u0001${JSON.stringify(attrs[a])}`;
  return k;
}

function sameTime(a: HrTime, b: HrTime): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

function histDelta(cur: Histogram, prev: Histogram): Histogram | undefined {
  const b = cur.buckets;
  const pb = prev.buckets;
  if (cur.count < prev.count || b.counts.length !== pb.counts.length) return undefined;
  for (let i = 0; i < b.boundaries.length; i++) if (b.boundaries[i] !== pb.boundaries[i]) return undefined;
  const counts = b.counts.map((c, i) => c - pb.counts[i]!);
  if (counts.some((c) => c < 0)) return undefined;
  return {
    buckets: { boundaries: b.boundaries, counts },
    count: cur.count - prev.count,
    ...(cur.sum !== undefined && prev.sum !== undefined ? { sum: cur.sum - prev.sum } : {}),
  };
}

export class DeltaProducer implements MetricProducer {
  readonly #source: MetricProducer;
  #prev = new Map<string, Prev>();

  constructor(source: MetricProducer) {
    this.#source = source;
  }

  async collect(): Promise<CollectionResult> {
    const r = await this.#source.collect();
    const next = new Map<string, Prev>();
    const scopeMetrics = r.resourceMetrics.scopeMetrics.map((sm) => ({
      scope: sm.scope,
      metrics: sm.metrics.map((m) => this.#convert(m, next)),
    }));
    this.#prev = next;
    return { resourceMetrics: { resource: r.resourceMetrics.resource, scopeMetrics }, errors: r.errors };
  }

  #convert(m: MetricData, next: Map<string, Prev>): MetricData {
    if (m.dataPointType === DataPointType.SUM && m.isMonotonic) {
      const dataPoints: DataPoint<number>[] = [];
      for (const dp of m.dataPoints) {
        const k = pointKey(m.descriptor.name, dp);
        const prev = this.#prev.get(k);
        if (prev && sameTime(prev.end, dp.endTime)) {
          next.set(k, prev); // no collection since the last export: nothing to report
          continue;
        }
        next.set(k, { end: dp.endTime, value: dp.value });
        if (!prev || typeof prev.value !== 'number' || dp.value < prev.value) dataPoints.push(dp);
        else dataPoints.push(withValue(dp, prev.end, dp.value - prev.value));
      }
      return { ...m, aggregationTemporality: AggregationTemporality.DELTA, dataPoints };
    }
    if (m.dataPointType === DataPointType.HISTOGRAM) {
      const dataPoints: DataPoint<Histogram>[] = [];
      for (const dp of m.dataPoints) {
        const k = pointKey(m.descriptor.name, dp);
        const prev = this.#prev.get(k);
        if (prev && sameTime(prev.end, dp.endTime)) {
          next.set(k, prev);
          continue;
        }
        next.set(k, { end: dp.endTime, value: dp.value });
        const d = prev && typeof prev.value !== 'number' ? histDelta(dp.value, prev.value) : undefined;
        dataPoints.push(d ? withValue(dp, prev!.end, d) : dp);
      }
      return { ...m, aggregationTemporality: AggregationTemporality.DELTA, dataPoints };
    }
    return m;
  }
}
