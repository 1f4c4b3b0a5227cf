// The liveness check of named netns (receiver/procfs/liveness.ts) skips the stat of a path checked in an
// earlier collection while the mount table did not change (receiver/netns/mount-events.ts). It must still
// notice a netns deleted (`ip netns del`: an umount) and a name reused for a new netns (umount + mount)
// at the very next collection, and a pid's netns is checked every collection whatever the mounts do. The
// discovery's listing of /run/netns (receiver/pods/netns-discovery.ts), reused while nothing was mounted,
// must show a netns added or deleted at the next listing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { listNamedNetns } from '../../receiver/pods/netns-discovery.ts';
import { assertEntityAliveOnce, livenessStats } from '../../receiver/procfs/liveness.ts';
import { EntityGoneError } from '../../receiver/procfs/read.ts';
import { namedEntity, pidEntity, sh, sleep } from './env.ts';

const tag = `pnlm${process.pid}`;
const [a, b, c] = [`${tag}a`, `${tag}b`, `${tag}c`];

before(() => {
  for (const ns of [a, b, c]) sh('ip', ['netns', 'add', ns]);
});

after(() => {
  for (const ns of [a, b, c]) {
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      // deleted by the test
    }
  }
});

/** Collections until one skips the stat (other processes on this machine may mount meanwhile). */
function untilSkipped(check: () => void): void {
  for (let i = 0; i < 50; i++) {
    const before = livenessStats.skippedByMounts;
    check();
    if (livenessStats.skippedByMounts > before) return;
  }
  assert.fail('no collection skipped the stat in 50 tries');
}

test('an unchanged named netns is not stat’ed again; deleting it is seen at the next collection', () => {
  const ea = namedEntity(a);
  const eb = namedEntity(b);
  assertEntityAliveOnce(ea, {});
  untilSkipped(() => assertEntityAliveOnce(ea, {}));
  // Deleted: the next collection (a new cycle) must fail it, though its last check was skipped.
  sh('ip', ['netns', 'del', a]);
  assert.throws(() => assertEntityAliveOnce(ea, {}), EntityGoneError);
  // The other netns is still alive (stat'ed again after the mount change, then skipped again).
  assertEntityAliveOnce(eb, {});
  untilSkipped(() => assertEntityAliveOnce(eb, {}));
});

test('a name reused for a new netns is another netns at the next collection', () => {
  const old = namedEntity(c);
  assertEntityAliveOnce(old, {});
  untilSkipped(() => assertEntityAliveOnce(old, {}));
  sh('ip', ['netns', 'del', c]);
  sh('ip', ['netns', 'add', c]);
  assert.notEqual(namedEntity(c).netnsInode, old.netnsInode);
  assert.throws(() => assertEntityAliveOnce(old, {}), /another netns/);
  assertEntityAliveOnce(namedEntity(c), {});
});

test('a netns deleted during a collection is seen at its own check in that collection', () => {
  const [x, y] = [`${tag}x`, `${tag}y`];
  sh('ip', ['netns', 'add', x]);
  sh('ip', ['netns', 'add', y]);
  try {
    const ex = namedEntity(x);
    const ey = namedEntity(y);
    assertEntityAliveOnce(ey, {});
    untilSkipped(() => assertEntityAliveOnce(ey, {}));
    const cycle = {};
    assertEntityAliveOnce(ex, cycle); // the collection has started
    sh('ip', ['netns', 'del', y]);
    assert.throws(() => assertEntityAliveOnce(ey, cycle), EntityGoneError);
  } finally {
    sh('ip', ['netns', 'del', x]);
  }
});

test('a pid entity is checked every collection: its process exiting is seen', async () => {
  const holder = spawn('ip', ['netns', 'exec', b, 'sleep', '30'], { stdio: 'ignore' });
  await sleep(300);
  const e = pidEntity(b, holder.pid!);
  const checks = livenessStats.checks;
  assertEntityAliveOnce(e, {});
  assertEntityAliveOnce(e, {});
  assert.equal(livenessStats.checks - checks, 2);
  holder.kill();
  await new Promise((r) => holder.once('exit', r));
  await sleep(100);
  assert.throws(() => assertEntityAliveOnce(e, {}), EntityGoneError);
});

test('the listing of /run/netns shows a netns added or deleted at the next listing', () => {
  const d = `${tag}d`;
  const names = (): string[] => listNamedNetns().map((n) => n.name);
  assert.ok(names().includes(b));
  assert.ok(!names().includes(d));
  sh('ip', ['netns', 'add', d]);
  try {
    const listed = listNamedNetns().find((n) => n.name === d);
    assert.equal(listed?.inode, namedEntity(d).netnsInode);
  } finally {
    sh('ip', ['netns', 'del', d]);
  }
  assert.ok(!names().includes(d));
});
