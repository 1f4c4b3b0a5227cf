// OTLP metrics requests (ExportMetricsServiceRequest protobuf) encoded straight from a collection: the
// points are grouped by entity (one Resource per entity, entity-resources.ts) and cut into requests of at
// most `maxPoints` weighted points (exporters.ts, splitResourceMetrics) while they are written, without the
// per-point objects, per-entity ResourceMetrics and per-request copies the SDK path builds, and without its
// second (size-estimating) pass. The metric store's own metrics (metric-data.ts StoreMetricData) are
// written from its series, without a data point object each; the grouping is a counting sort of point
// indices (typed arrays), not objects per entity and metric. Requests are made one at a time
// (`metricRequests`, a generator: the exporter asks for the next once the previous is sent), so a
// collection's ~28 MB at 1,000 pods is never held at once. Encoded once and reused: a Resource, a frozen
// attribute object (the store's interned point attributes, an entity's keys), a scope, a metric's head
// (name, description, unit) and tail (temporality, monotonic). Most data points are a store series' number
// point and most runs (an entity's points of one metric) one point: those are written with their lengths
// computed first (metric-writer.ts wholeMetric, fields.ts seriesNumberPoint), the other messages' lengths
// reserved as the last one of their kind needed (writer.ts ldelim moves a body only when that guess misses).
//
// The bytes are those of the SDK path (EntityResources.byEntity → splitResourceMetrics → the SDK's
// ProtobufMetricsSerializer per ResourceMetrics, concatenated): fields in the SDK serializer's order
// (@opentelemetry/otlp-transformer, metrics-serializer), shortest varints. test/otel/protobuf-metrics.test.ts
// compares both on every shape podnet exports (protobuf-metrics-layout.test.ts where the fast paths' guesses
// miss). The request writer and the reading of a point (series or data
// point object) are in metric-writer.ts.
import type { Attributes } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import { DataPointType, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { EntityResources } from '../entity-resources.ts';
import type { StoreCollection } from '../metric-data.ts';
import { ATTR_PODNET_ENTITY_KIND } from '../semconv.ts';
import { attributeBytes } from './fields.ts';
import {
  type EncodedMetricsRequest,
  type Entry,
  entriesOf,
  partsOf,
  pointAt,
  RequestWriter,
  seriesAt,
  weight,
  weight0,
} from './metric-writer.ts';

export type { EncodedMetricsRequest } from './metric-writer.ts';

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
  const r = new RequestWriter(maxPoints, reuse, entries.length);
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
  // A store metric read from its series: its entity per point from the collection (metric-data.ts
  // StoreCollection.entityOf), the bucket once per entity of the collection, no series read here.
  const byCollection = new Map<StoreCollection, Int32Array>();
  let k = 0;
  for (let m = 0; m < entries.length; m++) {
    const e = entries[m]!;
    const st = e.store;
    const c = st !== undefined && st.points === undefined ? st.collection : undefined;
    let known: Int32Array | undefined;
    if (c !== undefined) {
      known = byCollection.get(c);
      if (known === undefined) {
        known = new Int32Array(c.entities.length).fill(-1);
        byCollection.set(c, known);
      }
    }
    for (let i = 0; i < e.count; i++, k++) {
      entryOf[k] = m;
      const ei = c !== undefined ? c.entityOf[st!.from + i]! : -1;
      if (ei >= 0) {
        let b = known![ei]!;
        if (b < 0) {
          const entity = c!.entities[ei]!;
          b = byPart.get(entity) ?? -1;
          if (b < 0) {
            b = bucket(ATTR_PODNET_ENTITY_KIND in entity ? entity : undefined);
            byPart.set(entity, b);
          }
          known![ei] = b;
        }
        bucketOf[k] = b;
        continue;
      }
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
    let single = false;
    if (b !== runBucket || m !== runEntry) {
      runBucket = b;
      runEntry = m;
      run++;
      wt = weight(e, i);
      const next = o + 1 < total ? order[o + 1]! : -1;
      single = next < 0 || bucketOf[next] !== b || entryOf[next] !== m;
    }
    if (r.room < wt && r.rmAt >= 0) {
      onFlush();
      yield r.flush();
    }
    const s = seriesAt(e, i);
    if (s !== undefined) {
      const attrs = s.parts !== undefined ? s.parts[0] : split.get(j)!;
      // A run of one number point (most: the metric has no point attributes) is written whole.
      const bytes = single && !e.histogram ? attributeBytes(attrs, 7) : undefined;
      if (bytes !== undefined) r.wholeMetric(resources[b]!, e, s, bytes, wt);
      else {
        r.open(resources[b]!, e, run);
        r.seriesPoint(e, i, s, attrs, wt);
      }
    } else {
      r.open(resources[b]!, e, run);
      const parts = partsOf(e, i);
      r.seriesPoint(e, i, undefined, parts !== undefined ? parts[0] : split.get(j)!, wt);
    }
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
