// The request writer of the direct OTLP metrics encoder (metrics.ts): the open ResourceMetrics, ScopeMetrics
// and Metric messages of the request being written, and how a point of a collection is read — from a
// store series (metric-data.ts StoreMetricData, while its collection has not made data points) or from a
// data point object. Its own file so metrics.ts keeps the grouping and the cutting into requests.
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
import { StoreMetricData } from '../metric-data.ts';
import type { MetricSeries } from '../series-state.ts';
import {
  attributeBytes,
  histogramFields,
  histogramPoint,
  numberFields,
  numberPoint,
  numberPointBody,
  resourceBytes,
  scopeBytes,
  scratch,
  seriesNumberPoint,
  TimeCode,
  temporality,
} from './fields.ts';
import { ProtoWriter, varintSize32 } from './writer.ts';

/** One encoded request and the data points it holds. */
export interface EncodedMetricsRequest {
  readonly bytes: Uint8Array;
  readonly points: number;
}

/** One metric of the collection, in collection order. */
export interface Entry {
  /** Its index in `entriesOf`'s list. */
  readonly index: number;
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

export function entriesOf(rm: ResourceMetrics): { entries: Entry[]; total: number } {
  const entries: Entry[] = [];
  let total = 0;
  for (const sm of rm.scopeMetrics)
    for (const metric of sm.metrics) {
      const store = metric instanceof StoreMetricData ? metric : undefined;
      const count = store ? store.to - store.from : metric.dataPoints.length;
      const t = metric.dataPointType;
      entries.push({
        index: entries.length,
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
export function seriesAt(e: Entry, i: number): MetricSeries | undefined {
  const st = e.store;
  if (st === undefined || st.points !== undefined) return undefined;
  return st.collection.series[st.from + i];
}

/** Point `i` of `e` as a data point (the collection's, made when it was frozen or read). */
export function pointAt(e: Entry, i: number): DataPoint<unknown> {
  return e.metric.dataPoints[i] as DataPoint<unknown>;
}

/** A point's attribute parts (store series and store points), or undefined. */
export function partsOf(e: Entry, i: number): AttributeParts | undefined {
  const s = seriesAt(e, i);
  if (s !== undefined) return s.parts;
  return (pointAt(e, i) as { [ATTRIBUTE_PARTS]?: AttributeParts })[ATTRIBUTE_PARTS];
}

/**
 * A point's share of a request (exporters.ts pointWeight, there of the entity's metric): 1, histograms 1 +
 * a quarter of the buckets of the run's first point (`i`).
 */
export function weight(e: Entry, i: number): number {
  if (!e.histogram) return 1;
  const s = seriesAt(e, i);
  const n =
    s !== undefined
      ? (s.value as HistogramValue).counts.length
      : (pointAt(e, i) as DataPoint<Histogram>).value.buckets.counts.length;
  return 1 + Math.ceil(n / 4);
}

/** Metric fields 1-3: name, description and unit (the latter two when not empty); then the tag of `field`. */
function metricHead(m: MetricData, field: number): Uint8Array {
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
  scratch.tag(field, 2);
  return scratch.finish();
}

/** The fields of a metric's data message after its points: temporality (not for gauges), monotonic (sums). */
function metricTail(m: MetricData): Uint8Array {
  scratch.reset();
  if (m.dataPointType !== DataPointType.GAUGE) {
    const t = temporality(m.aggregationTemporality);
    if (t !== 0) {
      scratch.tag(2, 0);
      scratch.uint32(t);
    }
    if (m.dataPointType === DataPointType.SUM && m.isMonotonic) {
      scratch.tag(3, 0);
      scratch.uint32(1);
    }
  }
  return scratch.finish();
}

/**
 * The open messages of the request being written: ResourceMetrics, ScopeMetrics, Metric and its data
 * message (positions from ProtoWriter.fork, -1: none) and what they belong to.
 */
export class RequestWriter {
  readonly w = new ProtoWriter(256 * 1024);
  readonly #maxPoints: number;
  /** Metric fields 1-3 and the data message's tag of each entry (by `Entry.index`), encoded when first written. */
  readonly #heads: (Uint8Array | undefined)[];
  /** The data message's fields after its points, of each entry (by `Entry.index`). */
  readonly #tails: (Uint8Array | undefined)[];
  /** Per entry: the start of a whole Metric of one point (`#wholePrefix`) and its point attributes' length. */
  readonly #prefixes: (Uint8Array | undefined)[];
  readonly #prefixAttrs: Int32Array;
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
  /** Start and end time of the last series point, as fixed64 (fields.ts TimeCode). */
  readonly #start = new TimeCode();
  readonly #end = new TimeCode();
  /**
   * Bytes reserved for the length of the next ResourceMetrics, ScopeMetrics (the length of the last one's:
   * an entity's are alike) and of each metric's Metric and data messages (per entry): a length of another
   * size moves the message's body (writer.ts ldelim), ~30 KB per entity when a 3-byte length was reserved 1.
   */
  #rmReserve = 1;
  #scopeReserve = 1;
  #metricReserve: Uint8Array;
  #dataReserve = 1;

  constructor(maxPoints: number, reuse: boolean, entries: number) {
    this.#maxPoints = maxPoints;
    this.room = maxPoints;
    this.#reuse = reuse;
    this.#metricReserve = new Uint8Array(entries * 2).fill(1);
    this.#heads = new Array<Uint8Array | undefined>(entries).fill(undefined);
    this.#tails = new Array<Uint8Array | undefined>(entries).fill(undefined);
    this.#prefixes = new Array<Uint8Array | undefined>(entries).fill(undefined);
    this.#prefixAttrs = new Int32Array(entries);
  }

  /** Metric fields 1-3 and the data message's tag of `e` (encoded once per collection). */
  #head(e: Entry): Uint8Array {
    let head = this.#heads[e.index];
    if (head === undefined) {
      head = metricHead(e.metric, e.field);
      this.#heads[e.index] = head;
    }
    return head;
  }

  /** The data message's fields after the points (temporality, monotonic) of `e`. */
  #tail(e: Entry): Uint8Array {
    let tail = this.#tails[e.index];
    if (tail === undefined) {
      tail = metricTail(e.metric);
      this.#tails[e.index] = tail;
    }
    return tail;
  }

  #endMetric(): void {
    if (this.#metricAt < 0) return;
    const w = this.w;
    w.raw(this.#tail(this.#entry!));
    const hint = this.#metricReserve;
    const at = this.#entry!.index * 2;
    w.ldelim(this.#dataAt, this.#dataReserve);
    if (at < hint.length) hint[at + 1] = varintSize32(w.pos - this.#dataAt);
    w.ldelim(this.#metricAt, hint[at] ?? 1);
    if (at < hint.length) hint[at] = varintSize32(w.pos - this.#metricAt);
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
    this.w.ldelim(this.#scopeAt, this.#scopeReserve);
    this.#scopeReserve = varintSize32(this.w.pos - this.#scopeAt);
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
    this.w.ldelim(this.rmAt, this.#rmReserve);
    this.#rmReserve = varintSize32(this.w.pos - this.rmAt);
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
    this.rmAt = this.w.fork(this.#rmReserve);
    this.w.raw(resourceBytes(resource));
    this.#resource = resource;
  }

  /**
   * Open what a point (or an empty metric) of run `run` needs: its Resource, scope and Metric (run -1: no
   * Metric; the one open is closed).
   */
  open(resource: Resource, e: Entry, run: number): void {
    const w = this.w;
    this.openResource(resource);
    if (e.scope !== this.#scope) {
      this.#endScope();
      w.tag(2, 2);
      this.#scopeAt = w.fork(this.#scopeReserve);
      w.raw(scopeBytes(e.scope));
      this.#scope = e.scope;
    }
    if (run < 0) this.#endMetric();
    else if (run !== this.#run) {
      this.#endMetric();
      w.tag(2, 2);
      const at = e.index * 2;
      const hint = this.#metricReserve;
      this.#metricAt = w.fork(hint[at] ?? 1);
      w.raw(this.#head(e));
      this.#dataReserve = hint[at + 1] ?? 1;
      this.#dataAt = w.fork(this.#dataReserve);
      this.#entry = e;
      this.#run = run;
    }
  }

  /**
   * A Metric holding one number point of a store series, `s`, with its point attributes encoded (`attrs`,
   * fields.ts attributeBytes): every length is known before it is written (no fork/ldelim). Most runs
   * (an entity's points of one metric) are one point: the metric has no point attributes.
   */
  wholeMetric(resource: Resource, e: Entry, s: MetricSeries, attrs: Uint8Array, wt: number): void {
    this.open(resource, e, -1);
    const n = attrs.length;
    const prefix = this.#wholePrefix(e, n);
    const tail = this.#tail(e);
    const w = this.w;
    w.ensure(prefix.length + 27 + n + tail.length);
    // One copy of the constant bytes, then the point's 27 fixed-width bytes, its attributes and the tail.
    w.buf.set(prefix, w.pos);
    this.#start.of(s.startTime);
    this.#end.of(s.time);
    let p = numberPointBody(w.buf, w.pos + prefix.length, this.#start, this.#end, s.value as number, e.int);
    const b = w.buf;
    if (n < 32) for (let i = 0; i < n; i++) b[p++] = attrs[i]!;
    else {
      b.set(attrs, p);
      p += n;
    }
    for (let i = 0; i < tail.length; i++) b[p++] = tail[i]!;
    w.pos = p;
    this.points++;
    this.room -= wt;
  }

  /**
   * What a whole Metric of `e` with one number point whose attributes take `n` bytes starts with, up to the
   * point's fixed-width fields: the Metric's tag and length, fields 1-3 (metricHead), the data message's
   * length, the point's tag and length. Kept per entry for the last `n` (most are 0: no point attributes).
   */
  #wholePrefix(e: Entry, n: number): Uint8Array {
    const at = e.index;
    const cached = this.#prefixes[at];
    if (cached !== undefined && this.#prefixAttrs[at] === n) return cached;
    const head = this.#head(e);
    const point = 27 + n;
    const data = 1 + varintSize32(point) + point + this.#tail(e).length;
    scratch.reset();
    scratch.tag(2, 2);
    scratch.uint32(head.length + varintSize32(data) + data);
    scratch.raw(head);
    scratch.uint32(data);
    scratch.tag(1, 2);
    scratch.uint32(point);
    const prefix = scratch.finish();
    this.#prefixes[at] = prefix;
    this.#prefixAttrs[at] = n;
    return prefix;
  }

  /** Point `i` of `e`, with `attrs` (undefined: the point's own, entity keys included). */
  point(e: Entry, i: number, attrs: Attributes | undefined, wt: number): void {
    this.seriesPoint(e, i, seriesAt(e, i), attrs, wt);
  }

  /** Point `i` of `e` (`s`: its store series, `seriesAt(e, i)`), with `attrs` as `point` takes them. */
  seriesPoint(
    e: Entry,
    i: number,
    s: MetricSeries | undefined,
    attrs: Attributes | undefined,
    wt: number,
  ): void {
    if (s !== undefined) {
      const a = attrs ?? s.attributes;
      const ab = e.histogram ? undefined : attributeBytes(a, 7);
      if (ab !== undefined) {
        this.#start.of(s.startTime);
        this.#end.of(s.time);
        seriesNumberPoint(this.w, this.#start, this.#end, s.value as number, ab, e.int);
      } else if (e.histogram) {
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

export function weight0(e: Entry): number {
  return e.count > 0 ? weight(e, 0) : 1;
}
