// OTLP metrics requests (ExportMetricsServiceRequest protobuf) encoded straight from a collection: the
// points are grouped by entity (one Resource per entity, entity-resources.ts) and cut into requests of at
// most `maxPoints` weighted points (exporters.ts, splitResourceMetrics) while they are written, without the
// per-point objects, per-entity ResourceMetrics and per-request copies the SDK path builds, and without its
// second (size-estimating) pass. Encoded once and reused: a Resource, a frozen attribute object (the
// store's interned point attributes, an entity's keys), a scope.
//
// The bytes are those of the SDK path (EntityResources.byEntity → splitResourceMetrics → the SDK's
// ProtobufMetricsSerializer per ResourceMetrics, concatenated): fields in the SDK serializer's order
// (@opentelemetry/otlp-transformer, metrics-serializer), shortest varints. test/otel/protobuf-metrics.test.ts
// compares both on every shape podnet exports.
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api';
import { ValueType } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
  type ResourceMetrics,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import { ATTRIBUTE_PARTS, type AttributeParts } from '../attribute-parts.ts';
import type { EntityResources } from '../entity-resources.ts';
import { ATTR_PODNET_ENTITY_KIND } from '../semconv.ts';
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

/** One metric's points of one entity: the points and their attributes without the entity keys. */
interface Run {
  readonly scope: ScopeMetrics['scope'];
  readonly metric: MetricData;
  readonly points: DataPoint<unknown>[];
  readonly attrs: Attributes[];
}

interface Bucket {
  readonly resource: Resource;
  readonly runs: Run[];
  last: Run | undefined;
}

/**
 * A point's share of a request (exporters.ts pointWeight, there of the entity's metric): 1, histograms 1 +
 * a quarter of the buckets of the run's first point.
 */
function weight(r: Run): number {
  if (r.metric.dataPointType !== DataPointType.HISTOGRAM) return 1;
  const p = r.points[0] as DataPoint<Histogram> | undefined;
  return 1 + Math.ceil((p?.value.buckets.counts.length ?? 0) / 4);
}

function group(rm: ResourceMetrics, entities: EntityResources | undefined): Bucket[] {
  const agent: Bucket = { resource: rm.resource, runs: [], last: undefined };
  if (!entities) {
    for (const sm of rm.scopeMetrics)
      for (const metric of sm.metrics) {
        // Metrics without points too: the SDK path sends them as they are when not split by entity.
        const points = metric.dataPoints as DataPoint<unknown>[];
        agent.runs.push({ scope: sm.scope, metric, points, attrs: points.map((p) => p.attributes) });
      }
    return [agent];
  }
  const buckets = new Map<Attributes, Bucket>();
  for (const sm of rm.scopeMetrics) {
    for (const metric of sm.metrics) {
      for (const dp of metric.dataPoints as DataPoint<unknown>[]) {
        const given = (dp as { [ATTRIBUTE_PARTS]?: AttributeParts })[ATTRIBUTE_PARTS];
        let point: Attributes;
        let entity: Attributes | undefined;
        if (given !== undefined) {
          point = given[0];
          entity = ATTR_PODNET_ENTITY_KIND in given[1] ? given[1] : undefined;
        } else [point, entity] = entities.split(dp.attributes);
        let b = agent;
        if (entity !== undefined) {
          let e = buckets.get(entity);
          if (e === undefined) {
            e = { resource: entities.resourceFor(entity), runs: [], last: undefined };
            buckets.set(entity, e);
          }
          b = e;
        }
        let run = b.last;
        if (run === undefined || run.metric !== metric) {
          run = { scope: sm.scope, metric, points: [], attrs: [] };
          b.runs.push(run);
          b.last = run;
        }
        run.points.push(dp);
        run.attrs.push(point);
      }
    }
  }
  return [agent, ...buckets.values()];
}

/** Encoded attribute lists of frozen objects (KeyValue fields without their field tag's number fixed). */
const frozenAttrs: WeakMap<Attributes, Uint8Array>[] = [];
const resources = new WeakMap<Resource, Uint8Array>();
const scopes = new WeakMap<object, Uint8Array>();
const scratch = new ProtoWriter(4096);

function anyValue(w: ProtoWriter, v: unknown): void {
  if (typeof v === 'string') {
    w.tag(1, 2);
    w.string(v);
  } else if (typeof v === 'boolean') {
    w.tag(2, 0);
    w.varint32(v ? 1 : 0);
  } else if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63) {
      w.tag(3, 0);
      w.varint64(v);
    } else {
      w.tag(4, 1);
      w.double(v);
    }
  } else if (v instanceof Uint8Array) {
    w.tag(7, 2);
    w.bytes(v);
  } else if (Array.isArray(v)) {
    w.tag(5, 2);
    const a = w.begin();
    for (const item of v) {
      w.tag(1, 2);
      const i = w.begin();
      anyValue(w, item);
      w.end(i);
    }
    w.end(a);
  } else if (typeof v === 'object' && v !== null) {
    w.tag(6, 2);
    const l = w.begin();
    keyValues(w, v as Attributes, 1);
    w.end(l);
  }
}

function keyValues(w: ProtoWriter, attrs: Attributes, field: number): void {
  for (const key in attrs) {
    if (!Object.hasOwn(attrs, key)) continue;
    w.tag(field, 2);
    const kv = w.begin();
    w.tag(1, 2);
    w.string(key);
    w.tag(2, 2);
    const v = w.begin();
    anyValue(w, attrs[key] as AttributeValue);
    w.end(v);
    w.end(kv);
  }
}

/** `attrs` as repeated KeyValue field `field`; a frozen object is encoded once. */
function attributes(w: ProtoWriter, attrs: Attributes, field: number): void {
  if (!Object.isFrozen(attrs)) {
    keyValues(w, attrs, field);
    return;
  }
  let cache = frozenAttrs[field];
  if (cache === undefined) {
    cache = new WeakMap();
    frozenAttrs[field] = cache;
  }
  let b = cache.get(attrs);
  if (b === undefined) {
    scratch.reset();
    keyValues(scratch, attrs, field);
    b = scratch.finish();
    cache.set(attrs, b);
  }
  w.raw(b);
}

/** ResourceMetrics field 1: the Resource message with its tag. */
function resourceBytes(r: Resource): Uint8Array {
  let b = resources.get(r);
  if (b === undefined) {
    scratch.reset();
    scratch.tag(1, 2);
    const at = scratch.begin();
    if (r.attributes) keyValues(scratch, r.attributes, 1);
    scratch.tag(2, 0);
    scratch.varint32(0);
    scratch.end(at);
    b = scratch.finish();
    resources.set(r, b);
  }
  return b;
}

/** ScopeMetrics field 1: the InstrumentationScope message with its tag. */
function scopeBytes(s: ScopeMetrics['scope']): Uint8Array {
  let b = scopes.get(s);
  if (b === undefined) {
    scratch.reset();
    scratch.tag(1, 2);
    const at = scratch.begin();
    scratch.tag(1, 2);
    scratch.string(s.name);
    if (s.version) {
      scratch.tag(2, 2);
      scratch.string(s.version);
    }
    const extra = s as { attributes?: Attributes; droppedAttributesCount?: number };
    if (extra.attributes) keyValues(scratch, extra.attributes, 3);
    if (extra.droppedAttributesCount) {
      scratch.tag(4, 0);
      scratch.varint32(extra.droppedAttributesCount);
    }
    scratch.end(at);
    b = scratch.finish();
    scopes.set(s, b);
  }
  return b;
}

/** HrTime as fixed64 nanoseconds (the SDK's writeHrTimeAsFixed64, without overflow past 2^53). */
function hrTime(w: ProtoWriter, t: HrTime): void {
  const seconds = t[0];
  const nanos = t[1];
  const lo16 = (seconds & 0xffff) * 1e9;
  const hiBits = ((seconds / 65536) >>> 0) * 1e9;
  const low = (lo16 >>> 0) + (((hiBits & 0xffff) * 65536) >>> 0) + nanos;
  const high = Math.floor(lo16 / 4294967296) + ((hiBits / 65536) >>> 0) + Math.floor(low / 4294967296);
  w.fixed64(low >>> 0, high >>> 0);
}

function temporality(t: AggregationTemporality): number {
  return t === AggregationTemporality.DELTA ? 1 : t === AggregationTemporality.CUMULATIVE ? 2 : 0;
}

function numberPoint(w: ProtoWriter, dp: DataPoint<unknown>, attrs: Attributes, int: boolean): void {
  w.tag(1, 2);
  const at = w.begin();
  w.tag(2, 1);
  hrTime(w, dp.startTime);
  w.tag(3, 1);
  hrTime(w, dp.endTime);
  if (int) {
    w.tag(6, 1);
    w.sfixed64(dp.value as number);
  } else {
    w.tag(4, 1);
    w.double(dp.value as number);
  }
  if (attrs) attributes(w, attrs, 7);
  w.end(at);
}

function histogramPoint(w: ProtoWriter, dp: DataPoint<unknown>, attrs: Attributes): void {
  const h = dp.value as Histogram;
  w.tag(1, 2);
  const at = w.begin();
  w.tag(2, 1);
  hrTime(w, dp.startTime);
  w.tag(3, 1);
  hrTime(w, dp.endTime);
  w.tag(4, 1);
  w.fixed64Number(h.count);
  if (h.sum !== undefined) {
    w.tag(5, 1);
    w.double(h.sum);
  }
  const counts = h.buckets.counts;
  if (counts.length > 0) {
    w.tag(6, 2);
    w.varint32(counts.length * 8);
    for (const c of counts) w.fixed64Number(c);
  }
  const bounds = h.buckets.boundaries;
  if (bounds.length > 0) {
    w.tag(7, 2);
    w.varint32(bounds.length * 8);
    for (const b of bounds) w.double(b);
  }
  if (attrs) attributes(w, attrs, 9);
  if (h.min !== undefined) {
    w.tag(11, 1);
    w.double(h.min);
  }
  if (h.max !== undefined) {
    w.tag(12, 1);
    w.double(h.max);
  }
  w.end(at);
}

/** The requests of one collection (see the file comment). Always at least one, as the SDK path. */
export function encodeMetricRequests(
  rm: ResourceMetrics,
  entities: EntityResources | undefined,
  maxPoints: number,
): EncodedMetricsRequest[] {
  const out: EncodedMetricsRequest[] = [];
  const w = new ProtoWriter(256 * 1024);
  let room = maxPoints;
  let points = 0;
  // Open messages of the request being written (-1: none) and what they belong to.
  let rmAt = -1;
  let resource: Resource | undefined;
  let scopeAt = -1;
  let scope: ScopeMetrics['scope'] | undefined;
  let metricAt = -1;
  let dataAt = -1;
  let run: Run | undefined;
  const endMetric = (): void => {
    if (metricAt < 0) return;
    const m = run!.metric;
    if (m.dataPointType !== DataPointType.GAUGE) {
      const t = temporality(m.aggregationTemporality);
      if (t !== 0) {
        w.tag(2, 0);
        w.varint32(t);
      }
      if (m.dataPointType === DataPointType.SUM && m.isMonotonic) {
        w.tag(3, 0);
        w.varint32(1);
      }
    }
    w.end(dataAt);
    w.end(metricAt);
    metricAt = -1;
    run = undefined;
  };
  const endScope = (): void => {
    endMetric();
    if (scopeAt < 0) return;
    if (scope!.schemaUrl) {
      w.tag(3, 2);
      w.string(scope!.schemaUrl);
    }
    w.end(scopeAt);
    scopeAt = -1;
    scope = undefined;
  };
  const endResource = (): void => {
    endScope();
    if (rmAt < 0) return;
    if (resource!.schemaUrl) {
      w.tag(3, 2);
      w.string(resource!.schemaUrl);
    }
    w.end(rmAt);
    rmAt = -1;
    resource = undefined;
  };
  const flush = (): void => {
    endResource();
    out.push({ bytes: w.finish(), points });
    w.reset();
    room = maxPoints;
    points = 0;
  };
  for (const b of group(rm, entities)) {
    for (const r of b.runs) {
      const m = r.metric;
      const wt = weight(r);
      const histogram = m.dataPointType === DataPointType.HISTOGRAM;
      const int = m.descriptor.valueType === ValueType.INT;
      for (let i = 0; i < Math.max(1, r.points.length); i++) {
        const empty = r.points.length === 0;
        // A metric without points goes where there is room (none after a point heavier than a request).
        if (empty && room < 0) break;
        if (!empty && room < wt && rmAt >= 0) flush();
        if (resource !== b.resource) {
          endResource();
          w.tag(1, 2);
          rmAt = w.begin();
          w.raw(resourceBytes(b.resource));
          resource = b.resource;
        }
        if (scope !== r.scope) {
          endScope();
          w.tag(2, 2);
          scopeAt = w.begin();
          w.raw(scopeBytes(r.scope));
          scope = r.scope;
        }
        if (run !== r) {
          endMetric();
          w.tag(2, 2);
          metricAt = w.begin();
          w.tag(1, 2);
          w.string(m.descriptor.name);
          if (m.descriptor.description) {
            w.tag(2, 2);
            w.string(m.descriptor.description);
          }
          if (m.descriptor.unit) {
            w.tag(3, 2);
            w.string(m.descriptor.unit);
          }
          const data =
            m.dataPointType === DataPointType.GAUGE ? 5 : m.dataPointType === DataPointType.SUM ? 7 : 9;
          w.tag(data, 2);
          dataAt = w.begin();
          run = r;
        }
        if (empty) break;
        if (histogram) histogramPoint(w, r.points[i]!, r.attrs[i]!);
        else numberPoint(w, r.points[i]!, r.attrs[i]!, int);
        points++;
        room -= wt;
      }
    }
  }
  if (rmAt >= 0 || out.length === 0) {
    // Nothing at all: one request with the agent's Resource and no scope (as the SDK path sends).
    if (rmAt < 0) {
      w.tag(1, 2);
      rmAt = w.begin();
      w.raw(resourceBytes(rm.resource));
      resource = rm.resource;
    }
    flush();
  }
  return out;
}
