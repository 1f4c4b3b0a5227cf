// Kernel log2 slots → OTel explicit buckets in seconds (receiver/kit/ebpf/log2.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  HIST_FIELDS,
  HIST_SLOTS,
  histFromBytes,
  histFromFields,
  log2Boundaries,
  toHistogramValue,
} from '../../receiver/kit/ebpf/log2.ts';

function hist(slots: Record<number, number>, sumNs = 0) {
  const f = new Array<number>(HIST_FIELDS).fill(0);
  let count = 0;
  for (const [i, c] of Object.entries(slots)) {
    f[Number(i)] = c;
    count += c;
  }
  f[HIST_SLOTS] = sumNs;
  f[HIST_SLOTS + 1] = count;
  f[HIST_SLOTS + 2] = 7;
  f[HIST_SLOTS + 3] = 3;
  return histFromFields(f);
}

test('boundaries are powers of two ns in seconds, 2^10 … 2^35 by default', () => {
  const b = log2Boundaries();
  assert.equal(b.length, 26);
  assert.equal(b[0], 1024e-9);
  assert.equal(b.at(-1), 2 ** 35 / 1e9);
  assert.throws(() => log2Boundaries({ lo: 5, hi: 5 }));
});

test('slot i lands in the bucket whose upper bound is 2^(i+1) ns; below/above fold into the ends', () => {
  // slot 27 = [134.2 ms, 268.4 ms): a 150 ms wait
  const v = toHistogramValue(hist({ 0: 2, 9: 1, 10: 4, 27: 1, 39: 5 }, 150e6));
  assert.equal(v.counts.length, v.boundaries.length + 1);
  assert.equal(v.counts[0], 3, 'slots 0..9 (< 1024 ns) in the first bucket');
  assert.equal(v.counts[1], 4, 'slot 10 = [1024, 2048) ns → bucket (1024, 2048] ns');
  const k = v.boundaries.indexOf(2 ** 28 / 1e9);
  assert.equal(v.counts[k], 1, '150 ms in the (134 ms, 268 ms] bucket');
  assert.ok(v.boundaries[k - 1]! < 0.15 && 0.15 <= v.boundaries[k]!);
  assert.equal(v.counts.at(-1), 5, 'beyond 2^35 ns: overflow bucket');
  assert.equal(v.count, 13);
  assert.equal(v.sum, 0.15);
  assert.equal(
    v.counts.reduce((s, c) => s + c, 0),
    v.count,
  );
});

test('a narrower range keeps every count', () => {
  const v = toHistogramValue(hist({ 3: 1, 20: 2, 30: 3 }), { lo: 15, hi: 25 });
  assert.deepEqual([v.counts[0], v.counts.at(-1)], [1, 3]);
  assert.equal(
    v.counts.reduce((s, c) => s + c, 0),
    6,
  );
});

test('bytes decode (little endian u64 fields) equals fields decode', () => {
  const buf = Buffer.alloc(HIST_FIELDS * 8);
  buf.writeBigUInt64LE(5n, 27 * 8);
  buf.writeBigUInt64LE(123456789n, HIST_SLOTS * 8);
  buf.writeBigUInt64LE(5n, (HIST_SLOTS + 1) * 8);
  buf.writeBigUInt64LE(5n, (HIST_SLOTS + 2) * 8);
  buf.writeBigUInt64LE(1n, (HIST_SLOTS + 3) * 8);
  const h = histFromBytes(buf);
  assert.equal(h.slots[27], 5);
  assert.equal(h.sumNs, 123456789);
  assert.equal(h.count, 5);
  assert.deepEqual(h.over, [5, 1]);
});
