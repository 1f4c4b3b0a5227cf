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
import { DataPointType, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { EntityResources } from '../entity-resources.ts';
import { attributeBytes } from './fields.ts';
import { groupByEntity } from './metric-grouping.ts';
import {
  type EncodedMetricsRequest,
  type Entry,
  entriesOf,
  partsOf,
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
 * collection order within each (metric-grouping.ts, kept while the series set is the same).
 */
function* byEntity(
  rm: ResourceMetrics,
  entities: EntityResources,
  entries: readonly Entry[],
  total: number,
  r: RequestWriter,
  onFlush: () => void,
): Generator<EncodedMetricsRequest, void, undefined> {
  const g = groupByEntity(rm, entities, entries, total);
  const { order, bucketAt, entryAt, resources, split } = g;
  try {
    let runBucket = -1;
    let runEntry = -1;
    let run = -1;
    let wt = 1;
    for (let o = 0; o < total; o++) {
      const j = order[o]!;
      const b = bucketAt[o]!;
      const m = entryAt[o]!;
      const e = entries[m]!;
      const i = j - e.first;
      let single = false;
      if (b !== runBucket || m !== runEntry) {
        runBucket = b;
        runEntry = m;
        run++;
        wt = weight(e, i);
        single = o + 1 >= total || bucketAt[o + 1] !== b || entryAt[o + 1] !== m;
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
  } finally {
    g.release();
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
