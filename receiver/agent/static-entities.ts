// A small EntitySource: the host netns (init's, receiver/netns/setns.ts) plus whatever is added by hand. The agent
// uses it until CRI pod discovery is plugged in (AgentOptions.entitySource); tests use it to add and
// remove entities (pods that come and go).
import {
  type Entity,
  type EntityChange,
  type EntitySource,
  HOST_ENTITY,
  type PodIdentity,
} from '../pods/entity.ts';

export class StaticEntitySource implements EntitySource {
  readonly #entities = new Map<number, Entity>();
  readonly #listeners = new Set<(changes: readonly EntityChange[]) => void>();

  constructor(initial: readonly Entity[] = [HOST_ENTITY]) {
    for (const e of initial) this.#entities.set(e.netnsInode, e);
  }

  entities(): readonly Entity[] {
    return [...this.#entities.values()];
  }

  byNetns(inode: number): Entity | undefined {
    return this.#entities.get(inode);
  }

  pods(): readonly PodIdentity[] {
    return this.entities().flatMap((e) => (e.pod ? [e.pod] : []));
  }

  onChange(listener: (changes: readonly EntityChange[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  add(entity: Entity): void {
    const previous = this.#entities.get(entity.netnsInode);
    this.#entities.set(entity.netnsInode, entity);
    this.#notify([previous ? { type: 'updated', entity, previous } : { type: 'added', entity }]);
  }

  remove(inode: number): void {
    const entity = this.#entities.get(inode);
    if (!entity) return;
    this.#entities.delete(inode);
    this.#notify([{ type: 'removed', entity }]);
  }

  #notify(changes: readonly EntityChange[]): void {
    for (const l of this.#listeners) l(changes);
  }
}
