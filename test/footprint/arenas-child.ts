// Child of test/footprint/malloc-arenas.test.ts: optionally caps the arenas the way podnet does
// (receiver/agent/malloc-arenas.ts), then makes threads allocate — libuv's pool (gzip) and worker threads —
// and prints JSON: arena heaps from /proc/self/maps before and after, glibc's own arena count (malloc_stats()
// on stderr, read back by the parent) and what applyArenaLimit reported.
import { Worker } from 'node:worker_threads';
import { gzip } from 'node:zlib';
import koffi from 'koffi';
import pino from 'pino';
import { applyArenaLimit } from '../../receiver/agent/malloc-arenas.ts';
import { arenaHeaps } from './arenas.ts';

const cap = process.argv[2] === 'cap';
const applied = cap ? applyArenaLimit(pino({ level: 'silent' })) : undefined;
const before = arenaHeaps('self');
await Promise.all(Array.from({ length: 16 }, () => new Promise((r) => gzip(Buffer.alloc(1 << 20, 7), r))));
const workers = Array.from(
  { length: 4 },
  () =>
    new Worker(
      'const a=[];for(let i=0;i<2e5;i++)a.push({i,s:"x"+i});require("node:worker_threads").parentPort.postMessage(a.length)',
      { eval: true },
    ),
);
await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
const after = arenaHeaps('self');
koffi.load('libc.so.6').func('void malloc_stats(void)')();
process.stdout.write(`${JSON.stringify({ before, after, applied: applied ?? null })}\n`);
await Promise.all(workers.map((w) => w.terminate()));
