// The store's series bookkeeping: the series it exports (`MetricSeries`), the state it keeps per series,
// netns and probe between collections. Its own file so metric-store.ts holds only the collection logic,
// and the carry-over (series-carry.ts) shares the types.
import type { HrTime } from '@opentelemetry/api';
import type { Entity } from '../pods/entity.ts';
import type {
  AttributeValue,
  HistogramValue,
  MetricDef,
  Attributes as ProbeAttributes,
} from '../probe/types.ts';
import type { AttributeParts } from './attribute-parts.ts';
import type { SlotTable } from './point-buffer.ts';

export interface MetricSeries {
  readonly def: MetricDef;
  readonly attributes: Record<string, AttributeValue>;
  /** `attributes` as its point part and entity part (attribute-parts.ts), when the store built it. */
  readonly parts?: AttributeParts;
  readonly value: number | HistogramValue;
  readonly startTime: HrTime;
  readonly time: HrTime;
}

export function hrTimeFromMs(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

/**
 * A series as the store keeps it between collections: created when first seen, then updated in place
 * (value, time, start) while its probe keeps reporting it, so a steady collection allocates no key
 * string for attribute-less points (nor for frozen, shared attribute objects) and no attribute object
 * at all. It holds its attributes as two shared parts (point attributes, entity keys): the merged
 * object is built only when asked for (at 1,000 pods, 60,000 merged objects held 45 MB of heap; the
 * OTLP encoder and the /metrics render read the parts).
 */
export class SeriesState implements MetricSeries {
  def: MetricDef;
  parts: AttributeParts = NO_PARTS;
  value: number | HistogramValue;
  startTime: HrTime;
  /**
   * The time of the update that last reported it. Each update's time is a new array, so it also tells
   * which update that was (`time === run.time`: this one) without a generation number per series.
   */
  time: HrTime;

  constructor(def: MetricDef, value: number | HistogramValue, time: HrTime) {
    this.def = def;
    this.value = value;
    this.startTime = time;
    this.time = time;
  }

  get attributes(): Record<string, AttributeValue> {
    return mergedAttributes(this.parts);
  }
}

/**
 * What a replaced instance of the probe had counted (counters and histograms), by series: added to what
 * the new instance reports, so a probe re-created by a reload does not restart its cumulative values at 0.
 * Beside the series (few have one) rather than a field of each of the 160,000 at 1,000 netns.
 */
const carries = new WeakMap<SeriesState, number | HistogramValue>();

export function carryOf(s: SeriesState): number | HistogramValue | undefined {
  return carries.get(s);
}

export function setCarry(s: SeriesState, carry: number | HistogramValue | undefined): void {
  if (carry === undefined) carries.delete(s);
  else carries.set(s, carry);
}

/** `{ ...point, ...entity }`, or one of the (frozen, shared) parts when the other is empty. */
export function mergedAttributes(parts: AttributeParts): Record<string, AttributeValue> {
  const [point, entity] = parts;
  if (point === NO_ATTRIBUTES) return entity;
  if (entity === NO_ATTRIBUTES) return point;
  return { ...point, ...entity };
}

/**
 * An entity's attributes as every probe's series of one netns share them (SeriesWriter keeps one per netns):
 * one frozen entity object per netns, not one per probe, so the OTLP encoder makes one Resource (and one
 * ResourceMetrics) per entity and the /metrics render one label text per entity.
 */
export interface EntityView {
  entity: Entity | undefined;
  /** The writer's `entityVersion` it was built for (-1: never). */
  version: number;
  /** Frozen: shared by the netns' attribute-less series (and their cached /metrics label text). */
  attrs: Record<string, AttributeValue>;
  /** `[no point attributes, attrs]`: the parts of every attribute-less series of the netns. */
  parts: AttributeParts;
  /** `[point attributes, attrs]` by point attribute set (frozen, shared): one per set in the netns. */
  readonly partsByPoint: Map<ProbeAttributes, AttributeParts>;
  /** Bumped when `attrs` is replaced: the series built on the old one rebuild their parts. */
  changes: number;
  /** The store update in which the entity was last looked up (once per update). */
  checked: number;
}

/** Series of one netns found by key: attribute-less ones by metric name, others by name then attributes key. */
export interface KeyedSeries {
  readonly plain: Map<string, SeriesState>;
  readonly withAttributes: Map<string, Map<string, SeriesState>>;
}

export interface NetnsSeries {
  /**
   * The series by key, made only when a series is looked up by key (a point object, a slot table replaced):
   * the column path finds its series by slot, and a slot table gives one slot per (metric, attributes), so
   * a netns written only by slot keeps no map (at 1,000 netns the maps were ~10 MB of heap). Once made, it
   * holds every series of the netns.
   */
  keyed: KeyedSeries | undefined;
  /** Series of the netns. */
  size: number;
  gen: number;
  seen: number;
  view: EntityView;
  /** `view.changes` the series' parts were built for. */
  viewChanges: number;
  /** Generation in which the entity attributes changed: the series reported then rebuild their attributes. */
  attrsChanged: number;
  /**
   * The series of the column path by slot of `slotTable` (point-buffer.ts): found without a key; a series
   * leaves it (and `keyed`) when it is forgotten.
   */
  bySlot: (SeriesState | undefined)[];
  slotTable: SlotTable | undefined;
}

/**
 * The netns' series by key (made from its slots when first needed: the slot table says each slot's metric
 * and attributes key); from then on kept with every series the netns adds.
 */
export function keyedSeries(ns: NetnsSeries): KeyedSeries {
  if (ns.keyed !== undefined) return ns.keyed;
  const keyed: KeyedSeries = { plain: new Map(), withAttributes: new Map() };
  const table = ns.slotTable;
  if (table !== undefined)
    for (let slot = 0; slot < ns.bySlot.length; slot++) {
      const s = ns.bySlot[slot];
      if (s === undefined) continue;
      const attrsKey = table.attrsKeys[slot]!;
      if (attrsKey === '') keyed.plain.set(s.def.name, s);
      else {
        let m = keyed.withAttributes.get(s.def.name);
        if (m === undefined) {
          m = new Map();
          keyed.withAttributes.set(s.def.name, m);
        }
        m.set(attrsKey, s);
      }
    }
  ns.keyed = keyed;
  return keyed;
}

export interface ProbeSeries {
  gen: number;
  /** The time of its latest update (what its series reported then carry as `time`). */
  time: HrTime | undefined;
  /**
   * Whether some series of it took up a carried value (`setCarry`, after a reload re-created the probe):
   * only then is the carry looked up per series.
   */
  carrying: boolean;
  readonly byNetns: Map<number, NetnsSeries>;
  latest: SeriesState[];
  /**
   * The array `latest` was before the last update, written over by the next one: at 1,000 netns a probe's
   * array is up to ~1 MB, and growing a new one by push every update left several such arrays (large
   * objects, freed only by a full GC) behind each collection.
   */
  spare: SeriesState[] | undefined;
  /** The probe's series keys, numbered (the column path: MetricStore.sink). */
  table?: SlotTable;
  /**
   * Counters and histograms of a replaced instance (netns → metric name NUL attributes key), taken up
   * by the new instance's series when they first appear, until generation `carriedUntil`.
   */
  carried?: Map<number, Map<string, { value: number | HistogramValue; startTime: HrTime }>>;
  carriedUntil?: number;
}

export const NO_ATTRIBUTES: Record<string, AttributeValue> = Object.freeze({}) as Record<
  string,
  AttributeValue
>;
export const NO_PARTS: AttributeParts = [NO_ATTRIBUTES, NO_ATTRIBUTES, true];

export function isHistogram(v: number | HistogramValue): v is HistogramValue {
  return typeof v === 'object';
}

export function validHistogram(v: HistogramValue): string | undefined {
  if (v.counts.length !== v.boundaries.length + 1)
    return `counts has ${v.counts.length} entries, expected boundaries.length + 1 = ${v.boundaries.length + 1}`;
  for (let i = 1; i < v.boundaries.length; i++)
    if (!(v.boundaries[i]! > v.boundaries[i - 1]!)) return 'boundaries are not strictly ascending';
  return undefined;
}

export function sameAttributes(
  a: Record<string, AttributeValue>,
  b: Record<string, AttributeValue>,
): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}
