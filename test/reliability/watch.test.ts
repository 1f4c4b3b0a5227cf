// The config watcher never hands over a file caught in the middle of an in-place write (truncate, write
// half, pause, write the rest), which used to be applied as a broken config and counted as a rejected
// reload before the complete file was read on the next poll.
import assert from 'node:assert/strict';
import {
  closeSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { watchConfigFile } from '../../receiver/config/watch.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an in-place write seen half-way is not handed over; the complete file is, once', async () => {
  const dir = mkdtempSync(join(tmpdir(), `pnr${process.pid}-watch-`));
  const path = join(dir, 'podnet.yaml');
  const v1 = 'collection_interval: 1s\n';
  const v2 = `collection_interval: 2s\nserver: { address: "127.0.0.1:0" }\n${'# padding\n'.repeat(50)}`;
  writeFileSync(path, v1);
  const seen: string[] = [];
  const w = watchConfigFile(path, (t) => seen.push(t), { intervalMs: 200 });
  try {
    await sleep(400);
    for (let round = 0; round < 5; round++) {
      const next = round % 2 === 0 ? v2 : v1;
      const fd = openSync(path, 'w'); // truncates
      writeSync(fd, next.slice(0, 20));
      await sleep(60); // a poll may see the half file (never two: they are 200 ms apart)
      writeSync(fd, next.slice(20));
      closeSync(fd);
      await sleep(700);
    }
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(seen, [v2, v1, v2, v1, v2]);
});

// The watcher skips the read while the file's stat is unchanged: a same-size rewrite and a ConfigMap-style
// symlink swap (a new target of the same size) must still be seen.
test('a same-size rewrite and a symlink swap to a same-size file are each handed over', async () => {
  const dir = mkdtempSync(join(tmpdir(), `pnr${process.pid}-watch-`));
  const a = join(dir, 'a.yaml');
  const b = join(dir, 'b.yaml');
  const link = join(dir, 'podnet.yaml');
  const v1 = 'collection_interval: 1s\n';
  const v2 = 'collection_interval: 2s\n';
  const v3 = 'collection_interval: 3s\n';
  writeFileSync(a, v1);
  writeFileSync(b, v3);
  symlinkSync(a, link);
  const seen: string[] = [];
  const w = watchConfigFile(link, (t) => seen.push(t), { intervalMs: 100 });
  try {
    await sleep(300);
    writeFileSync(a, v2); // same size, in place
    await sleep(500);
    symlinkSync(b, `${link}.new`);
    renameSync(`${link}.new`, link); // atomic swap, as the kubelet does for a ConfigMap volume
    await sleep(500);
  } finally {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(seen, [v2, v3]);
});
