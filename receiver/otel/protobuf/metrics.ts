// OTLP metrics requests (ExportMetricsServiceRequest protobuf) encoded straight from a collection: the
// points are grouped by entity (one Resource per entity, entity-resources.ts) and cut into requests of at
// most `maxPoints` weighted points (exporters.ts, splitResourceMetrics) while they are written, without the
// per-point objects, per-entity ResourceMetrics and per-request copies the SDK path builds, and without its
// second (size-estimating) pass. The metric store's own metrics (metric-data.ts StoreMetricData) are
// written from its series, without a data point object each; the grouping is a counting sort of point
// indices (typed arrays), not objects per entity and metric. Requests are made one at a time
// (`metricRequests`, a generator: the exporter asks for the next once the previous is sent), so a
// collection's ~28 MB at 1,000 pods is never held at once. Encoded once and reused: a Resource, a frozen
// attribute object (the store's interned point attributes, an entity's keys), a scope.
//
// The bytes are those of the SDK path (EntityResources.byEntity → splitResourceMetrics → the SDK's
// ProtobufMetricsSerializer per ResourceMetrics, concatenated): fields in the SDK serializer's order
// (@opentelemetry/otlp-transformer, metrics-serializer), shortest varints. test/otel/protobuf-metrics.test.ts
// compares both on every shape podnet exports.
import type { Attributes } from '@opentelemetry/api';
import { ValueType } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import {
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
  type ResourceMetrics,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import type { HistogramValue } from '../../probe/types.ts';
import { ATTRIBUTE_PARTS, type AttributeParts } from '../attribute-parts.ts';
import type { EntityResources } from '../entity-resources.ts';
import { StoreMetricData } from '../metric-data.ts';
import { ATTR_PODNET_ENTITY_KIND } from '../semconv.ts';
import type { MetricSeries } from '../series-state.ts';
import {
  histogramFields,
  histogramPoint,
  numberFields,
  numberPoint,
  resourceBytes,
  scopeBytes,
  scratch,
  temporality,
} from './fields.ts';
import { ProtoWriter } from './writer.ts';

/** One encoded request and the data points it holds. */
export interface EncodedMetricsRequest {
  readonly bytes: Uint8Array;
  readonly points: number;
}

/** The data point types this encoder writes; a collection with another one goes through the SDK path. */
export function encodable(rm: ResourceMetrics): boolean {
  for (const sm of rm.scopeMetrics)
    for (const m of sm.metrics)
      if (
        m.dataPointType !== DataPointType.SUM &&
        m.dataPointType !== DataPointType.GAUGE &&
        m.dataPointType !== DataPointType.HISTOGRAM
      )
        return false;
  return true;
}

/** One metric of the collection, in collection order. */
interface Entry {
  readonly scope: ScopeMetrics['scope'];
  readonly metric: MetricData;
  /** A store metric (its series in `store.collection.series[store.from..store.to)`), else undefined. */
  readonly store: StoreMetricData | undefined;
  /** Index of its first point among the collection's points. */
  readonly first: number;
  readonly count: number;
  readonly histogram: boolean;
  readonly int: boolean;
  /** Data point type: 5 gauge, 7 sum, 9 histogram (Metric field numbers). */
  readonly field: number;
}

function entriesOf(rm: ResourceMetrics): { entries: Entry[]; total: number } {
  const entries: Entry[] = [];
  let total = 0;
  for (const sm of rm.scopeMetrics)
    for (const metric of sm.metrics) {
      const store = metric instanceof StoreMetricData ? metric : undefined;
      const count = store ? store.to - store.from : metric.dataPoints.length;
      const t = metric.dataPointType;
      entries.push({
        scope: sm.scope,
        metric,
        store,
        first: total,
        count,
        histogram: t === DataPointType.HISTOGRAM,
        int: metric.descriptor.valueType === ValueType.INT,
        field: t === DataPointType.GAUGE ? 5 : t === DataPointType.SUM ? 7 : 9,
      });
      total += count;
    }
  return { entries, total };
}

/** The store series of point `i` of `e`, while its collection has not made data points; else undefined. */
function seriesAt(e: Entry, i: number): MetricSeries | undefined {
  const st = e.store;
  if (st === undefined || st.points !== undefined) return undefined;
  return st.collection.series[st.from + i];
}

/** Point `i` of `e` as a data point (the collection's, made when it was frozen or read). */
function pointAt(e: Entry, i: number): DataPoint<unknown> {
  return e.metric.dataPoints[i] as DataPoint<unknown>;
}

/** A point's attribute parts (store series and store points), or undefined. */
function partsOf(e: Entry, i: number): AttributeParts | undefined {
  const s = seriesAt(e, i);
  if (s !== undefined) return s.parts;
  return (pointAt(e, i) as { [ATTRIBUTE_PARTS]?: AttributeParts })[ATTRIBUTE_PARTS];
}

/**
 * A point's share of a request (exporters.ts pointWeight, there of the entity's metric): 1, histograms 1 +
 * a quarter of the buckets of the run's first point (`i`).
 */
function weight(e: Entry, i: number): number {
  if (!e.histogram) return 1;
  const s = seriesAt(e, i);
  const n =
    s !== undefined
      ? (s.value as HistogramValue).counts.length
      : (pointAt(e, i) as DataPoint<Histogram>).value.buckets.counts.length;
  return 1 + Math.ceil(n / 4);
}

/** Metric fields 1-3: name, description and unit (the latter two when not empty). */
function metricHead(m: MetricData): Uint8Array {
  scratch.reset();
  scratch.tag(1, 2);
  scratch.string(m.descriptor.name);
  if (m.descriptor.description) {
    scratch.tag(2, 2);
    scratch.string(m.descriptor.description);
  }
  if (m.descriptor.unit) {
    scratch.tag(3, 2);
    scratch.string(m.descriptor.unit);
  }
  return scratch.finish();
}

/**
 * The open messages of the request being written: ResourceMetrics, ScopeMetrics, Metric and its data
 * message (positions from ProtoWriter.fork, -1: none) and what they belong to.
 */
class RequestWriter {
  readonly w = new ProtoWriter(256 * 1024);
  readonly #maxPoints: number;
  readonly #heads = new Map<MetricData, Uint8Array>();
  room: number;
  points = 0;
  rmAt = -1;
  #resource: Resource | undefined;
  #scopeAt = -1;
  #scope: ScopeMetrics['scope'] | undefined;
  #metricAt = -1;
  #dataAt = -1;
  #entry: Entry | undefined;
  /** The run (entity and metric) the open Metric message holds points of. */
  #run = -1;

  readonly #reuse: boolean;
  /** A request was handed out from the buffer: the next one starts over it. */
  #handedOut = false;

  constructor(maxPoints: number, reuse: boolean) {
    this.#maxPoints = maxPoints;
    this.room = maxPoints;
    this.#reuse = reuse;
  }

  #endMetric(): void {
    if (this.#metricAt < 0) return;
    const w = this.w;
    const m = this.#entry!.metric;
    if (m.dataPointType !== DataPointType.GAUGE) {
      const t = temporality(m.aggregationTemporality);
      if (t !== 0) {
        w.tag(2, 0);
        w.uint32(t);
      }
      if (m.dataPointType === DataPointType.SUM && m.isMonotonic) {
        w.tag(3, 0);
        w.uint32(1);
      }
    }
    w.ldelim(this.#dataAt);
    w.ldelim(this.#metricAt);
    this.#metricAt = -1;
    this.#entry = undefined;
    this.#run = -1;
  }

  #endScope(): void {
    this.#endMetric();
    if (this.#scopeAt < 0) return;
    if (this.#scope!.schemaUrl) {
      this.w.tag(3, 2);
      this.w.string(this.#scope!.schemaUrl);
    }
    this.w.ldelim(this.#scopeAt);
    this.#scopeAt = -1;
    this.#scope = undefined;
  }

  #endResource(): void {
    this.#endScope();
    if (this.rmAt < 0) return;
    if (this.#resource!.schemaUrl) {
      this.w.tag(3, 2);
      this.w.string(this.#resource!.schemaUrl);
    }
    this.w.ldelim(this.rmAt);
    this.rmAt = -1;
    this.#resource = undefined;
  }

  /** Close the request: its bytes (handed over, the writer goes on in a new buffer) and points. */
  flush(): EncodedMetricsRequest {
    this.#endResource();
    const r = { bytes: this.#reuse ? this.w.view() : this.w.detach(), points: this.points };
    this.#handedOut = this.#reuse;
    this.room = this.#maxPoints;
    this.points = 0;
    return r;
  }

  /** Open a ResourceMetrics of `resource` (closing the one open, unless it is of `resource`). */
  openResource(resource: Resource): void {
    if (resource === this.#resource) return;
    this.#endResource();
    if (this.#handedOut) {
      this.w.reset();
      this.#handedOut = false;
    }
    this.w.tag(1, 2);
    this.rmAt = this.w.fork();
    this.w.raw(resourceBytes(resource));
    this.#resource = resource;
  }

  /** Open what a point (or an empty metric) of run `run` needs: its Resource, scope and Metric. */
  open(resource: Resource, e: Entry, run: number): void {
    const w = this.w;
    this.openResource(resource);
    if (e.scope !== this.#scope) {
      this.#endScope();
      w.tag(2, 2);
      this.#scopeAt = w.fork();
      w.raw(scopeBytes(e.scope));
      this.#scope = e.scope;
    }
    if (run !== this.#run) {
      this.#endMetric();
      w.tag(2, 2);
      this.#metricAt = w.fork();
      let head = this.#heads.get(e.metric);
      if (head === undefined) {
        head = metricHead(e.metric);
        this.#heads.set(e.metric, head);
      }
      w.raw(head);
      w.tag(e.field, 2);
      this.#dataAt = w.fork();
      this.#entry = e;
      this.#run = run;
    }
  }

  /** Point `i` of `e`, with `attrs` (undefined: the point's own, entity keys included). */
  point(e: Entry, i: number, attrs: Attributes | undefined, wt: number): void {
    const s = seriesAt(e, i);
    if (s !== undefined) {
      const a = attrs ?? s.attributes;
      if (e.histogram) {
        const h = s.value as HistogramValue;
        histogramFields(
          this.w,
          s.startTime,
          s.time,
          h.count,
          h.sum,
          h.counts,
          h.boundaries,
          a,
          undefined,
          undefined,
        );
      } else numberFields(this.w, s.startTime, s.time, s.value as number, a, e.int);
    } else {
      const dp = pointAt(e, i);
      const a = attrs ?? dp.attributes;
      if (e.histogram) histogramPoint(this.w, dp, a);
      else numberPoint(this.w, dp, a, e.int);
    }
    this.points++;
    this.room -= wt;
  }
}

/**
 * The requests of one collection (see the file comment), made one at a time. Always at least one, as the
 * SDK path. The store collections it wrote are released when it is done (metric-data.ts StoreCollection).
 * `reuse`: every request is written in the same buffer, so a request's bytes are valid only until the
 * next is asked for (the exporter asks once the previous request is answered: then nothing reads them);
 * else each request keeps its own buffer.
 */
export function* metricRequests(
  rm: ResourceMetrics,
  entities: EntityResources | undefined,
  maxPoints: number,
  reuse = false,
): Generator<EncodedMetricsRequest, void, undefined> {
  const { entries, total } = entriesOf(rm);
  const r = new RequestWriter(maxPoints, reuse);
  let sent = 0;
  try {
    if (!entities) {
      // One Resource: metrics in order, without points too (the SDK path sends them as they are).
      for (let m = 0; m < entries.length; m++) {
        const e = entries[m]!;
        const wt = weight0(e);
        if (e.count === 0) {
          // A metric without points goes where there is room (none after a point heavier than a request).
          if (r.room >= 0) r.open(rm.resource, e, m);
          continue;
        }
        for (let i = 0; i < e.count; i++) {
          if (r.room < wt && r.rmAt >= 0) {
            sent++;
            yield r.flush();
          }
          r.open(rm.resource, e, m);
          r.point(e, i, undefined, wt);
        }
      }
    } else yield* byEntity(rm, entities, entries, total, r, () => sent++);
    if (r.rmAt >= 0 || sent === 0) {
      // Nothing at all: one request with the agent's Resource and no scope (as the SDK path sends).
      if (r.rmAt < 0) r.openResource(rm.resource);
      yield r.flush();
    }
  } finally {
    for (const e of entries) e.store?.collection.release();
  }
}

function weight0(e: Entry): number {
  return e.count > 0 ? weight(e, 0) : 1;
}

/**
 * Points grouped by entity (the agent's first, then in order of first appearance), metrics and points in
 * collection order within each: a stable counting sort of the point indices by entity.
 */
function* byEntity(
  rm: ResourceMetrics,
  entities: EntityResources,
  entries: readonly Entry[],
  total: number,
  r: RequestWriter,
  onFlush: () => void,
): Generator<EncodedMetricsRequest, void, undefined> {
  const bucketOf = new Int32Array(total);
  const entryOf = new Int32Array(total);
  // Point attributes without the entity keys, for points that are neither store series nor store points.
  const split = new Map<number, Attributes>();
  const resources: Resource[] = [rm.resource];
  const byEntity = new Map<Attributes, number>();
  // The bucket of each entity part seen (the agent's for a part without entity keys: node-scoped series).
  const byPart = new Map<Attributes, number>();
  const bucket = (entity: Attributes | undefined): number => {
    if (entity === undefined) return 0;
    let b = byEntity.get(entity);
    if (b === undefined) {
      b = resources.length;
      resources.push(entities.resourceFor(entity));
      byEntity.set(entity, b);
    }
    return b;
  };
  let k = 0;
  for (let m = 0; m < entries.length; m++) {
    const e = entries[m]!;
    for (let i = 0; i < e.count; i++, k++) {
      entryOf[k] = m;
      const given = partsOf(e, i);
      if (given !== undefined) {
        let b = byPart.get(given[1]);
        if (b === undefined) {
          b = bucket(ATTR_PODNET_ENTITY_KIND in given[1] ? given[1] : undefined);
          byPart.set(given[1], b);
        }
        bucketOf[k] = b;
      } else {
        const [point, entity] = entities.split(pointAt(e, i).attributes);
        split.set(k, point);
        bucketOf[k] = bucket(entity);
      }
    }
  }
  const start = new Int32Array(resources.length + 1);
  for (let j = 0; j < total; j++) start[bucketOf[j]! + 1]!++;
  for (let b = 0; b < resources.length; b++) start[b + 1]! += start[b]!;
  const order = new Int32Array(total);
  for (let j = 0; j < total; j++) order[start[bucketOf[j]!]!++] = j;
  let runBucket = -1;
  let runEntry = -1;
  let run = -1;
  let wt = 1;
  for (let o = 0; o < total; o++) {
    const j = order[o]!;
    const b = bucketOf[j]!;
    const m = entryOf[j]!;
    const e = entries[m]!;
    const i = j - e.first;
    if (b !== runBucket || m !== runEntry) {
      runBucket = b;
      runEntry = m;
      run++;
      wt = weight(e, i);
    }
    if (r.room < wt && r.rmAt >= 0) {
      onFlush();
      yield r.flush();
    }
    r.open(resources[b]!, e, run);
    const parts = partsOf(e, i);
    r.point(e, i, parts !== undefined ? parts[0] : split.get(j)!, wt);
  }
}

/** All the requests of one collection at once (tests; the exporter takes them one at a time). */
export function encodeMetricRequests(
  rm: ResourceMetrics,
  entities: EntityResources | undefined,
  maxPoints: number,
): EncodedMetricsRequest[] {
  return [...metricRequests(rm, entities, maxPoints)];
}
