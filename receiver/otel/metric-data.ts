// Series → the SDK's MetricData (what every reader exports), and the check that two declarations of one
// metric name describe the same data. Its own file so metric-store.ts keeps only the collection logic;
// self-telemetry.ts builds its MetricData with the same conversion.
import { type Attributes, ValueType } from '@opentelemetry/api';
import {
  AggregationTemporality,
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import type { HistogramValue, MetricDef } from '../probe/types.ts';
import { ATTRIBUTE_PARTS } from './attribute-parts.ts';
import type { MetricSeries } from './series-state.ts';

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
      return {
        startTime: s.startTime,
        endTime: s.time,
        attributes: s.attributes as Attributes,
        [ATTRIBUTE_PARTS]: s.parts,
        value: {
          buckets: { boundaries: [...h.boundaries], counts: [...h.counts] },
          sum: h.sum,
          count: h.count,
        },
      };
    });
    return {
      descriptor: descriptor(ValueType.DOUBLE),
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints,
    };
  }
  const allInt = list.every((s) => Number.isSafeInteger(s.value as number));
  const dataPoints: DataPoint<number>[] = list.map((s) => ({
    startTime: s.startTime,
    endTime: s.time,
    attributes: s.attributes as Attributes,
    [ATTRIBUTE_PARTS]: s.parts,
    value: s.value as number,
  }));
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
