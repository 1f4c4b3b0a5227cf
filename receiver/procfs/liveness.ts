// One liveness check per netns per collection, shared by every probe. Kept fds (procfs files, netlink
// sockets) hold their netns alive in the kernel, so reading through them alone would not notice a netns
// that is gone; `assertEntityAlive` notices (pid exited or moved, netns path removed or reused). `cycle`
// is the collection (receiver/kit/cycle.ts): a netns checked once in it is not checked again by the next
// probe of the same collection.
import type { Entity } from '../pods/entity.ts';
import { assertEntityAlive } from './read.ts';

const checked = new WeakMap<object, Set<number>>();

/** `assertEntityAlive`, at most once per `cycle` and netns (every time without a cycle). */
export function assertEntityAliveOnce(entity: Entity, cycle: object | undefined): void {
  if (cycle === undefined) {
    assertEntityAlive(entity);
    return;
  }
  const set = checked.get(cycle);
  if (set?.has(entity.netnsInode)) return;
  assertEntityAlive(entity);
  markAlive(entity, cycle);
}

/** Records that the entity's netns was just verified in this cycle (e.g. by opening it by inode). */
export function markAlive(entity: Entity, cycle: object | undefined): void {
  if (cycle === undefined) return;
  let set = checked.get(cycle);
  if (!set) {
    set = new Set();
    checked.set(cycle, set);
  }
  set.add(entity.netnsInode);
}
