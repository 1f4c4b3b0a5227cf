// The snapshot diff of the registry (registry.ts): which entities were added, removed or updated between
// two refreshes, unchanged ones keeping their previous object so that listeners and pods() see stable
// identities. Its own file: a pure function of two maps, apart from the registry's I/O.
import type { Entity, EntityChange } from './entity.ts';

function entityKey(e: Entity): string {
  return JSON.stringify([
    e.kind,
    e.netnsPath,
    e.netnsName,
    e.pid,
    e.hostVeth,
    e.displayName,
    e.pod && [
      e.pod.uid,
      e.pod.name,
      e.pod.namespace,
      e.pod.ips,
      e.pod.sandboxId,
      e.pod.labels,
      e.pod.cgroupParent,
    ],
  ]);
}

/** Changes from `prev` to `next`; an unchanged entity in `next` is replaced by its previous object. */
export function diffEntities(prev: Map<number, Entity>, next: Map<number, Entity>): EntityChange[] {
  const changes: EntityChange[] = [];
  for (const [inode, e] of prev) if (!next.has(inode)) changes.push({ type: 'removed', entity: e });
  for (const [inode, e] of next) {
    const old = prev.get(inode);
    if (!old) changes.push({ type: 'added', entity: e });
    else if (old !== e && entityKey(old) !== entityKey(e))
      changes.push({ type: 'updated', entity: e, previous: old });
    else if (old !== e) next.set(inode, old); // unchanged: keep the previous object (identity stays stable)
  }
  return changes;
}
