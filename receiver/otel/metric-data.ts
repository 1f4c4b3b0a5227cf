// Series → the SDK's MetricData (what every reader exports), and the check that two declarations of one
// metric name describe the same data. Its own file so metric-store.ts keeps only the collection logic;
// self-telemetry.ts builds its MetricData with the same conversion.
import { type Attributes, type HrTime, ValueType } from '@opentelemetry/api';
import {
  AggregationTemporality,
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import type { HistogramValue, MetricDef } from '../probe/types.ts';
import { ATTRIBUTE_PARTS, type AttributeParts } from './attribute-parts.ts';
import { type MetricSeries, mergedAttributes } from './series-state.ts';

/**
 * A data point of a store series: its attributes as the series' two parts (attribute-parts.ts), merged
 * only when a consumer reads `attributes` (the OTLP encoder and the /metrics render read the parts).
 * A copy must be made with `withValue` (a spread would lose the `attributes` accessor).
 */
export class StorePoint<T> {
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly value: T;
  readonly [ATTRIBUTE_PARTS]: AttributeParts;

  constructor(parts: AttributeParts, startTime: HrTime, endTime: HrTime, value: T) {
    this[ATTRIBUTE_PARTS] = parts;
    this.startTime = startTime;
    this.endTime = endTime;
    this.value = value;
  }

  get attributes(): Attributes {
    return mergedAttributes(this[ATTRIBUTE_PARTS]) as Attributes;
  }
}

/** `dp` with another start time and value (a store point stays one, with its parts). */
export function withValue<T>(dp: DataPoint<T>, startTime: HrTime, value: T): DataPoint<T> {
  if (dp instanceof StorePoint) return new StorePoint(dp[ATTRIBUTE_PARTS], startTime, dp.endTime, value);
  return { ...dp, startTime, value };
}

/** A point of `s` (a store series: by its parts; another: its attributes as they are). */
function point<T>(s: MetricSeries, value: T): DataPoint<T> {
  if (s.parts !== undefined) return new StorePoint(s.parts, s.startTime, s.time, value);
  return { startTime: s.startTime, endTime: s.time, attributes: s.attributes as Attributes, value };
}

/** Why two declarations of one metric name cannot share series, or undefined when they agree. */
export function definitionConflict(a: MetricDef, b: MetricDef): string | undefined {
  if (a.kind !== b.kind) return `kind ${a.kind} vs ${b.kind}`;
  if (a.unit !== b.unit) return `unit ${a.unit} vs ${b.unit}`;
  if ((a.scope ?? 'entity') !== (b.scope ?? 'entity'))
    return `scope ${a.scope ?? 'entity'} vs ${b.scope ?? 'entity'}`;
  if ([...a.attributes].sort().join() !== [...b.attributes].sort().join()) return 'different attributes';
  return undefined;
}

export function toMetricData(def: MetricDef, list: readonly MetricSeries[]): MetricData {
  const descriptor = (valueType: ValueType) => ({
    name: def.name,
    description: def.description,
    unit: def.unit,
    valueType,
  });
  if (def.kind === 'histogram') {
    const dataPoints: DataPoint<Histogram>[] = list.map((s) => {
      const h = s.value as HistogramValue;
      return point(s, {
        buckets: { boundaries: [...h.boundaries], counts: [...h.counts] },
        sum: h.sum,
        count: h.count,
      });
    });
    return {
      descriptor: descriptor(ValueType.DOUBLE),
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints,
    };
  }
  const allInt = list.every((s) => Number.isSafeInteger(s.value as number));
  const dataPoints: DataPoint<number>[] = list.map((s) => point(s, s.value as number));
  const valueType = allInt ? ValueType.INT : ValueType.DOUBLE;
  if (def.kind === 'gauge') {
    return {
      descriptor: descriptor(valueType),
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.GAUGE,
      dataPoints,
    };
  }
  return {
    descriptor: descriptor(valueType),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    dataPoints,
    isMonotonic: def.kind === 'counter',
  };
}
