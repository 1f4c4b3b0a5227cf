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
import { ATTRIBUTE_PARTS, type AttributeParts } from '../attribute-parts.ts';
import type { EntityResources } from '../entity-resources.ts';
import { ATTR_PODNET_ENTITY_KIND } from '../semconv.ts';
import { histogramPoint, numberPoint, resourceBytes, scopeBytes, scratch, temporality } from './fields.ts';
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
  // The bucket of each entity part seen (the agent's for a part without entity keys: node-scoped series).
  const byPart = new Map<Attributes, Bucket>();
  const bucketOf = (entity: Attributes | undefined): Bucket => {
    if (entity === undefined) return agent;
    let e = buckets.get(entity);
    if (e === undefined) {
      e = { resource: entities.resourceFor(entity), runs: [], last: undefined };
      buckets.set(entity, e);
    }
    return e;
  };
  for (const sm of rm.scopeMetrics) {
    for (const metric of sm.metrics) {
      for (const dp of metric.dataPoints as DataPoint<unknown>[]) {
        const given = (dp as { [ATTRIBUTE_PARTS]?: AttributeParts })[ATTRIBUTE_PARTS];
        let point: Attributes;
        let b: Bucket | undefined;
        if (given !== undefined) {
          point = given[0];
          b = byPart.get(given[1]);
          if (b === undefined) {
            b = bucketOf(ATTR_PODNET_ENTITY_KIND in given[1] ? given[1] : undefined);
            byPart.set(given[1], b);
          }
        } else {
          const [p, entity] = entities.split(dp.attributes);
          point = p;
          b = bucketOf(entity);
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

/** The requests of one collection (see the file comment). Always at least one, as the SDK path. */
export function encodeMetricRequests(
  rm: ResourceMetrics,
  entities: EntityResources | undefined,
  maxPoints: number,
): EncodedMetricsRequest[] {
  const out: EncodedMetricsRequest[] = [];
  // A metric's name, description and unit, written once per entity: encoded once per collection.
  const heads = new Map<MetricData, Uint8Array>();
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
        w.uint32(t);
      }
      if (m.dataPointType === DataPointType.SUM && m.isMonotonic) {
        w.tag(3, 0);
        w.uint32(1);
      }
    }
    w.ldelim(dataAt);
    w.ldelim(metricAt);
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
    w.ldelim(scopeAt);
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
    w.ldelim(rmAt);
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
          rmAt = w.fork();
          w.raw(resourceBytes(b.resource));
          resource = b.resource;
        }
        if (scope !== r.scope) {
          endScope();
          w.tag(2, 2);
          scopeAt = w.fork();
          w.raw(scopeBytes(r.scope));
          scope = r.scope;
        }
        if (run !== r) {
          endMetric();
          w.tag(2, 2);
          metricAt = w.fork();
          let head = heads.get(m);
          if (head === undefined) {
            head = metricHead(m);
            heads.set(m, head);
          }
          w.raw(head);
          const data =
            m.dataPointType === DataPointType.GAUGE ? 5 : m.dataPointType === DataPointType.SUM ? 7 : 9;
          w.tag(data, 2);
          dataAt = w.fork();
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
      rmAt = w.fork();
      w.raw(resourceBytes(rm.resource));
      resource = rm.resource;
    }
    flush();
  }
  return out;
}
