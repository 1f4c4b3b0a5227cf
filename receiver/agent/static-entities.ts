// A small EntitySource: the host netns (from /proc/self/ns/net) plus whatever is added by hand. The agent
// uses it until CRI pod discovery is plugged in (AgentOptions.entitySource); tests use it to add and
// remove entities (pods that come and go).
import { readlinkSync } from 'node:fs';
import type { Entity, EntityChange, EntitySource, PodIdentity } from '../pods/entity.ts';

export function hostNetnsInode(): number {
  const link = readlinkSync('/proc/self/ns/net'); // "net:[4026531840]"
  const m = /\[(\d+)\]/.exec(link);
  if (!m) throw new Error(`unexpected /proc/self/ns/net link: ${link}`);
  return Number(m[1]);
}

export function hostEntity(): Entity {
  return {
    kind: 'host',
    netnsInode: hostNetnsInode(),
    netnsPath: '/proc/self/ns/net',
    pid: process.pid,
    displayName: 'host',
  };
}

export class StaticEntitySource implements EntitySource {
  readonly #entities = new Map<number, Entity>();
  readonly #listeners = new Set<(changes: readonly EntityChange[]) => void>();

  constructor(initial: readonly Entity[] = [hostEntity()]) {
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
