// The kernel-side watched-netns set (`pn_watched`) mirrored in memory: its own file, the map syncing is
// a concern apart from loading and reading the object. runtime.ts re-exports it.
import type { BpfMap } from '../../bpf/maps.ts';

/** The kernel-side set of watched netns inodes (`pn_watched`, probes/include/pn_watch.bpf.h). */
export class WatchedNetns {
  readonly #map: BpfMap;
  readonly #set = new Set<number>();
  readonly #key = Buffer.alloc(4);
  readonly #one = Buffer.alloc(4);

  constructor(map: BpfMap) {
    this.#map = map;
    this.#one.writeUInt32LE(1);
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

  add(inode: number): void {
    if (!inode || this.#set.has(inode)) return;
    this.#key.writeUInt32LE(inode >>> 0);
    this.#map.update(this.#key, this.#one);
    this.#set.add(inode);
  }

  delete(inode: number): void {
    if (!this.#set.delete(inode)) return;
    this.#key.writeUInt32LE(inode >>> 0);
    this.#map.delete(this.#key);
  }

  /** Makes the kernel set equal to `inodes`. */
  sync(inodes: Iterable<number>): void {
    const want = new Set(inodes);
    for (const i of this.#set) if (!want.has(i)) this.delete(i);
    for (const i of want) this.add(i);
  }
}
