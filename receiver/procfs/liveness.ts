// One liveness check per netns per collection, shared by every probe. Kept fds (procfs files, netlink
// sockets) hold their netns alive in the kernel, so reading through them alone would not notice a netns
// that is gone; `assertEntityAlive` notices (pid exited or moved, netns path removed or reused). `cycle`
// is the collection (receiver/kit/cycle.ts): a netns checked once in it is not checked again by the next
// probe of the same collection.
//
// A named netns (a path, no pid) whose path was checked before is not stat'ed again while the mount
// table did not change since that check (receiver/netns/mount-events.ts: such a path can only stop naming
// its netns through a mount change): a non-blocking poll(2) at the time of the check (~2 µs, no path walk
// and no Stats object) instead of a stat (5–11 µs on this machine). A pid's netns is still checked every
// collection (a process exits without any mount change).
import { mountGeneration } from '../netns/mount-events.ts';
import type { Entity } from '../pods/entity.ts';
import { assertEntityAlive } from './read.ts';

const checked = new WeakMap<object, Set<number>>();
/** Named-netns entities checked by path, and the mount generation polled just before that check. */
const pathChecked = new WeakMap<Entity, number>();

/** Counts, for tests and benchmarks. */
export const livenessStats = { checks: 0, skippedByMounts: 0 };

/** `assertEntityAlive`, at most once per `cycle` and netns (every time without a cycle). */
export function assertEntityAliveOnce(entity: Entity, cycle: object | undefined): void {
  if (cycle === undefined) {
    assertEntityAlive(entity);
    return;
  }
  const set = checked.get(cycle);
  if (set?.has(entity.netnsInode)) return;
  const byPath = entity.pid === undefined && !entity.netnsPath.startsWith('/proc/');
  // Polled now, before a stat if one is needed: unchanged since the last check means the path still names
  // the netns it named then, as a stat now would show.
  const g = byPath ? mountGeneration() : undefined;
  if (byPath && g !== undefined && pathChecked.get(entity) === g) {
    livenessStats.skippedByMounts++;
  } else {
    livenessStats.checks++;
    assertEntityAlive(entity);
    // (an entity object never changes its path or inode: receiver/pods/entity.ts)
    if (byPath && g !== undefined) pathChecked.set(entity, g);
  }
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
