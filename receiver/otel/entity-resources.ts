// One Resource per entity in OTLP (the semconv puts `k8s.*` metrics on a K8s Resource): a collection read
// from the metric store under the agent's Resource is regrouped into one ResourceMetrics per entity — a
// pod's carries `k8s.pod.uid`, `k8s.pod.name`, `k8s.namespace.name` (+ allow-listed labels), the host and
// plain netns theirs (`podnet.entity.kind`, `podnet.netns.*`) — each on top of the agent's attributes
// (`k8s.node.name`, `host.name`, `service.*`). Points without entity keys (node-scoped metrics, podnet's
// own telemetry) stay on the agent's Resource. The Prometheus endpoint does not go through here: there the
// entity keys stay labels on every series (plus `target_info`).
//
// The store builds a series' attributes as two parts, point attributes then entity keys (attribute-parts.ts);
// an attribute-less series' attributes are the entity keys themselves (one frozen object per netns). So the
// entity of a point is found by object identity, without looking at its keys, in the common case.
import type { Attributes } from '@opentelemetry/api';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  type DataPoint,
  DataPointType,
  type MetricData,
  type ResourceMetrics,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import { ATTRIBUTE_PARTS, type AttributeParts } from './attribute-parts.ts';
import { ATTR_K8S_POD_LABEL_PREFIX, ATTR_PODNET_ENTITY_KIND, ENTITY_KEYS } from './semconv.ts';

const NONE: Attributes = Object.freeze({});
const ENTITY_KEY_SET = new Set(ENTITY_KEYS);

export function isEntityKey(key: string): boolean {
  return ENTITY_KEY_SET.has(key) || key.startsWith(ATTR_K8S_POD_LABEL_PREFIX);
}

type Split = readonly [point: Attributes, entity: Attributes | undefined];

/** Entity Resources (and point/entity splits) of one agent Resource. */
export class EntityResources {
  readonly agent: Resource;
  readonly #resources = new WeakMap<Attributes, Resource>();
  readonly #splits = new WeakMap<Attributes, Split>();
  /** Entity parts built by splitting keys, by their JSON: one object per distinct entity. */
  #canonical = new Map<string, Attributes>();

  constructor(agent: Resource) {
    this.agent = agent;
  }

  /** The Resource of an entity: the agent's attributes, then the entity keys. */
  resourceFor(entity: Attributes): Resource {
    let r = this.#resources.get(entity);
    if (r === undefined) {
      r = resourceFromAttributes(
        { ...this.agent.attributes, ...entity },
        this.agent.schemaUrl !== undefined ? { schemaUrl: this.agent.schemaUrl } : {},
      );
      this.#resources.set(entity, r);
    }
    return r;
  }

  /** `attrs` as point attributes and entity keys (undefined: no entity, the agent's Resource). */
  split(attrs: Attributes): Split {
    if (!(ATTR_PODNET_ENTITY_KIND in attrs)) return [attrs, undefined];
    // Points the store made carry their parts (ATTRIBUTE_PARTS, read by byEntity and the encoder); others
    // (a consumer's copy without them): split by key, once per object.
    let s = this.#splits.get(attrs);
    if (s !== undefined) return s;
    const point: Attributes = {};
    const entity: Attributes = {};
    let pointKeys = 0;
    for (const k in attrs) {
      if (isEntityKey(k)) entity[k] = attrs[k];
      else {
        point[k] = attrs[k];
        pointKeys++;
      }
    }
    // An attribute-less series: its attributes are the (shared, frozen) entity object itself.
    if (pointKeys === 0 && Object.isFrozen(attrs)) s = [NONE, attrs];
    else {
      const key = JSON.stringify(entity);
      let e = this.#canonical.get(key);
      if (e === undefined) {
        if (this.#canonical.size >= 100_000) this.#canonical.clear();
        e = Object.freeze(entity);
        this.#canonical.set(key, e);
      }
      s = [pointKeys === 0 ? NONE : point, e];
    }
    this.#splits.set(attrs, s);
    return s;
  }

  /**
   * One ResourceMetrics per entity (the agent's first, always present), metrics and points in their
   * original order within each; point attributes without the entity keys (new point objects: the
   * collection handed in stays as it was). One map lookup per point, no spread (at 170,000 points an export,
   * nested maps, spreads and a WeakMap lookup per point cost more than serializing the points).
   */
  byEntity(rm: ResourceMetrics): ResourceMetrics[] {
    const agent: Bucket = {
      resource: rm.resource,
      scopes: [],
      scope: undefined,
      metric: undefined,
      points: [],
    };
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
          } else [point, entity] = this.split(dp.attributes);
          let b = agent;
          if (entity !== undefined) {
            let e = buckets.get(entity);
            if (e === undefined) {
              e = {
                resource: this.resourceFor(entity),
                scopes: [],
                scope: undefined,
                metric: undefined,
                points: [],
              };
              buckets.set(entity, e);
            }
            b = e;
          }
          if (b.metric !== metric) {
            if (b.scope !== sm.scope) {
              b.scopes.push({ scope: sm.scope, metrics: [] });
              b.scope = sm.scope;
            }
            b.points = [];
            b.scopes[b.scopes.length - 1]!.metrics.push(withPoints(metric, b.points));
            b.metric = metric;
          }
          b.points.push(
            point === dp.attributes
              ? dp
              : { startTime: dp.startTime, endTime: dp.endTime, attributes: point, value: dp.value },
          );
        }
      }
    }
    const out: ResourceMetrics[] = [{ resource: agent.resource, scopeMetrics: agent.scopes }];
    for (const b of buckets.values()) out.push({ resource: b.resource, scopeMetrics: b.scopes });
    return out;
  }
}

/** The ResourceMetrics being built for one entity: its scopes, and the metric points are appended to. */
interface Bucket {
  readonly resource: Resource;
  readonly scopes: ScopeMetrics[];
  scope: ScopeMetrics['scope'] | undefined;
  metric: MetricData | undefined;
  points: DataPoint<unknown>[];
}

/**
 * `metric` with other points. Written out rather than spread: at one point per entity and metric, this
 * runs once per data point.
 */
function withPoints(m: MetricData, dataPoints: DataPoint<unknown>[]): MetricData {
  switch (m.dataPointType) {
    case DataPointType.SUM:
      return {
        descriptor: m.descriptor,
        aggregationTemporality: m.aggregationTemporality,
        dataPointType: m.dataPointType,
        isMonotonic: m.isMonotonic,
        dataPoints: dataPoints as DataPoint<number>[],
      };
    case DataPointType.GAUGE:
      return {
        descriptor: m.descriptor,
        aggregationTemporality: m.aggregationTemporality,
        dataPointType: m.dataPointType,
        dataPoints: dataPoints as DataPoint<number>[],
      };
    default:
      return { ...m, dataPoints } as MetricData;
  }
}
