// Probe data → OTel metric data, without the SDK's aggregation state.
//
// Kernel counters are already cumulative, so podnet does not re-aggregate them: every collection replaces
// the probe's previous points, and `collect()` (called by every reader: the Prometheus endpoint and the
// periodic OTLP readers) builds `MetricData` from the latest collection only. A series that a probe no
// longer reports (a pod that is gone) disappears from the next export: the SDK's cumulative state would
// keep it forever (otel-conventions.md §2.2). Counters are exported as cumulative monotonic sums with a
// start time per series (first seen, reset when the value goes down), levels as gauges, distributions as
// explicit-bucket histograms taken as given by the probe.
//
// Cardinality is bounded per metric (`cardinalityLimit` series); points past the limit are dropped and
// counted per metric (`podnet.metric.series.overflow.count`).
import { type Attributes, type HrTime, ValueType } from '@opentelemetry/api';
import {
  AggregationTemporality,
  type CollectionResult,
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { Logger } from '../log/logger.ts';
import type { EntitySource } from '../pods/entity.ts';
import type {
  AttributeValue,
  HistogramValue,
  MetricDef,
  MetricPoint,
  Attributes as ProbeAttributes,
} from '../probe/types.ts';
import { entityAttributes, resolveEntity } from './entity-attributes.ts';
import { ATTR_NETWORK_IO_DIRECTION, ATTR_PODNET_ENTITY_KIND, ATTR_PODNET_NETNS_INODE } from './semconv.ts';
import { PODNET_VERSION } from './version.ts';

export interface MetricSeries {
  readonly def: MetricDef;
  readonly attributes: Record<string, AttributeValue>;
  readonly value: number | HistogramValue;
  readonly startTime: HrTime;
  readonly time: HrTime;
}

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

/** Extra metrics (self-telemetry) appended to every collection. */
export type MetricSource = () => MetricData[];

export function hrTimeFromMs(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

/** Identity of a series within one probe: metric, netns (which fixes the entity keys), point attributes. */
function seriesKey(metric: string, netns: number, attrs: ProbeAttributes | undefined): string {
  let k = `${metric}\u0000${netns}`;
  if (!attrs) return k;
  const keys = Object.keys(attrs);
  if (keys.length > 1) keys.sort();
  for (const key of keys) {
    const v = attrs[key];
    k += `\u0000${key}\u0001${typeof v === 'string' ? v : JSON.stringify(v)}`;
  }
  return k;
}

function isHistogram(v: number | HistogramValue): v is HistogramValue {
  return typeof v === 'object';
}

export function validHistogram(v: HistogramValue): string | undefined {
  if (v.counts.length !== v.boundaries.length + 1)
    return `counts has ${v.counts.length} entries, expected boundaries.length + 1 = ${v.boundaries.length + 1}`;
  for (let i = 1; i < v.boundaries.length; i++)
    if (!(v.boundaries[i]! > v.boundaries[i - 1]!)) return 'boundaries are not strictly ascending';
  return undefined;
}

export class MetricStore implements MetricProducer {
  private _entities: EntitySource;
  private _labelAllowlist: readonly string[];
  private _limit: number;
  private readonly _log: Logger | undefined;
  private _defs = new Map<string, RegisteredMetric & { probes: Set<string> }>();
  /** Latest series per probe. */
  private readonly _latest = new Map<string, MetricSeries[]>();
  /** Start time and last value per series key, per probe. */
  private readonly _starts = new Map<string, Map<string, { start: HrTime; last: number }>>();
  private readonly _overflow = new Map<string, number>();
  private readonly _invalid = new Map<string, number>();
  private readonly _warned = new Set<string>();
  private readonly _extra: MetricSource[] = [];

  constructor(options: MetricStoreOptions) {
    this._entities = options.entities;
    this._labelAllowlist = options.labelAllowlist ?? [];
    this._limit = options.cardinalityLimit ?? 10_000;
    this._log = options.log;
  }

  configure(options: {
    labelAllowlist?: readonly string[];
    cardinalityLimit?: number;
    entities?: EntitySource;
  }): void {
    if (options.labelAllowlist) this._labelAllowlist = options.labelAllowlist;
    if (options.cardinalityLimit !== undefined) this._limit = options.cardinalityLimit;
    if (options.entities) this._entities = options.entities;
  }

  get cardinalityLimit(): number {
    return this._limit;
  }

  /**
   * The metrics probes declared. A name may be declared by several probes (shared self-telemetry such as
   * `podnet.ebpf.events.lost`, told apart by an attribute) when the declarations agree on kind, unit,
   * attributes and scope; a conflicting declaration is refused (its probe's points are dropped and counted).
   */
  setDefinitions(defs: Iterable<RegisteredMetric>): void {
    const map = new Map<string, RegisteredMetric & { probes: Set<string> }>();
    for (const d of defs) {
      const prev = map.get(d.def.name);
      if (!prev) {
        map.set(d.def.name, { ...d, probes: new Set([d.probe]) });
        continue;
      }
      const conflict = definitionConflict(prev.def, d.def);
      if (conflict) {
        this._log?.error(
          { metric: d.def.name, probes: [prev.probe, d.probe] },
          `conflicting declarations of ${d.def.name} (${conflict}); points of ${d.probe} are dropped`,
        );
        continue;
      }
      prev.probes.add(d.probe);
    }
    this._defs = map;
  }

  definitions(): readonly RegisteredMetric[] {
    return [...this._defs.values()];
  }

  addSource(source: MetricSource): void {
    this._extra.push(source);
  }

  /** Points dropped by the cardinality limit, per metric, since start. */
  overflowCounts(): ReadonlyMap<string, number> {
    return this._overflow;
  }

  /** Points dropped as malformed (undeclared metric, bad histogram), per metric, since start. */
  invalidCounts(): ReadonlyMap<string, number> {
    return this._invalid;
  }

  seriesCount(): number {
    let n = 0;
    for (const s of this._latest.values()) n += s.length;
    return n;
  }

  /** Replace `probe`'s series with the points of its latest collection, taken at `timeMs`. */
  update(probe: string, points: readonly MetricPoint[], timeMs: number = Date.now()): void {
    const time = hrTimeFromMs(timeMs);
    const prevStarts = this._starts.get(probe) ?? new Map<string, { start: HrTime; last: number }>();
    const starts = new Map<string, { start: HrTime; last: number }>();
    const perMetric = new Map<string, number>();
    const series: MetricSeries[] = [];
    const entityCache = new Map<number, Record<string, AttributeValue>>();
    for (const p of points) {
      const reg = this._defs.get(p.metric);
      if (!reg?.probes.has(probe)) {
        this._countInvalid(p.metric, `probe ${probe} reported undeclared metric ${p.metric}`);
        continue;
      }
      if (!reg.enabled) continue;
      const def = reg.def;
      if (def.kind === 'histogram') {
        const problem = isHistogram(p.value) ? validHistogram(p.value) : 'value is a number';
        if (problem) {
          this._countInvalid(p.metric, `histogram ${p.metric} from ${probe}: ${problem}`);
          continue;
        }
      } else if (typeof p.value !== 'number' || !Number.isFinite(p.value)) {
        this._countInvalid(p.metric, `${def.kind} ${p.metric} from ${probe}: value is not a finite number`);
        continue;
      }
      const entityScoped = (def.scope ?? 'entity') === 'entity';
      const netns = entityScoped ? (p.netns ?? 0) : -1;
      const key = seriesKey(def.name, netns, p.attributes);
      if (starts.has(key)) continue; // duplicate point within one collection: keep the first
      const n = perMetric.get(def.name) ?? 0;
      if (n >= this._limit) {
        this._overflow.set(def.name, (this._overflow.get(def.name) ?? 0) + 1);
        continue;
      }
      perMetric.set(def.name, n + 1);
      let attrs: Record<string, AttributeValue>;
      if (entityScoped) {
        let ea = entityCache.get(netns);
        if (!ea) {
          ea = entityAttributes(resolveEntity(this._entities, netns), netns, this._labelAllowlist);
          entityCache.set(netns, ea);
        }
        attrs = p.attributes ? { ...p.attributes, ...ea } : { ...ea };
      } else attrs = p.attributes ? { ...p.attributes } : {};
      const scalar = isHistogram(p.value) ? p.value.count : p.value;
      const prev = prevStarts.get(key);
      const start = prev && scalar >= prev.last ? prev.start : time;
      starts.set(key, { start, last: scalar });
      series.push({ def, attributes: attrs, value: p.value, startTime: start, time });
    }
    this._starts.set(probe, starts);
    this._latest.set(probe, series);
  }

  removeProbe(probe: string): void {
    this._latest.delete(probe);
    this._starts.delete(probe);
  }

  /** All current series (for /inspect and tests). */
  series(): MetricSeries[] {
    return [...this._latest.values()].flat();
  }

  async collect(): Promise<CollectionResult> {
    const byMetric = new Map<string, MetricSeries[]>();
    for (const list of this._latest.values()) {
      for (const s of list) {
        let l = byMetric.get(s.def.name);
        if (!l) {
          l = [];
          byMetric.set(s.def.name, l);
        }
        l.push(s);
      }
    }
    const metrics: MetricData[] = [];
    for (const list of byMetric.values()) metrics.push(toMetricData(list[0]!.def, list));
    const errors: unknown[] = [];
    for (const src of this._extra) {
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
   * Per-entity totals of the latest collection, for the live view: key = metric name, plus
   * `/<direction>` when the series carries `network.io.direction`; histograms contribute their count.
   */
  entityTotals(): Map<
    string,
    { attributes: Record<string, AttributeValue>; totals: Record<string, number> }
  > {
    const out = new Map<
      string,
      { attributes: Record<string, AttributeValue>; totals: Record<string, number> }
    >();
    for (const s of this.series()) {
      if ((s.def.scope ?? 'entity') !== 'entity') continue;
      const kind = String(s.attributes[ATTR_PODNET_ENTITY_KIND] ?? '');
      const inode = String(s.attributes[ATTR_PODNET_NETNS_INODE] ?? '0');
      const id = `${kind}:${inode}`;
      let e = out.get(id);
      if (!e) {
        e = { attributes: pickEntityAttributes(s.attributes), totals: {} };
        out.set(id, e);
      }
      const dir = s.attributes[ATTR_NETWORK_IO_DIRECTION];
      const key = dir === undefined ? s.def.name : `${s.def.name}/${String(dir)}`;
      const v = isHistogram(s.value) ? s.value.count : s.value;
      e.totals[key] = (e.totals[key] ?? 0) + v;
    }
    return out;
  }

  private _countInvalid(metric: string, message: string): void {
    this._invalid.set(metric, (this._invalid.get(metric) ?? 0) + 1);
    if (!this._warned.has(message)) {
      this._warned.add(message);
      this._log?.warn({ metric }, `dropping malformed point: ${message}`);
    }
  }
}

/** Why two declarations of one metric name cannot share series, or undefined when they agree. */
export function definitionConflict(a: MetricDef, b: MetricDef): string | undefined {
  if (a.kind !== b.kind) return `kind ${a.kind} vs ${b.kind}`;
  if (a.unit !== b.unit) return `unit ${a.unit} vs ${b.unit}`;
  if ((a.scope ?? 'entity') !== (b.scope ?? 'entity'))
    return `scope ${a.scope ?? 'entity'} vs ${b.scope ?? 'entity'}`;
  if ([...a.attributes].sort().join() !== [...b.attributes].sort().join()) return 'different attributes';
  return undefined;
}

function pickEntityAttributes(attrs: Record<string, AttributeValue>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(attrs))
    if (k.startsWith('podnet.entity.') || k.startsWith('podnet.netns.') || k.startsWith('k8s.')) out[k] = v;
  return out;
}

function toMetricData(def: MetricDef, list: readonly MetricSeries[]): MetricData {
  const descriptor = (valueType: ValueType) => ({
    name: def.name,
    description: def.description,
    unit: def.unit,
    valueType,
  });
  if (def.kind === 'histogram') {
    const dataPoints: DataPoint<Histogram>[] = list.map((s) => {
      const h = s.value as HistogramValue;
      return {
        startTime: s.startTime,
        endTime: s.time,
        attributes: s.attributes as Attributes,
        value: {
          buckets: { boundaries: [...h.boundaries], counts: [...h.counts] },
          sum: h.sum,
          count: h.count,
        },
      };
    });
    return {
      descriptor: descriptor(ValueType.DOUBLE),
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints,
    };
  }
  const allInt = list.every((s) => Number.isSafeInteger(s.value as number));
  const dataPoints: DataPoint<number>[] = list.map((s) => ({
    startTime: s.startTime,
    endTime: s.time,
    attributes: s.attributes as Attributes,
    value: s.value as number,
  }));
  const valueType = allInt ? ValueType.INT : ValueType.DOUBLE;
  if (def.kind === 'gauge') {
    return {
      descriptor: descriptor(valueType),
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.GAUGE,
      dataPoints,
    };
  }
  return {
    descriptor: descriptor(valueType),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    dataPoints,
    isMonotonic: def.kind === 'counter',
  };
}

export { toMetricData };
