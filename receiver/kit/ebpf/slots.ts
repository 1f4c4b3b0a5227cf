// Netns slots (probes/include/pn_slot.bpf.h) on the runtime's side: the SlotTable WatchedNetns assigns
// from, and the fast twins' values read back as entries of their counter maps. Its own file: runtime.ts
// only wires it in (EbpfRuntimeOptions.slotted, counterEntries).
import type { BpfCollection } from '../../bpf/object.ts';
import type { SlotTable, WatchedNetns } from './watched.ts';

/** The fast twin of a counter map: values of slotted netns at slot * variants.length + variant. */
export interface SlottedMap {
  readonly fast: string;
  /** Per variant, the counter map's key it stands for, with the netns (first u32) left 0. */
  readonly variants: readonly Uint8Array[];
}

export interface CounterEntry {
  key: Buffer;
  netns: number;
  values: number[];
}

/**
 * The object's netns slots, when it has `pn_slots` and fast twins: as many slots as the smallest twin
 * holds; `reset` zeroes a slot's variants in every twin (before the slot is given to a netns).
 */
export function slotTable(coll: BpfCollection, slotted: readonly SlottedMap[]): SlotTable | undefined {
  const table = coll.maps.get('pn_slots');
  const twins = slotted.map((s) => ({ map: coll.map(s.fast), n: s.variants.length }));
  if (!table || !twins.length) return undefined;
  return {
    table,
    capacity: Math.min(...twins.map((t) => Math.floor(t.map.maxEntries / t.n))),
    reset: (slot) => {
      const key = Buffer.alloc(4);
      for (const t of twins) {
        const zero = Buffer.alloc(t.map.valueBytes);
        for (let v = 0; v < t.n; v++) {
          key.writeUInt32LE(slot * t.n + v);
          t.map.update(key, zero);
        }
      }
    },
  };
}

/**
 * Adds the fast twin's values of every slotted netns to `out` as entries of the counter map (the key its
 * variant stands for). A value of all zeros is left out, as the hash has no entry before the first
 * count; a key also in the hash (a count that raced the slot's publication) is summed.
 */
export function addSlotted(
  coll: BpfCollection,
  watched: WatchedNetns,
  twin: SlottedMap,
  out: CounterEntry[],
): void {
  const fast = coll.map(twin.fast);
  const byKey = new Map(out.map((e) => [e.key.toString('hex'), e]));
  const idx = Buffer.alloc(4);
  const n = twin.variants.length;
  for (const [netns, slot] of watched.slots()) {
    for (let v = 0; v < n; v++) {
      idx.writeUInt32LE(slot * n + v);
      const raw = fast.lookup(idx);
      if (!raw) continue;
      const values = fast.sumU64(raw);
      if (values.every((x) => x === 0)) continue;
      const key = Buffer.from(twin.variants[v] as Uint8Array);
      key.writeUInt32LE(netns >>> 0, 0);
      const same = byKey.get(key.toString('hex'));
      if (same)
        for (let i = 0; i < values.length; i++) same.values[i] = (same.values[i] ?? 0) + (values[i] ?? 0);
      else out.push({ key, netns, values });
    }
  }
}
