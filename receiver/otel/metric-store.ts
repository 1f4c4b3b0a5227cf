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
// A collection comes as point objects (`Probe.collect`) or as typed columns the probe filled by series
// key (`Probe.collectInto` into `sink(probe)`: receiver/probe/sink.ts, point-buffer.ts), with no object
// per value; both are read in the order written, with the same checks and the same series.
//
// Cardinality is bounded per metric (`cardinalityLimit` series); points past the limit are dropped and
// counted per metric (`podnet.metric.series.overflow.count`).
//
// Split by concern: series-state.ts (the state kept per series, netns and probe; series keys),
// series-writer.ts (one point into the series), series-carry.ts (values carried across a probe's
// re-creation), metric-data.ts (series → MetricData, the collections handed out, declaration conflicts),
// entity-totals.ts (live view); what other modules import is re-exported here.
import type { HrTime } from '@opentelemetry/api';
import type { CollectionResult, MetricData, MetricProducer } from '@opentelemetry/sdk-metrics';
import type { Logger } from '../log/logger.ts';
import type { EntitySource } from '../pods/entity.ts';
import type { HistogramValue, MetricDef, MetricPoint } from '../probe/types.ts';
import { cachedAttributesKey } from './attributes-key.ts';
import { type EntityTotals, entityTotals } from './entity-totals.ts';
import { collectSeries, definitionConflict, type StoreCollection } from './metric-data.ts';
import { PointBuffer, SlotTable } from './point-buffer.ts';
import { carryOver } from './series-carry.ts';
import {
  hrTimeFromMs,
  isHistogram,
  type MetricSeries,
  type NetnsSeries,
  type ProbeSeries,
  validHistogram,
} from './series-state.ts';
import { type Run, SeriesWriter, trimSlots } from './series-writer.ts';
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

export class MetricStore implements MetricProducer {
  /** Writes points into series (series-writer.ts); holds the entity source, allow-list and limit. */
  readonly #writer: SeriesWriter;
  readonly #log: Logger | undefined;
  #defs = new Map<string, Registration>();
  /** Calls of `update` so far (the per-update series count of each metric is stamped with it). */
  #updates = 0;
  /** Series per probe: the latest collection's, and their state (start time, last value). */
  readonly #probes = new Map<string, ProbeSeries>();
  readonly #invalid = new Map<string, number>();
  readonly #warned = new Set<string>();
  readonly #extra: MetricSource[] = [];
  /** Collections handed out since the last update (metric-data.ts StoreCollection). */
  #open: WeakRef<StoreCollection>[] = [];

  constructor(options: MetricStoreOptions) {
    this.#writer = new SeriesWriter({
      entities: options.entities,
      labelAllowlist: options.labelAllowlist ?? [],
      limit: options.cardinalityLimit ?? 10_000,
    });
    this.#log = options.log;
  }

  configure(options: {
    labelAllowlist?: readonly string[];
    cardinalityLimit?: number;
    entities?: EntitySource;
  }): void {
    const w = this.#writer;
    if (options.labelAllowlist) w.labelAllowlist = options.labelAllowlist;
    if (options.cardinalityLimit !== undefined) w.limit = options.cardinalityLimit;
    if (options.entities) w.entities = options.entities;
    if (options.labelAllowlist || options.entities) w.entityVersion++;
  }

  get cardinalityLimit(): number {
    return this.#writer.limit;
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
    return this.#writer.overflow;
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

  /**
   * A buffer for `probe`'s next collection through the column path (receiver/probe/sink.ts,
   * `Probe.collectInto`), handed to `update` once filled.
   */
  sink(probe: string): PointBuffer {
    const ps = this.#probeSeries(probe);
    return new PointBuffer(this.#table(ps), ps.latest.length + 64);
  }

  /** The probe's slot table; a new one when full (keys and attribute sets that come and go). */
  #table(ps: ProbeSeries): SlotTable {
    if (ps.table === undefined || ps.table.full) ps.table = new SlotTable();
    return ps.table;
  }

  #probeSeries(probe: string): ProbeSeries {
    let ps = this.#probes.get(probe);
    if (!ps) {
      ps = { gen: 0, time: undefined, carrying: false, byNetns: new Map(), latest: [], spare: undefined };
      this.#probes.set(probe, ps);
    }
    return ps;
  }

  /**
   * Replace `probe`'s series with the points of its latest collection, taken at `timeMs`: point objects,
   * or the columns of a buffer from `sink` (the same points, in the order written).
   */
  update(probe: string, points: readonly MetricPoint[] | PointBuffer, timeMs: number = Date.now()): void {
    // Collections still read keep the values they were collected with.
    // Only the metrics of this probe change: an export streamed meanwhile keeps the others as series.
    if (this.#open.length > 0) this.#open = this.#open.filter((ref) => ref.deref()?.freeze(probe) ?? false);
    const ps = this.#probeSeries(probe);
    const gen = ++ps.gen;
    const time = hrTimeFromMs(timeMs);
    const run: Run = {
      ps,
      gen,
      update: ++this.#updates,
      time,
      prevTime: ps.time,
      latest: ps.spare ?? [],
      count: 0,
      cur: undefined,
      curNetns: Number.NaN,
      pointNetns: Number.NaN,
      table: undefined,
      grown: undefined,
    };
    if (points instanceof PointBuffer) this.#putColumns(probe, run, points);
    else {
      // Points given as objects have slots too (by metric and attributes key): their series are found
      // the same way, with no map per netns.
      const table = this.#table(ps);
      run.table = table;
      for (const p of points) {
        const reg = this.#checked(probe, this.#defs.get(p.metric), p.metric, p.value);
        if (reg === undefined) continue;
        const attrsKey = p.attributes ? cachedAttributesKey(p.attributes) : '';
        const slot = table.slotOfPoint(p.metric, p.attributes, attrsKey);
        run.pointNetns = p.netns ?? 0;
        this.#writer.put(run, reg, p.attributes, attrsKey, p.value, slot);
      }
    }
    // Forget series (and netns) this collection did not report. `forEach`, not `for…of` with a
    // destructured entry: that made an entry array (and a result object) per netns of every probe.
    ps.byNetns.forEach((ns, netns, byNetns) => {
      if (ns.gen !== gen || ns.seen === 0) byNetns.delete(netns);
      else if (ns.size !== ns.seen) forgetUnreported(ns, time);
    });
    trimSlots(run);
    if (run.latest.length !== run.count) run.latest.length = run.count;
    ps.spare = ps.latest;
    ps.latest = run.latest;
    ps.time = time;
    if (ps.carriedUntil !== undefined && gen >= ps.carriedUntil) {
      ps.carried = undefined;
      ps.carriedUntil = undefined;
    }
  }

  /** The values of a buffer: each slot's registration looked up once per set of definitions. */
  #putColumns(probe: string, run: Run, b: PointBuffer): void {
    const table = b.table;
    run.table = table;
    if (table.cacheOf !== this.#defs) {
      table.cache.fill(undefined);
      table.cacheOf = this.#defs;
    }
    const { slots, netns, values, objects } = b;
    for (let i = 0; i < b.length; i++) {
      const slot = slots[i]!;
      if (slot < 0) {
        const p = objects[-1 - slot]!;
        const reg = this.#checked(probe, this.#defs.get(p.metric), p.metric, p.value);
        if (reg === undefined) continue;
        const attrsKey = p.attributes ? cachedAttributesKey(p.attributes) : '';
        const at = table.slotOfPoint(p.metric, p.attributes, attrsKey);
        run.pointNetns = p.netns ?? 0;
        this.#writer.put(run, reg, p.attributes, attrsKey, p.value, at);
        continue;
      }
      const key = table.keys[slot]!;
      // The slot's registration when the probe declared the metric (null: it did not).
      let reg = table.cache[slot] as Registration | null | undefined;
      if (reg === undefined) {
        const r = this.#defs.get(key.metric);
        reg = r?.probes.has(probe) ? r : null;
        table.cache[slot] = reg;
      }
      const value = values[i]!;
      if (reg === null)
        this.#countInvalid(key.metric, `probe ${probe} reported undeclared metric ${key.metric}`);
      else if (this.#valid(probe, reg, key.metric, value)) {
        run.pointNetns = netns[i]!;
        this.#writer.put(run, reg, key.attributes, table.attrsKeys[slot]!, value, slot);
      }
    }
  }

  /** `reg` when a point of `metric` with `value` from `probe` is to be stored; else undefined (malformed: counted). */
  #checked(
    probe: string,
    reg: Registration | undefined,
    metric: string,
    value: number | HistogramValue,
  ): Registration | undefined {
    if (!reg?.probes.has(probe)) {
      this.#countInvalid(metric, `probe ${probe} reported undeclared metric ${metric}`);
      return undefined;
    }
    return this.#valid(probe, reg, metric, value) ? reg : undefined;
  }

  /** Whether a point of a declared metric is to be stored: enabled, a value of its kind (else counted). */
  #valid(probe: string, reg: Registration, metric: string, value: number | HistogramValue): boolean {
    if (!reg.enabled) return false;
    const def = reg.def;
    if (def.kind === 'histogram') {
      const problem = isHistogram(value) ? validHistogram(value) : 'value is a number';
      if (problem) {
        this.#countInvalid(metric, `histogram ${metric} from ${probe}: ${problem}`);
        return false;
      }
    } else if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.#countInvalid(metric, `${def.kind} ${metric} from ${probe}: value is not a finite number`);
      return false;
    }
    return true;
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

/** Drop the series of a netns the latest update (at `time`) did not report. */
function forgetUnreported(ns: NetnsSeries, time: HrTime): void {
  const keyed = ns.keyed;
  if (keyed !== undefined) {
    for (const [k, s] of keyed.plain) if (s.time !== time) keyed.plain.delete(k);
    for (const [name, m] of keyed.withAttributes) {
      for (const [k, s] of m) if (s.time !== time) m.delete(k);
      if (m.size === 0) keyed.withAttributes.delete(name);
    }
  }
  const bySlot = ns.bySlot;
  for (let i = 0; i < bySlot.length; i++)
    if (bySlot[i] !== undefined && bySlot[i]!.time !== time) bySlot[i] = undefined;
  ns.size = ns.seen;
}
