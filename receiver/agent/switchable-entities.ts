// An EntitySource whose backing source can be replaced at runtime (hot reload of the `pods:` section):
// probes and the pipeline keep one object; on a switch, listeners get the difference between the old and
// the new entity lists as ordinary added/removed/updated changes.
import type { Entity, EntityChange, EntitySource, PodIdentity } from '../pods/entity.ts';

export class SwitchableEntitySource implements EntitySource {
  private _source: EntitySource;
  private _unsubscribe: () => void;
  private readonly _listeners = new Set<(changes: readonly EntityChange[]) => void>();

  constructor(source: EntitySource) {
    this._source = source;
    this._unsubscribe = source.onChange((c) => this._emit(c));
  }

  get current(): EntitySource {
    return this._source;
  }

  /** Use `next` from now on; returns the previous source (the caller stops it). */
  switchTo(next: EntitySource): EntitySource {
    const prev = this._source;
    this._unsubscribe();
    this._source = next;
    this._unsubscribe = next.onChange((c) => this._emit(c));
    const before = new Map(prev.entities().map((e) => [e.netnsInode, e]));
    const after = new Map(next.entities().map((e) => [e.netnsInode, e]));
    const changes: EntityChange[] = [];
    for (const [inode, e] of before) if (!after.has(inode)) changes.push({ type: 'removed', entity: e });
    for (const [inode, e] of after) {
      const old = before.get(inode);
      if (!old) changes.push({ type: 'added', entity: e });
      else if (old !== e) changes.push({ type: 'updated', entity: e, previous: old });
    }
    if (changes.length > 0) this._emit(changes);
    return prev;
  }

  entities(): readonly Entity[] {
    return this._source.entities();
  }

  byNetns(inode: number): Entity | undefined {
    return this._source.byNetns(inode);
  }

  pods(): readonly PodIdentity[] {
    return this._source.pods();
  }

  onChange(listener: (changes: readonly EntityChange[]) => void): () => void {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  private _emit(changes: readonly EntityChange[]): void {
    for (const l of this._listeners) l(changes);
  }
}
