// Writing one checked point into a probe's series (MetricStore.update, for the point objects and the
// column path alike): the netns' series found by slot (point-buffer.ts) or by key, made when new (entity
// attributes, interned point attributes, carried values), updated in place otherwise (start time kept
// while the counter grows), counted against the cardinality limit. Its own file so metric-store.ts keeps
// the registrations, the reading of a collection and the collections handed out.
import type { HrTime } from '@opentelemetry/api';
import type { EntitySource } from '../pods/entity.ts';
import type {
  AttributeValue,
  HistogramValue,
  MetricDef,
  Attributes as ProbeAttributes,
} from '../probe/types.ts';
import { attributeParts } from './attribute-parts.ts';
import { entityAttributes, resolveEntity } from './entity-attributes.ts';
import type { SlotTable } from './point-buffer.ts';
import { takeUpCarried, withCarry } from './series-carry.ts';
import {
  carryOf,
  type EntityView,
  isHistogram,
  keyedSeries,
  type NetnsSeries,
  NO_ATTRIBUTES,
  NO_PARTS,
  type ProbeSeries,
  SeriesState,
  sameAttributes,
  setCarry,
} from './series-state.ts';

const MAX_INTERNED = 50_000;

/** A metric's declaration and its series in the current update (stamped with the update's number). */
export interface MetricCount {
  readonly def: MetricDef;
  update: number;
  series: number;
}

/** One `update` in progress: the probe's series, the update's generation and time, the netns being filled. */
export interface Run {
  readonly ps: ProbeSeries;
  readonly gen: number;
  /** The store's update count (per-metric series counts are stamped with it). */
  readonly update: number;
  readonly time: HrTime;
  /** The time of the probe's previous update: a series reported then carries it as `time`. */
  readonly prevTime: HrTime | undefined;
  /** The series reported, in order (written by index: `count` of them so far). */
  readonly latest: SeriesState[];
  count: number;
  cur: NetnsSeries | undefined;
  curNetns: number;
  /**
   * The netns of the point being put (0: none given), set by the caller before `put`: a field, not an
   * argument, because netns ids are above 2^31 (no small integer) and a double passed from a column to a
   * function call is boxed into a new heap number per point (~160,000 per collection at 1,000 netns); a
   * field holding only numbers is written in place.
   */
  pointNetns: number;
  /** The slot table of the buffer being read (column path). */
  table: SlotTable | undefined;
  /** Netns whose slot array grew in this update: cut to its length at the end (`trimSlots`). */
  grown: NetnsSeries[] | undefined;
}

function setSlot(run: Run, ns: NetnsSeries, slot: number, s: SeriesState): void {
  const a = ns.bySlot;
  if (a.length <= slot) {
    if (run.grown === undefined) run.grown = [ns];
    else if (run.grown[run.grown.length - 1] !== ns) run.grown.push(ns);
    while (a.length <= slot) a.push(undefined);
  }
  a[slot] = s;
}

/**
 * Cuts the slot arrays that grew in the update to their length. An array grown by push keeps V8's
 * spare capacity (1.5 × + 16 entries: 43 for a netns' 20 series), for good, since a netns' slots are
 * set in its first update; at 1,000 netns the slot arrays held 3.0 MB of heap for 1.3 MB of entries
 * (heap snapshot at 1,000 netns). `slice` copies them into arrays of their length, once per netns (again
 * only when it gains a slot).
 */
export function trimSlots(run: Run): void {
  const grown = run.grown;
  if (grown === undefined) return;
  for (const ns of grown) ns.bySlot = ns.bySlot.slice();
  run.grown = undefined;
}

/** Slots past 4 × the netns' series a netns' slot array may still reach (see `put`). */
const SLOT_SLACK = 256;

/** Netns whose entity view was not looked up in this many store updates are forgotten (a gone netns). */
const VIEW_IDLE_UPDATES = 256;

/** What the store's updates share: the entity view, the cardinality limit and its overflow counts. */
export class SeriesWriter {
  entities: EntitySource;
  labelAllowlist: readonly string[];
  limit: number;
  /** Bumped when the entity attributes change for every entity (label allow-list, entity source). */
  entityVersion = 0;
  /** Points dropped by the cardinality limit, per metric, since start. */
  readonly overflow = new Map<string, number>();
  /** One frozen copy per distinct set of unfrozen point attributes (by attributes key). */
  readonly #interned = new Map<string, ProbeAttributes>();
  /** The entity view of each netns (-1: node-scoped series), shared by every probe's series of it. */
  readonly #views = new Map<number, EntityView>();
  #swept = 0;

  constructor(options: { entities: EntitySource; labelAllowlist: readonly string[]; limit: number }) {
    this.entities = options.entities;
    this.labelAllowlist = options.labelAllowlist;
    this.limit = options.limit;
  }

  /** One checked point (its netns in `run.pointNetns`) into the probe's series (`slot` >= 0: its slot of `run.table`). */
  put(
    run: Run,
    reg: MetricCount,
    attributes: ProbeAttributes | undefined,
    attrsKey: string,
    value: number | HistogramValue,
    slot: number,
  ): void {
    const def = reg.def;
    const { ps, gen, time } = run;
    const entityScoped = (def.scope ?? 'entity') === 'entity';
    // The netns is read from the run where needed, not kept in a local: a local of either the field or -1
    // was boxed into a new heap number per point by the optimizing compiler the product runs (Maglev:
    // --max-opt=2), which merges the two into one tagged value.
    if (entityScoped ? run.pointNetns !== run.curNetns : run.curNetns !== -1) {
      run.curNetns = entityScoped ? run.pointNetns : -1;
      run.cur = this.#netnsSeries(ps, run.curNetns, gen, run.update);
    }
    const ns = run.cur!;
    let s: SeriesState | undefined;
    if (slot >= 0 && ns.slotTable !== run.table) {
      // A new table numbers the keys anew: the series stay findable by key until they have a slot again.
      if (ns.slotTable !== undefined) keyedSeries(ns);
      ns.slotTable = run.table;
      ns.bySlot = [];
    }
    // A slot far past the netns' series (a table shared with netns that have other keys) is not given a
    // place in its array: the arrays stay in proportion to the series.
    if (slot >= ns.bySlot.length && slot >= 4 * ns.size + SLOT_SLACK) slot = -1;
    if (slot >= 0) s = ns.bySlot[slot];
    else keyedSeries(ns); // found by key, and from now on every series of the netns too
    const keyed = ns.keyed;
    let byAttrs: Map<string, SeriesState> | undefined;
    if (s === undefined && keyed !== undefined) {
      if (attrsKey !== '') {
        byAttrs = keyed.withAttributes.get(def.name);
        if (!byAttrs) {
          byAttrs = new Map();
          keyed.withAttributes.set(def.name, byAttrs);
        }
        s = byAttrs.get(attrsKey);
      } else s = keyed.plain.get(def.name);
      if (s !== undefined && slot >= 0) setSlot(run, ns, slot, s);
    }
    if (s !== undefined && s.time === time) return; // duplicate point within one collection: keep the first
    // Series of the metric in this update (on the registration: no map per update).
    if (reg.update !== run.update) {
      reg.update = run.update;
      reg.series = 0;
    }
    const n = reg.series;
    if (n >= this.limit) {
      this.overflow.set(def.name, (this.overflow.get(def.name) ?? 0) + 1);
      return;
    }
    reg.series = n + 1;
    if (!s) {
      s = new SeriesState(def, value, time);
      this.#setAttributes(s, attributes, attrsKey, ns.view);
      takeUpCarried(ps, run.curNetns, `${def.name}\u0000${attrsKey}`, s, value);
      if (keyed !== undefined) {
        if (byAttrs) byAttrs.set(attrsKey, s);
        else keyed.plain.set(def.name, s);
      }
      if (slot >= 0) setSlot(run, ns, slot, s);
      ns.size++;
    } else {
      s.def = def; // a reload may hand in a new declaration object
      if (ns.attrsChanged === gen) this.#setAttributes(s, attributes, attrsKey, ns.view);
      // The start stays while the series was in the previous collection and did not go down.
      const carry = ps.carrying ? carryOf(s) : undefined;
      const v = carry === undefined ? value : withCarry(value, carry);
      const prev = s.value;
      const last = isHistogram(prev) ? prev.count : prev;
      const scalar = isHistogram(v) ? v.count : v;
      if (s.time !== run.prevTime || scalar < last) {
        s.startTime = time;
        if (carry !== undefined) setCarry(s, undefined); // the new instance's counter went down: a real reset
        s.value = value;
      } else s.value = v;
      s.time = time;
    }
    ns.seen++;
    run.latest[run.count++] = s;
  }

  /** The series of `netns` in this update (made when new; its entity view checked once per update). */
  #netnsSeries(ps: ProbeSeries, netns: number, gen: number, update: number): NetnsSeries {
    let cur = ps.byNetns.get(netns);
    if (!cur) {
      const view = this.#view(netns, update);
      cur = {
        keyed: undefined,
        size: 0,
        gen: 0,
        seen: 0,
        view,
        viewChanges: view.changes,
        attrsChanged: 0,
        bySlot: [],
        slotTable: undefined,
      };
      ps.byNetns.set(netns, cur);
    }
    if (cur.gen !== gen) {
      cur.gen = gen;
      cur.seen = 0;
      const view = this.#view(netns, update);
      if (cur.view !== view || cur.viewChanges !== view.changes) {
        cur.view = view;
        cur.viewChanges = view.changes;
        cur.attrsChanged = gen;
      }
    }
    return cur;
  }

  /** The entity view of `netns`, its entity looked up once per store update. */
  #view(netns: number, update: number): EntityView {
    let v = this.#views.get(netns);
    if (v === undefined) {
      v = {
        entity: undefined,
        version: -1,
        attrs: NO_ATTRIBUTES,
        parts: NO_PARTS,
        partsByPoint: new Map(),
        changes: 0,
        checked: 0,
      };
      this.#views.set(netns, v);
      this.#sweep(update);
    }
    if (v.checked === update || netns < 0) return v;
    v.checked = update;
    const entity = resolveEntity(this.entities, netns);
    if (entity !== v.entity || v.version !== this.entityVersion) {
      v.entity = entity;
      v.version = this.entityVersion;
      const ea = Object.freeze(entityAttributes(entity, netns, this.labelAllowlist));
      // An equal view (a source that hands out new objects) keeps the series' attribute objects.
      if (!sameAttributes(v.attrs, ea) || v.parts === NO_PARTS) {
        v.attrs = ea;
        v.parts = attributeParts(NO_ATTRIBUTES, ea);
        v.partsByPoint.clear();
        v.changes++;
      }
    }
    return v;
  }

  /** Forget the views of netns no probe reported for a while (checked when a view is added). */
  #sweep(update: number): void {
    if (update - this.#swept < VIEW_IDLE_UPDATES) return;
    this.#swept = update;
    for (const [netns, v] of this.#views)
      if (netns >= 0 && update - v.checked > VIEW_IDLE_UPDATES) this.#views.delete(netns);
  }

  /**
   * A new series' attributes: the entity keys alone (shared), or the point attributes followed by them,
   * with those two parts (attribute-parts.ts); unfrozen point attributes are replaced by one frozen copy
   * per distinct set, so their label text is rendered (and their OTLP bytes encoded) once too.
   */
  #setAttributes(s: SeriesState, point: ProbeAttributes | undefined, key: string, view: EntityView): void {
    if (!point || key === '') {
      s.parts = view.parts;
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
    // One parts array per point attribute set in the netns, shared by every probe's series.
    let parts = view.partsByPoint.get(shared);
    if (parts === undefined) {
      parts = attributeParts(shared as Record<string, AttributeValue>, view.attrs);
      // Bounded: attribute sets that come and go (interned copies replaced) would otherwise pile up.
      if (view.partsByPoint.size >= 4096) view.partsByPoint.clear();
      view.partsByPoint.set(shared, parts);
    }
    s.parts = parts;
  }
}
