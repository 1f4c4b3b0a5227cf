// An EntitySource whose backing source can be replaced at runtime (hot reload of the `pods:` section):
// probes and the pipeline keep one object; on a switch, listeners get the difference between the old and
// the new entity lists as ordinary added/removed/updated changes.
import type { Entity, EntityChange, EntitySource, PodIdentity } from '../pods/entity.ts';

export class SwitchableEntitySource implements EntitySource {
  #source: EntitySource;
  #unsubscribe: () => void;
  readonly #listeners = new Set<(changes: readonly EntityChange[]) => void>();

  constructor(source: EntitySource) {
    this.#source = source;
    this.#unsubscribe = source.onChange((c) => this.#emit(c));
  }

  get current(): EntitySource {
    return this.#source;
  }

  /** Use `next` from now on; returns the previous source (the caller stops it). */
  switchTo(next: EntitySource): EntitySource {
    const prev = this.#source;
    this.#unsubscribe();
    this.#source = next;
    this.#unsubscribe = next.onChange((c) => this.#emit(c));
    const before = new Map(prev.entities().map((e) => [e.netnsInode, e]));
    const after = new Map(next.entities().map((e) => [e.netnsInode, e]));
    const changes: EntityChange[] = [];
    for (const [inode, e] of before) if (!after.has(inode)) changes.push({ type: 'removed', entity: e });
    for (const [inode, e] of after) {
      const old = before.get(inode);
      if (!old) changes.push({ type: 'added', entity: e });
      else if (old !== e) changes.push({ type: 'updated', entity: e, previous: old });
    }
    if (changes.length > 0) this.#emit(changes);
    return prev;
  }

  entities(): readonly Entity[] {
    return this.#source.entities();
  }

  byNetns(inode: number): Entity | undefined {
    return this.#source.byNetns(inode);
  }

  pods(): readonly PodIdentity[] {
    return this.#source.pods();
  }

  onChange(listener: (changes: readonly EntityChange[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(changes: readonly EntityChange[]): void {
    for (const l of this.#listeners) l(changes);
  }
}
