// receiver/bpf/malloc-trim.ts trimAfterCollection(): after a collection glibc's free memory is given back
// when the last trim is TRIM_MIN_GAP_MS old or the arenas' free bytes grew by TRIM_GROWTH since it, and not
// otherwise (a trim per collection at a 1 s interval cost more CPU than it saved RSS). Checked on glibc
// itself: memory malloc'ed, written and freed through libc, and the process's RssAnon (/proc/self/status)
// before and after.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import koffi from 'koffi';
import {
  nativeHeapFreeBytes,
  TRIM_GROWTH,
  TRIM_MIN_GAP_MS,
  trimAfterCollection,
} from '../../receiver/bpf/malloc-trim.ts';

const libc = koffi.load('libc.so.6');
const malloc = libc.func('void *malloc(size_t size)') as (n: number) => unknown;
const free = libc.func('void free(void *p)') as (p: unknown) => void;
const memset = libc.func('void *memset(void *p, int c, size_t n)') as (
  p: unknown,
  c: number,
  n: number,
) => unknown;

const rssAnonKb = (): number =>
  Number(/^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);

test('a trim after a collection: when due or when MBs were freed, not on every collection', () => {
  assert.equal(trimAfterCollection(), true, 'the first collection trims');
  assert.equal(trimAfterCollection(), false, 'the next one, right after and with nothing freed, does not');

  // 8 MB of 4 KB blocks, written (resident), then freed; a block after them keeps them off the heap's top
  // (which free() alone would give back), so only a trim returns their pages.
  const blocks = Array.from({ length: 2048 }, () => malloc(4096));
  const fence = malloc(64);
  for (const b of blocks) memset(b, 1, 4096);
  const before = nativeHeapFreeBytes()!;
  for (const b of blocks) free(b);
  const grown = nativeHeapFreeBytes()! - before;
  assert.ok(grown >= TRIM_GROWTH, `glibc counts ${grown} more free bytes`);
  const rss0 = rssAnonKb();
  assert.equal(trimAfterCollection(), true, 'MBs freed since the last trim: trimmed at once');
  const released = rss0 - rssAnonKb();
  assert.ok(released >= 6 * 1024, `RssAnon fell by ${released} kB after the trim (8 MB freed)`);

  assert.equal(trimAfterCollection(), false);
  assert.equal(trimAfterCollection(performance.now() + TRIM_MIN_GAP_MS + 1), true, 'due again after the gap');
  free(fence);
});
