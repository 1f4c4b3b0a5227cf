// The kernel-side watched-netns set (`pn_watched`) mirrored in memory: its own file, the map syncing is
// a concern apart from loading and reading the object. runtime.ts re-exports it.
import type { BpfMap } from '../../bpf/maps.ts';

/**
 * Netns slots (probes/include/pn_slot.bpf.h): `table` is the object's `pn_slots` ARRAY (direct-mapped
 * by the inode's low bits), `capacity` the slots the probe's fast arrays hold (slot 0 = none), `reset`
 * zeroes a slot's values in them before the slot is given to a netns.
 */
export interface SlotTable {
  readonly table: BpfMap;
  readonly capacity: number;
  readonly reset: (slot: number) => void;
}

/** The kernel-side set of watched netns inodes (`pn_watched`, probes/include/pn_watch.bpf.h). */
export class WatchedNetns {
  readonly #map: BpfMap;
  readonly #set = new Set<number>();
  readonly #key = Buffer.alloc(4);
  readonly #one = Buffer.alloc(4);
  readonly #slots: SlotTable | undefined;
  /** inode → slot, for the netns that have one. */
  readonly #slotOf = new Map<number, number>();
  /** Table indexes in use (a second netns on the same index keeps the hash path). */
  readonly #taken = new Set<number>();
  readonly #free: number[] = [];
  readonly #entry = Buffer.alloc(8);
  /** Slots that could not be given (a map write failed): those netns stay on the (exact) hash path. */
  slotFailures = 0;

  constructor(map: BpfMap, slots?: SlotTable) {
    this.#map = map;
    this.#one.writeUInt32LE(1);
    this.#slots = slots;
    if (slots) {
      const n = slots.table.maxEntries;
      if (n & (n - 1)) throw new Error(`map ${slots.table.name}: ${n} entries, not a power of two`);
      for (let s = slots.capacity - 1; s >= 1; s--) this.#free.push(s);
    }
  }

  get size(): number {
    return this.#set.size;
  }

  has(inode: number): boolean {
    return this.#set.has(inode);
  }

  inodes(): number[] {
    return [...this.#set];
  }

  /** [inode, slot] of the watched netns that have a slot. */
  slots(): IterableIterator<[number, number]> {
    return this.#slotOf.entries();
  }

  add(inode: number): void {
    if (!inode || this.#set.has(inode)) return;
    this.#key.writeUInt32LE(inode >>> 0);
    this.#map.update(this.#key, this.#one);
    this.#set.add(inode);
    this.#assignSlot(inode);
  }

  delete(inode: number): void {
    if (!this.#set.delete(inode)) return;
    this.#releaseSlot(inode);
    this.#key.writeUInt32LE(inode >>> 0);
    this.#map.delete(this.#key);
  }

  /** Makes the kernel set equal to `inodes`. */
  sync(inodes: Iterable<number>): void {
    const want = new Set(inodes);
    for (const i of this.#set) if (!want.has(i)) this.delete(i);
    for (const i of want) this.add(i);
  }

  #index(inode: number): number {
    return (inode >>> 0) & ((this.#slots?.table.maxEntries ?? 1) - 1);
  }

  /** Gives `inode` a slot when its table index and a slot are free: zeroed first, then published. */
  #assignSlot(inode: number): void {
    const st = this.#slots;
    if (!st) return;
    const idx = this.#index(inode);
    if (this.#taken.has(idx)) return;
    const slot = this.#free.pop();
    if (slot === undefined) return;
    try {
      st.reset(slot);
      this.#writeEntry(idx, inode, slot);
    } catch {
      // the netns is watched already and counted exactly on the hash path; the slot is zeroed again
      // before it is given to another netns
      this.#free.push(slot);
      this.slotFailures++;
      return;
    }
    this.#taken.add(idx);
    this.#slotOf.set(inode, slot);
  }

  /** Unpublishes the slot first (later counts take the hash path); it is zeroed when given again. */
  #releaseSlot(inode: number): void {
    const slot = this.#slotOf.get(inode);
    if (slot === undefined) return;
    const idx = this.#index(inode);
    this.#writeEntry(idx, 0, 0);
    this.#slotOf.delete(inode);
    this.#taken.delete(idx);
    this.#free.push(slot);
  }

  #writeEntry(idx: number, inode: number, slot: number): void {
    const t = this.#slots?.table;
    if (!t) return;
    const key = Buffer.alloc(4);
    key.writeUInt32LE(idx);
    this.#entry.writeUInt32LE(inode >>> 0, 0);
    this.#entry.writeUInt32LE(slot, 4);
    t.update(key, this.#entry);
  }
}
