// Probe data → OTel metric data, without the SDK's aggregation state.
//
// Kernel counters are already cumulative, so podnet does not re-aggregate them: every collection replaces
// the probe's previous points, and `collect()` (called by every reader: the Prometheus endpoint and the
// periodic OTLP readers) hands out the latest collection only, as MetricData whose data points are made
// when read (metric-data.ts StoreMetricData; the OTLP protobuf encoder writes from the series instead). A series that a probe no
// longer reports (a pod that is gone) disappears from the next export: the SDK's cumulative state would
// keep it forever (an observable counter that stops observing an attribute set still exports its last
// value under CUMULATIVE temporality: its TemporalMetricProcessor merges the last accumulations with
// the unreported ones). Counters are exported as cumulative monotonic sums with a
// start time per series (first seen, reset when the value goes down), levels as gauges, distributions as
// explicit-bucket histograms taken as given by the probe.
//
// Cardinality is bounded per metric (`cardinalityLimit` series); points past the limit are dropped and
// counted per metric (`podnet.metric.series.overflow.count`).
//
// Split by concern: series-state.ts (the state kept per series, netns and probe; series keys),
// series-carry.ts (values carried across a probe's re-creation), metric-data.ts (series → MetricData, the
// collections handed out, declaration conflicts), entity-totals.ts (live view); what other modules import is re-exported here.
import type { CollectionResult, MetricData, MetricProducer } from '@opentelemetry/sdk-metrics';
import type { Logger } from '../log/logger.ts';
import type { EntitySource } from '../pods/entity.ts';
import type {
  AttributeValue,
  MetricDef,
  MetricPoint,
  Attributes as ProbeAttributes,
} from '../probe/types.ts';
import { attributeParts } from './attribute-parts.ts';
import { entityAttributes, resolveEntity } from './entity-attributes.ts';
import { type EntityTotals, entityTotals } from './entity-totals.ts';
import { collectSeries, definitionConflict, type StoreCollection } from './metric-data.ts';
import { carryOver, takeUpCarried, withCarry } from './series-carry.ts';
import {
  cachedAttributesKey,
  hrTimeFromMs,
  isHistogram,
  type MetricSeries,
  type NetnsSeries,
  NO_ATTRIBUTES,
  NO_PARTS,
  type ProbeSeries,
  SeriesState,
  sameAttributes,
  validHistogram,
} from './series-state.ts';
import { PODNET_VERSION } from './version.ts';

export { definitionConflict } from './metric-data.ts';
export { hrTimeFromMs, type MetricSeries } from './series-state.ts';

export interface RegisteredMetric {
  readonly def: MetricDef;
  readonly probe: string;
  /** Resolved from the definition's default and `metrics.<name>.enabled` in the config. */
  readonly enabled: boolean;
}

export interface MetricStoreOptions {
  readonly entities: EntitySource;
  readonly labelAllowlist?: readonly string[];
  readonly cardinalityLimit?: number;
  readonly log?: Logger;
}

/** A metric as the store keeps it: the probes declaring it, and its series in the current update. */
type Registration = RegisteredMetric & { probes: Set<string>; update: number; series: number };

/** Extra metrics (self-telemetry) appended to every collection. */
export type MetricSource = () => MetricData[];

const MAX_INTERNED = 50_000;

export class MetricStore implements MetricProducer {
  #entities: EntitySource;
  #labelAllowlist: readonly string[];
  #limit: number;
  readonly #log: Logger | undefined;
  #defs = new Map<string, Registration>();
  /** Calls of `update` so far (the per-update series count of each metric is stamped with it). */
  #updates = 0;
  /** Series per probe: the latest collection's, and their state (start time, last value). */
  readonly #probes = new Map<string, ProbeSeries>();
  /** One frozen copy per distinct set of unfrozen point attributes (by attributes key). */
  readonly #interned = new Map<string, ProbeAttributes>();
  /** Bumped when the entity attributes change for every entity (label allow-list, entity source). */
  #entityVersion = 0;
  readonly #overflow = new Map<string, number>();
  readonly #invalid = new Map<string, number>();
  readonly #warned = new Set<string>();
  readonly #extra: MetricSource[] = [];
  /** Collections handed out since the last update (metric-data.ts StoreCollection). */
  #open: WeakRef<StoreCollection>[] = [];

  constructor(options: MetricStoreOptions) {
    this.#entities = options.entities;
    this.#labelAllowlist = options.labelAllowlist ?? [];
    this.#limit = options.cardinalityLimit ?? 10_000;
    this.#log = options.log;
  }

  configure(options: {
    labelAllowlist?: readonly string[];
    cardinalityLimit?: number;
    entities?: EntitySource;
  }): void {
    if (options.labelAllowlist) this.#labelAllowlist = options.labelAllowlist;
    if (options.cardinalityLimit !== undefined) this.#limit = options.cardinalityLimit;
    if (options.entities) this.#entities = options.entities;
    if (options.labelAllowlist || options.entities) this.#entityVersion++;
  }

  get cardinalityLimit(): number {
    return this.#limit;
  }

  /**
   * The metrics probes declared. A name may be declared by several probes (shared self-telemetry such as
   * `podnet.ebpf.events.lost`, told apart by an attribute) when the declarations agree on kind, unit,
   * attributes and scope; a conflicting declaration is refused (its probe's points are dropped and counted).
   */
  setDefinitions(defs: Iterable<RegisteredMetric>): void {
    const map = new Map<string, Registration>();
    for (const d of defs) {
      const prev = map.get(d.def.name);
      if (!prev) {
        map.set(d.def.name, { ...d, probes: new Set([d.probe]), update: 0, series: 0 });
        continue;
      }
      const conflict = definitionConflict(prev.def, d.def);
      if (conflict) {
        this.#log?.error(
          { metric: d.def.name, probes: [prev.probe, d.probe] },
          `conflicting declarations of ${d.def.name} (${conflict}); points of ${d.probe} are dropped`,
        );
        continue;
      }
      prev.probes.add(d.probe);
    }
    this.#defs = map;
  }

  definitions(): readonly RegisteredMetric[] {
    return [...this.#defs.values()];
  }

  addSource(source: MetricSource): void {
    this.#extra.push(source);
  }

  /** Points dropped by the cardinality limit, per metric, since start. */
  overflowCounts(): ReadonlyMap<string, number> {
    return this.#overflow;
  }

  /** Points dropped as malformed (undeclared metric, bad histogram), per metric, since start. */
  invalidCounts(): ReadonlyMap<string, number> {
    return this.#invalid;
  }

  seriesCount(): number {
    let n = 0;
    for (const p of this.#probes.values()) n += p.latest.length;
    return n;
  }

  /** Replace `probe`'s series with the points of its latest collection, taken at `timeMs`. */
  update(probe: string, points: readonly MetricPoint[], timeMs: number = Date.now()): void {
    // Collections still read keep the values they were collected with.
    // Only the metrics of this probe change: an export streamed meanwhile keeps the others as series.
    if (this.#open.length > 0) this.#open = this.#open.filter((ref) => ref.deref()?.freeze(probe) ?? false);
    const time = hrTimeFromMs(timeMs);
    let ps = this.#probes.get(probe);
    if (!ps) {
      ps = { gen: 0, byNetns: new Map(), latest: [] };
      this.#probes.set(probe, ps);
    }
    const gen = ++ps.gen;
    const update = ++this.#updates;
    const latest: SeriesState[] = [];
    let cur: NetnsSeries | undefined;
    let curNetns = Number.NaN;
    for (const p of points) {
      const reg = this.#defs.get(p.metric);
      if (!reg?.probes.has(probe)) {
        this.#countInvalid(p.metric, `probe ${probe} reported undeclared metric ${p.metric}`);
        continue;
      }
      if (!reg.enabled) continue;
      const def = reg.def;
      if (def.kind === 'histogram') {
        const problem = isHistogram(p.value) ? validHistogram(p.value) : 'value is a number';
        if (problem) {
          this.#countInvalid(p.metric, `histogram ${p.metric} from ${probe}: ${problem}`);
          continue;
        }
      } else if (typeof p.value !== 'number' || !Number.isFinite(p.value)) {
        this.#countInvalid(p.metric, `${def.kind} ${p.metric} from ${probe}: value is not a finite number`);
        continue;
      }
      const entityScoped = (def.scope ?? 'entity') === 'entity';
      const netns = entityScoped ? (p.netns ?? 0) : -1;
      if (netns !== curNetns) {
        curNetns = netns;
        cur = ps.byNetns.get(netns);
        if (!cur) {
          cur = {
            plain: new Map(),
            withAttributes: new Map(),
            size: 0,
            gen: 0,
            seen: 0,
            entity: undefined,
            entityAttrs: NO_ATTRIBUTES,
            entityParts: NO_PARTS,
            partsByPoint: new Map(),
            entityVersion: -1,
            attrsChanged: 0,
          };
          ps.byNetns.set(netns, cur);
        }
        if (cur.gen !== gen) {
          cur.gen = gen;
          cur.seen = 0;
          const entity = entityScoped ? resolveEntity(this.#entities, netns) : undefined;
          if (entityScoped && (entity !== cur.entity || cur.entityVersion !== this.#entityVersion)) {
            cur.entity = entity;
            cur.entityVersion = this.#entityVersion;
            // Frozen: shared by the netns' attribute-less series (and their cached /metrics label text).
            const ea = Object.freeze(entityAttributes(entity, netns, this.#labelAllowlist));
            // An equal view (a source that hands out new objects) keeps the series' attribute objects.
            if (!sameAttributes(cur.entityAttrs, ea)) {
              cur.entityAttrs = ea;
              cur.entityParts = attributeParts(NO_ATTRIBUTES, ea);
              cur.partsByPoint.clear();
              cur.attrsChanged = gen;
            }
          }
        }
      }
      const ns = cur!;
      let byAttrs: Map<string, SeriesState> | undefined;
      let attrsKey = '';
      let s: SeriesState | undefined;
      if (p.attributes) attrsKey = cachedAttributesKey(p.attributes);
      if (attrsKey !== '') {
        byAttrs = ns.withAttributes.get(def.name);
        if (!byAttrs) {
          byAttrs = new Map();
          ns.withAttributes.set(def.name, byAttrs);
        }
        s = byAttrs.get(attrsKey);
      } else s = ns.plain.get(def.name);
      if (s?.gen === gen) continue; // duplicate point within one collection: keep the first
      // Series of the metric in this update (on the registration: no map per update).
      if (reg.update !== update) {
        reg.update = update;
        reg.series = 0;
      }
      const n = reg.series;
      if (n >= this.#limit) {
        this.#overflow.set(def.name, (this.#overflow.get(def.name) ?? 0) + 1);
        continue;
      }
      reg.series = n + 1;
      if (!s) {
        s = new SeriesState(def, p.value, time, gen);
        this.#setAttributes(s, p.attributes, attrsKey, ns);
        takeUpCarried(ps, netns, `${def.name}\u0000${attrsKey}`, s, p.value);
        if (byAttrs) byAttrs.set(attrsKey, s);
        else ns.plain.set(def.name, s);
        ns.size++;
      } else {
        s.def = def; // a reload may hand in a new declaration object
        if (ns.attrsChanged === gen) this.#setAttributes(s, p.attributes, attrsKey, ns);
        // The start stays while the series was in the previous collection and did not go down.
        const value = s.carry === undefined ? p.value : withCarry(p.value, s.carry);
        const prev = s.value;
        const last = isHistogram(prev) ? prev.count : prev;
        const scalar = isHistogram(value) ? value.count : value;
        if (s.gen !== gen - 1 || scalar < last) {
          s.startTime = time;
          s.carry = undefined; // the new instance's counter went down: a real reset
          s.value = p.value;
        } else s.value = value;
        s.time = time;
        s.gen = gen;
      }
      ns.seen++;
      latest.push(s);
    }
    // Forget series (and netns) this collection did not report.
    for (const [netns, ns] of ps.byNetns) {
      if (ns.gen !== gen || ns.seen === 0) {
        ps.byNetns.delete(netns);
        continue;
      }
      if (ns.size === ns.seen) continue;
      for (const [k, s] of ns.plain) if (s.gen !== gen) ns.plain.delete(k);
      for (const [name, m] of ns.withAttributes) {
        for (const [k, s] of m) if (s.gen !== gen) m.delete(k);
        if (m.size === 0) ns.withAttributes.delete(name);
      }
      ns.size = ns.seen;
    }
    ps.latest = latest;
    if (ps.carriedUntil !== undefined && gen >= ps.carriedUntil) {
      ps.carried = undefined;
      ps.carriedUntil = undefined;
    }
  }

  /**
   * A new series' attributes: the entity keys alone (shared), or the point attributes followed by them,
   * with those two parts (attribute-parts.ts); unfrozen point attributes are replaced by one frozen copy
   * per distinct set, so their label text is rendered (and their OTLP bytes encoded) once too.
   */
  #setAttributes(s: SeriesState, point: ProbeAttributes | undefined, key: string, ns: NetnsSeries): void {
    const entity = ns.entityAttrs;
    if (!point || key === '') {
      s.parts = ns.entityParts;
      return;
    }
    let shared = point;
    if (!Object.isFrozen(point)) {
      const interned = this.#interned.get(key);
      if (interned) shared = interned;
      else {
        shared = Object.freeze({ ...point });
        if (this.#interned.size >= MAX_INTERNED) this.#interned.clear();
        this.#interned.set(key, shared);
      }
    }
    // One parts array per point attribute set in the netns, shared by its metrics' series.
    let parts = ns.partsByPoint.get(shared);
    if (parts === undefined) {
      parts = attributeParts(shared as Record<string, AttributeValue>, entity);
      // Bounded: attribute sets that come and go (interned copies replaced) would otherwise pile up.
      if (ns.partsByPoint.size >= 4096) ns.partsByPoint.clear();
      ns.partsByPoint.set(shared, parts);
    }
    s.parts = parts;
  }

  removeProbe(probe: string): void {
    this.#probes.delete(probe);
  }

  /**
   * The probe is being replaced by a new instance (a reload changed its arguments): its counters and
   * histograms continue from their current values (and start times) instead of restarting at 0: a
   * series the new instance reports within CARRY_COLLECTIONS collections takes its predecessor's value
   * up (a counter that is 0 until its first hit is often not reported at all); later, it starts anew.
   */
  carryOverProbe(probe: string): void {
    const ps = this.#probes.get(probe);
    if (ps) carryOver(ps);
  }

  /** All current series (for /inspect and tests). */
  series(): MetricSeries[] {
    const out: MetricSeries[] = [];
    for (const p of this.#probes.values()) for (const s of p.latest) out.push(s);
    return out;
  }

  async collect(): Promise<CollectionResult> {
    // A copy: the extra sources' metrics are not the collection's.
    const metrics = [...this.#collectStore().metrics] as unknown as MetricData[];
    const errors: unknown[] = [];
    for (const src of this.#extra) {
      try {
        metrics.push(...src());
      } catch (err) {
        errors.push(err);
      }
    }
    return {
      // The resource is ignored by the SDK's collector (it uses the provider's); an empty one satisfies the type.
      resourceMetrics: {
        resource: undefined as never,
        scopeMetrics: [{ scope: { name: 'podnet', version: PODNET_VERSION }, metrics }],
      },
      errors,
    };
  }

  /**
   * The latest series as one StoreCollection (metric-data.ts): metrics in the order of their first
   * series (probe after probe), each metric's series in probe order, in one array; no data point objects
   * until a reader asks for them. Registered as open: an `update` first freezes the metrics it changes.
   */
  #collectStore(): StoreCollection {
    const c = collectSeries(this.#probes);
    this.#open.push(new WeakRef(c));
    return c;
  }

  /** Per-entity totals of the latest collection, for the live view (entity-totals.ts). */
  entityTotals(): EntityTotals {
    return entityTotals(this.series());
  }

  #countInvalid(metric: string, message: string): void {
    this.#invalid.set(metric, (this.#invalid.get(metric) ?? 0) + 1);
    if (!this.#warned.has(message)) {
      this.#warned.add(message);
      this.#log?.warn({ metric }, `dropping malformed point: ${message}`);
    }
  }
}
