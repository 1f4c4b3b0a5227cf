// The config watcher is event-driven (an inotify watch on the file's directory, receiver/config/watch.ts):
// with the safety poll set to 10 minutes, an in-place write, an editor's rename and a ConfigMap-style
// `..data` symlink swap (the kubelet's layout: podnet.yaml -> ..data/podnet.yaml, ..data -> a timestamped
// directory, swapped by renaming a new symlink over ..data) each apply within the documented 1 s — which
// only the inotify path can do. When fs.watch cannot be set up (ENOSPC) or fails later, it says so once
// and polls every intervalMs; where the watch is silent, the safety poll still sees the change.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { FSWatcher } from 'node:fs';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type WatchFn, watchConfigFile } from '../../receiver/config/watch.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NEVER = 600_000; // the safety poll, in the event-driven cases: never within a test
const DOCUMENTED_MS = 1000; // docs/receiver.md «Hot reload»: a change applies within 1 s

/** Waits until `seen` has `n` entries; returns the milliseconds waited, or fails after `limitMs`. */
async function until(seen: string[], n: number, limitMs: number, what: string): Promise<number> {
  const start = performance.now();
  while (seen.length < n) {
    const waited = performance.now() - start;
    if (waited > limitMs) assert.fail(`${what}: not handed over within ${limitMs} ms (seen ${seen.length})`);
    await sleep(10);
  }
  return performance.now() - start;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), `pnr${process.pid}-watchev-`));
}

test('in-place write, rename and ConfigMap ..data swap each apply within 1 s with no poll running', async () => {
  const dir = tempDir();
  const path = join(dir, 'podnet.yaml');
  // The kubelet's atomic writer layout.
  mkdirSync(join(dir, '..2026_a'));
  writeFileSync(join(dir, '..2026_a', 'podnet.yaml'), 'collection_interval: 1s\n');
  symlinkSync('..2026_a', join(dir, '..data'));
  symlinkSync('..data/podnet.yaml', path);
  const seen: string[] = [];
  const fallbacks: Error[] = [];
  const w = watchConfigFile(path, (t) => seen.push(t), {
    safetyPollMs: NEVER,
    onFallback: (e) => fallbacks.push(e),
  });
  try {
    await sleep(300);
    // 1. ConfigMap update: new timestamped directory, new ..data symlink renamed over the old one.
    mkdirSync(join(dir, '..2026_b'));
    writeFileSync(join(dir, '..2026_b', 'podnet.yaml'), 'collection_interval: 2s\n');
    symlinkSync('..2026_b', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(join(dir, '..2026_a'), { recursive: true });
    const t1 = await until(seen, 1, DOCUMENTED_MS, 'ConfigMap swap');
    await sleep(300);
    // 2. An in-place write of the file the symlinks resolve to (its directory is watched too).
    writeFileSync(join(dir, '..2026_b', 'podnet.yaml'), 'collection_interval: 3s\n');
    const t2 = await until(seen, 2, DOCUMENTED_MS, 'in-place write through the symlinks');
    await sleep(300);
    // 3. An editor's save: write a temporary file, rename it over the path.
    writeFileSync(join(dir, 'podnet.yaml.tmp'), 'collection_interval: 4s\n');
    renameSync(join(dir, 'podnet.yaml.tmp'), path);
    const t3 = await until(seen, 3, DOCUMENTED_MS, 'rename over the path');
    await sleep(300);
    // 4. An in-place write of the (now regular) file.
    writeFileSync(path, 'collection_interval: 5s\n');
    const t4 = await until(seen, 4, DOCUMENTED_MS, 'in-place write');
    await sleep(300);
    assert.deepEqual(
      seen,
      [2, 3, 4, 5].map((n) => `collection_interval: ${n}s\n`),
    );
    assert.deepEqual(fallbacks, []);
    for (const t of [t1, t2, t3, t4]) assert.ok(t < DOCUMENTED_MS, `${t} ms`);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fs.watch throwing ENOSPC: one fallback report, then a 4×/s poll applies changes', async () => {
  const dir = tempDir();
  const path = join(dir, 'podnet.yaml');
  writeFileSync(path, 'collection_interval: 1s\n');
  const seen: string[] = [];
  const fallbacks: NodeJS.ErrnoException[] = [];
  let calls = 0;
  const watch: WatchFn = () => {
    calls++;
    throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), {
      code: 'ENOSPC',
    });
  };
  const w = watchConfigFile(path, (t) => seen.push(t), {
    safetyPollMs: NEVER,
    watch,
    onFallback: (e) => fallbacks.push(e),
  });
  try {
    await sleep(300);
    for (let n = 2; n <= 3; n++) {
      writeFileSync(path, `collection_interval: ${n}s\n`);
      await until(seen, n - 1, DOCUMENTED_MS, `poll after ENOSPC (${n})`);
      await sleep(300);
    }
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(seen, ['collection_interval: 2s\n', 'collection_interval: 3s\n']);
  assert.equal(fallbacks.length, 1);
  assert.equal(fallbacks[0]?.code, 'ENOSPC');
  assert.equal(calls, 1); // no retry per tick
});

test('a watch that fails later falls back to the poll; a silent watch leaves the safety poll', async () => {
  const dir = tempDir();
  const path = join(dir, 'podnet.yaml');
  writeFileSync(path, 'a: 1\n');
  const emitters: EventEmitter[] = [];
  // A watch that never reports anything (as on a network filesystem) and can be made to fail.
  const silent: WatchFn = () => {
    const e = Object.assign(new EventEmitter(), { close: () => undefined });
    emitters.push(e);
    return e as unknown as FSWatcher;
  };
  const seen: string[] = [];
  const fallbacks: Error[] = [];
  const w = watchConfigFile(path, (t) => seen.push(t), {
    safetyPollMs: 700,
    watch: silent,
    onFallback: (e) => fallbacks.push(e),
  });
  try {
    await sleep(200);
    // Silent watch: only the safety poll (700 ms, then a confirming read 250 ms later) sees this.
    writeFileSync(path, 'a: 2\n');
    const t = await until(seen, 1, 3000, 'safety poll');
    assert.ok(t > 300, `${t} ms: seen before the safety poll could have run`);
    emitters[0]?.emit('error', new Error('watch failed'));
    assert.equal(fallbacks.length, 1);
    await sleep(100);
    writeFileSync(path, 'a: 3\n');
    await until(seen, 2, DOCUMENTED_MS, 'poll after the watch failed');
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(seen, ['a: 2\n', 'a: 3\n']);
});

// The control for the first case: with a watch that reports nothing and the safety poll off, a change is
// not seen — nothing else polls, so the first case's changes arrived through the inotify events.
test('with a silent watch and no safety poll, nothing reads the file', async () => {
  const dir = tempDir();
  const path = join(dir, 'podnet.yaml');
  writeFileSync(path, 'a: 1\n');
  const silent: WatchFn = () =>
    Object.assign(new EventEmitter(), { close: () => undefined }) as unknown as FSWatcher;
  const seen: string[] = [];
  const w = watchConfigFile(path, (t) => seen.push(t), { safetyPollMs: NEVER, watch: silent });
  try {
    await sleep(200);
    writeFileSync(path, 'a: 2\n');
    await sleep(3 * DOCUMENTED_MS);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(seen, []);
});

// `docker run -v FILE:PATH`: a file bind-mounted on its own is written through its own directory, so the
// mount point's directory hears nothing; the watch on the file's inode does (needs root, as the tests run).
test('an in-place write to a file bind-mounted on its own applies within 1 s with no poll running', async () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'host'));
  mkdirSync(join(dir, 'pod'));
  const source = join(dir, 'host', 'config.yaml');
  const path = join(dir, 'pod', 'podnet.yaml');
  writeFileSync(source, 'a: 1\n');
  writeFileSync(path, '');
  execFileSync('mount', ['--bind', source, path]);
  const seen: string[] = [];
  const w = watchConfigFile(path, (t) => seen.push(t), { safetyPollMs: NEVER });
  try {
    await sleep(300);
    writeFileSync(source, 'a: 2\n');
    await until(seen, 1, DOCUMENTED_MS, 'in-place write to the bind-mounted file');
  } finally {
    w.close();
    execFileSync('umount', [path]);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(seen, ['a: 2\n']);
});
