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
import type { DataPoint, MetricData, ResourceMetrics, ScopeMetrics } from '@opentelemetry/sdk-metrics';
import { compositeParts } from './attribute-parts.ts';
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
    let s = this.#splits.get(attrs);
    if (s !== undefined) return s;
    const parts = compositeParts(attrs);
    if (parts) s = [parts[0], ATTR_PODNET_ENTITY_KIND in parts[1] ? parts[1] : undefined];
    else if (!(ATTR_PODNET_ENTITY_KIND in attrs)) s = [attrs, undefined];
    else {
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
    }
    this.#splits.set(attrs, s);
    return s;
  }

  /**
   * One ResourceMetrics per entity (the agent's first, always present), metrics and points in their
   * original order within each; point attributes without the entity keys.
   */
  byEntity(rm: ResourceMetrics): ResourceMetrics[] {
    /** entity (undefined: agent) → scope → metric → points */
    const groups = new Map<
      Attributes | undefined,
      Map<ScopeMetrics['scope'], Map<MetricData, DataPoint<unknown>[]>>
    >();
    groups.set(undefined, new Map());
    for (const sm of rm.scopeMetrics) {
      for (const metric of sm.metrics) {
        for (const dp of metric.dataPoints as DataPoint<unknown>[]) {
          const [point, entity] = this.split(dp.attributes);
          let scopes = groups.get(entity);
          if (!scopes) {
            scopes = new Map();
            groups.set(entity, scopes);
          }
          let metrics = scopes.get(sm.scope);
          if (!metrics) {
            metrics = new Map();
            scopes.set(sm.scope, metrics);
          }
          let points = metrics.get(metric);
          if (!points) {
            points = [];
            metrics.set(metric, points);
          }
          points.push(point === dp.attributes ? dp : { ...dp, attributes: point });
        }
      }
    }
    const out: ResourceMetrics[] = [];
    for (const [entity, scopes] of groups) {
      const scopeMetrics: ScopeMetrics[] = [];
      for (const [scope, metrics] of scopes) {
        const list: MetricData[] = [];
        for (const [metric, dataPoints] of metrics) list.push({ ...metric, dataPoints } as MetricData);
        scopeMetrics.push({ scope, metrics: list });
      }
      out.push({ resource: entity === undefined ? rm.resource : this.resourceFor(entity), scopeMetrics });
    }
    return out;
  }
}
