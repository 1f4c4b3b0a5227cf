// Series → the SDK's MetricData (what every reader exports; the store's collections: StoreCollection), and
// the check that two declarations of one metric name describe the same data. Its own file so metric-store.ts keeps only the collection logic;
// self-telemetry.ts builds its MetricData with the same conversion.
import { type Attributes, type HrTime, ValueType } from '@opentelemetry/api';
import {
  AggregationTemporality,
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import type { AttributeValue, HistogramValue, MetricDef } from '../probe/types.ts';
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

/** The points of `list[from..to)` (histogram values copied, as the SDK's aggregations hand out). */
function dataPoints(
  def: MetricDef,
  list: readonly MetricSeries[],
  from: number,
  to: number,
): DataPoint<unknown>[] {
  const out: DataPoint<unknown>[] = [];
  for (let i = from; i < to; i++) {
    const s = list[i]!;
    if (def.kind === 'histogram') {
      const h = s.value as HistogramValue;
      out.push(
        point(s, {
          buckets: { boundaries: [...h.boundaries], counts: [...h.counts] },
          sum: h.sum,
          count: h.count,
        }),
      );
    } else out.push(point(s, s.value as number));
  }
  return out;
}

/** Value type of a number metric: INT when every value is a safe integer (as toMetricData decides). */
export function numberValueType(list: readonly MetricSeries[], from = 0, to = list.length): ValueType {
  for (let i = from; i < to; i++)
    if (!Number.isSafeInteger(list[i]!.value as number)) return ValueType.DOUBLE;
  return ValueType.INT;
}

function descriptorOf(def: MetricDef, valueType: ValueType): MetricData['descriptor'] {
  return { name: def.name, description: def.description, unit: def.unit, valueType };
}

export function toMetricData(def: MetricDef, list: readonly MetricSeries[]): MetricData {
  const points = dataPoints(def, list, 0, list.length);
  if (def.kind === 'histogram') {
    return {
      descriptor: descriptorOf(def, ValueType.DOUBLE),
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: points as DataPoint<Histogram>[],
    };
  }
  const valueType = numberValueType(list);
  if (def.kind === 'gauge') {
    return {
      descriptor: descriptorOf(def, valueType),
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.GAUGE,
      dataPoints: points as DataPoint<number>[],
    };
  }
  return {
    descriptor: descriptorOf(def, valueType),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    dataPoints: points as DataPoint<number>[],
    isMonotonic: def.kind === 'counter',
  };
}

/**
 * The store's collections: what `MetricStore.collect()` hands out, the series of every metric in one
 * array (metric after metric). Open while a reader may still read it: before the store changes a probe's
 * series (its next `update`), it makes the data points of that probe's metrics in every open collection
 * (`freeze`), so a collection keeps the values it was collected with however long its reader takes (a
 * streamed export, a scrape held by a slow client).
 */
export class StoreCollection {
  readonly series: readonly SeriesSnapshot[];
  readonly metrics: StoreMetricData[] = [];
  /**
   * The entity part (attribute-parts.ts) of each series, as an index into `entities` (-1: a series without
   * parts): the OTLP encoder groups by entity without reading each series again (protobuf/metrics.ts).
   */
  readonly entityOf: Int32Array;
  readonly entities: readonly Record<string, AttributeValue>[];

  constructor(
    series: readonly SeriesSnapshot[],
    entityOf: Int32Array = new Int32Array(series.length).fill(-1),
    entities: readonly Record<string, AttributeValue>[] = [],
  ) {
    this.series = series;
    this.entityOf = entityOf;
    this.entities = entities;
  }

  #released = false;

  /**
   * Make the data points of the metrics `probe` reports, not read yet (its series are about to change).
   * Returns whether the collection still holds metrics read from series (false: nothing left to freeze).
   */
  freeze(probe: string): boolean {
    if (this.#released) return false;
    let left = false;
    for (const m of this.metrics) {
      if (m.points !== undefined) continue;
      if (m.probes.includes(probe)) m.dataPoints;
      else left = true;
    }
    return left;
  }

  /** Its one reader is done with it (an export sent): nothing to keep when the series change. */
  release(): void {
    this.#released = true;
  }
}

/** What a collection keeps of a series: the series itself (read in place until the collection is frozen). */
type SeriesSnapshot = MetricSeries;

/**
 * One metric of a StoreCollection (`series[from..to)`), as the SDK's MetricData: its data points are made
 * when first read (`dataPoints`: the Prometheus render, the delta producer, the JSON exporter) or when the
 * collection is frozen. Until then the direct OTLP encoder (protobuf/metrics.ts) writes the points from
 * the series (`points === undefined`), without a data point object per series.
 */
export class StoreMetricData {
  readonly descriptor: MetricData['descriptor'];
  readonly aggregationTemporality = AggregationTemporality.CUMULATIVE;
  readonly dataPointType: DataPointType;
  declare readonly isMonotonic?: boolean;
  readonly collection: StoreCollection;
  readonly def: MetricDef;
  /** The probes whose series it holds (one, unless several declare the metric). */
  readonly probes: readonly string[];
  readonly from: number;
  readonly to: number;
  #points: DataPoint<unknown>[] | undefined;

  constructor(
    collection: StoreCollection,
    def: MetricDef,
    probes: readonly string[],
    from: number,
    to: number,
    /** The value type of a number metric when the caller knows it (else read from the series). */
    valueType?: ValueType,
  ) {
    this.collection = collection;
    this.def = def;
    this.probes = probes;
    this.from = from;
    this.to = to;
    const list = collection.series;
    const hist = def.kind === 'histogram';
    this.descriptor = descriptorOf(
      def,
      hist ? ValueType.DOUBLE : (valueType ?? numberValueType(list, from, to)),
    );
    this.dataPointType = hist
      ? DataPointType.HISTOGRAM
      : def.kind === 'gauge'
        ? DataPointType.GAUGE
        : DataPointType.SUM;
    // An own property of sums only, as on the SDK's MetricData (`'isMonotonic' in m` tells them apart).
    if (this.dataPointType === DataPointType.SUM)
      Object.defineProperty(this, 'isMonotonic', { value: def.kind === 'counter', enumerable: true });
  }

  /** The data points once made (undefined: not yet; read the series). */
  get points(): DataPoint<unknown>[] | undefined {
    return this.#points;
  }

  get dataPoints(): DataPoint<unknown>[] {
    this.#points ??= dataPoints(this.def, this.collection.series, this.from, this.to);
    return this.#points;
  }
}

/** A placeholder (never handed out) while a collection's series array is filled. */
const NO_SERIES: MetricSeries = {
  def: { name: '', kind: 'gauge', unit: '', description: '', attributes: [], enabled: false },
  attributes: {},
  value: 0,
  startTime: [0, 0],
  time: [0, 0],
};

/**
 * The latest series of every probe (`probes`: probe name → its series) as one StoreCollection: metrics in
 * the order of their first series (probe after probe), each metric's series in probe order, in one array
 * (a counting sort by metric); no data point objects. One read of each series (its metric, and whether its
 * value is an integer, for the metric's value type): at 160,000 series a pass that touches every series
 * object again costs more than the rest. A probe reports its metrics in the same order netns after netns,
 * so the metric of a series is first guessed from the one that followed the previous series' metric.
 */
export function collectSeries(
  probes: ReadonlyMap<string, { readonly latest: readonly MetricSeries[] }>,
): StoreCollection {
  // Metric of each series (by name: declarations shared by several probes are one metric).
  let n = 0;
  for (const p of probes.values()) n += p.latest.length;
  // The metric and the entity of each series: made per collection and let go after it, not kept as
  // scratch between collections (kept with 25 % room they held 1.6 MB of external memory at 1,000 netns,
  // heap snapshot; made, they cost a few page faults once per collection).
  const metricOf = new Int32Array(n);
  const entityAt = new Int32Array(n);
  const index = new Map<string, number>();
  // Entity parts by identity (series of a netns share one, and come together): the previous one first.
  const entities: Record<string, AttributeValue>[] = [];
  const entityIndex = new Map<Record<string, AttributeValue>, number>();
  let lastEntity: Record<string, AttributeValue> | undefined;
  let lastE = -1;
  const defs: MetricDef[] = [];
  const counts: number[] = [];
  const by: string[][] = [];
  /** Per metric: the probe (its number) that last reported it, whether every value is a safe integer. */
  const lastProbe: number[] = [];
  const ints: boolean[] = [];
  /** Per metric: the metric of the series that followed it last (the guess), -1 before. */
  const next: number[] = [];
  let k = 0;
  let probe = 0;
  // Indexed loops: `for...of` over the series allocated an iterator result per series whenever the loop
  // ran before V8 optimized it (~3 MB per collection at 160,000 series, seen in a heap sampling profile).
  for (const [name, p] of probes) {
    probe++;
    let prev = -1;
    const latest = p.latest;
    for (let q = 0; q < latest.length; q++) {
      const s = latest[q]!;
      const def = s.def;
      let m = prev >= 0 ? next[prev]! : -1;
      if (m < 0 || defs[m]!.name !== def.name) {
        m = index.get(def.name) ?? -1;
        if (m < 0) {
          m = defs.length;
          index.set(def.name, m);
          defs.push(def);
          counts.push(0);
          by.push([]);
          lastProbe.push(0);
          ints.push(true);
          next.push(-1);
        }
        if (prev >= 0) next[prev] = m;
      }
      if (lastProbe[m] !== probe) {
        lastProbe[m] = probe;
        if (!by[m]!.includes(name)) by[m]!.push(name);
      }
      if (ints[m] && !Number.isSafeInteger(s.value as number)) ints[m] = false;
      const entity = s.parts?.[1];
      if (entity !== lastEntity) {
        lastEntity = entity;
        if (entity === undefined) lastE = -1;
        else {
          lastE = entityIndex.get(entity) ?? -1;
          if (lastE < 0) {
            lastE = entities.length;
            entities.push(entity);
            entityIndex.set(entity, lastE);
          }
        }
      }
      entityAt[k] = lastE;
      counts[m]!++;
      metricOf[k++] = m;
      prev = m;
    }
  }
  const at: number[] = [];
  let sum = 0;
  for (let m = 0; m < defs.length; m++) {
    at.push(sum);
    sum += counts[m]!;
  }
  // Allocated at its size and filled (packed elements, checked with %HasHoleyElements on Node 24): filling it
  // by push allocated ~3 times its size in the young generation as it grew (~4 MB at 160,000 series).
  const series: MetricSeries[] = new Array<MetricSeries>(n).fill(NO_SERIES);
  const entityOf = new Int32Array(n);
  k = 0;
  for (const p of probes.values()) {
    const latest = p.latest;
    for (let q = 0; q < latest.length; q++) {
      const i = at[metricOf[k]!]!++;
      series[i] = latest[q]!;
      entityOf[i] = entityAt[k++]!;
    }
  }
  const c = new StoreCollection(series, entityOf, entities);
  let from = 0;
  for (let m = 0; m < defs.length; m++) {
    const type = ints[m] ? ValueType.INT : ValueType.DOUBLE;
    c.metrics.push(new StoreMetricData(c, defs[m]!, by[m]!, from, from + counts[m]!, type));
    from += counts[m]!;
  }
  return c;
}
