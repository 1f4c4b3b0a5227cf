// The store's side of the column path (receiver/probe/sink.ts): a probe's series keys numbered once per
// probe (`SlotTable`), and one collection as typed columns (`PointBuffer`: slot, netns, value), read by
// MetricStore.update in the order they were written. Points given as objects (histograms, node-scoped
// metrics) keep their place among the values: their slot column holds `-1 - index` into `objects`.
import { type MetricSink, SeriesKey } from '../probe/sink.ts';
import type { Attributes, MetricPoint } from '../probe/types.ts';
import { cachedAttributesKey } from './attributes-key.ts';

/** Slots a table holds before it starts over (keys a probe makes and drops, e.g. per interface name). */
const MAX_SLOTS = 1 << 16;

/** The series keys of one probe, numbered in the order first written; what the store caches per slot. */
export class SlotTable {
  readonly keys: SeriesKey[] = [];
  /** The attributes key (series-state.ts) of each slot's point attributes ('' without attributes). */
  readonly attrsKeys: string[] = [];
  /** Store data per slot (its metric's registration), valid while `cacheOf` is the store's current one. */
  readonly cache: unknown[] = [];
  cacheOf: unknown = undefined;
  /** Weak: a probe that makes its keys again leaves the old ones to the GC (their slots stay, by identity). */
  readonly #index = new WeakMap<SeriesKey, number>();
  /**
   * Slots by identity: metric (no attributes), metric then attributes key. Key objects of one series (a
   * probe that makes a key again) and points given as objects share its slot, so a slot is one series of
   * a netns and the store finds every series by slot alone.
   */
  readonly #plain = new Map<string, number>();
  readonly #withAttributes = new Map<string, Map<string, number>>();

  get size(): number {
    return this.keys.length;
  }

  /** Whether the table is full: the store then starts a new one (keys cached in this one miss). */
  get full(): boolean {
    return this.keys.length >= MAX_SLOTS;
  }

  slotOf(key: SeriesKey): number {
    if (key.owner === this) return key.slot;
    let slot = this.#index.get(key);
    if (slot === undefined) {
      const attrsKey = key.attributes !== undefined ? cachedAttributesKey(key.attributes) : '';
      slot = this.#find(key.metric, attrsKey) ?? this.#add(key, attrsKey);
      this.#index.set(key, slot);
    }
    key.owner = this;
    key.slot = slot;
    return slot;
  }

  /** The slot of a point given as an object (`attrsKey`: its attributes' key, '' without). */
  slotOfPoint(metric: string, attributes: Attributes | undefined, attrsKey: string): number {
    return (
      this.#find(metric, attrsKey) ??
      this.#add(new SeriesKey(metric, attrsKey === '' ? undefined : attributes), attrsKey)
    );
  }

  #find(metric: string, attrsKey: string): number | undefined {
    return attrsKey === '' ? this.#plain.get(metric) : this.#withAttributes.get(metric)?.get(attrsKey);
  }

  #add(key: SeriesKey, attrsKey: string): number {
    const slot = this.keys.length;
    this.keys.push(key);
    this.attrsKeys.push(attrsKey);
    this.cache.push(undefined);
    if (attrsKey === '') this.#plain.set(key.metric, slot);
    else {
      let m = this.#withAttributes.get(key.metric);
      if (m === undefined) {
        m = new Map();
        this.#withAttributes.set(key.metric, m);
      }
      m.set(attrsKey, slot);
    }
    return slot;
  }
}

/** One collection of a probe as columns; filled by the probe, read once by the store. */
export class PointBuffer implements MetricSink {
  readonly table: SlotTable;
  /** Slot of each value; `-1 - i` for `objects[i]`. */
  slots: Int32Array;
  netns: Float64Array;
  values: Float64Array;
  readonly objects: MetricPoint[] = [];
  length = 0;

  constructor(table: SlotTable, capacity = 256) {
    this.table = table;
    const n = Math.max(16, capacity);
    this.slots = new Int32Array(n);
    this.netns = new Float64Array(n);
    this.values = new Float64Array(n);
  }

  #grow(): void {
    const n = this.slots.length * 2;
    const slots = new Int32Array(n);
    slots.set(this.slots);
    const netns = new Float64Array(n);
    netns.set(this.netns);
    const values = new Float64Array(n);
    values.set(this.values);
    this.slots = slots;
    this.netns = netns;
    this.values = values;
  }

  value(key: SeriesKey, netns: number, value: number): void {
    const i = this.length;
    if (i === this.slots.length) this.#grow();
    this.slots[i] = this.table.slotOf(key);
    this.netns[i] = netns;
    this.values[i] = value;
    this.length = i + 1;
  }

  point(point: MetricPoint): void {
    const i = this.length;
    if (i === this.slots.length) this.#grow();
    this.slots[i] = -1 - this.objects.length;
    this.objects.push(point);
    this.length = i + 1;
  }

  truncate(length: number): void {
    if (length >= this.length) return;
    for (let i = length; i < this.length; i++) {
      const s = this.slots[i]!;
      if (s < 0) {
        this.objects.length = -1 - s; // the first object written after the mark
        break;
      }
    }
    this.length = length;
  }
}
