// Map reader on real kernel maps (the selftest object loaded with no program attached, so only this
// test writes them): batch lookup across many batches, per-CPU sums, get-next-key fallback, deletes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, test } from 'node:test';
import { BPF_NOEXIST, parseCpuList, possibleCpus } from '../../receiver/bpf/maps.ts';
import { BpfSpec } from '../../receiver/bpf/object.ts';
import { SELFTEST_OBJECT } from './selftest-object.ts';

const coll = BpfSpec.fromFile(SELFTEST_OBJECT).load({
  programs: Object.fromEntries(
    BpfSpec.fromFile(SELFTEST_OBJECT).programs.map((p) => [p.name, { enabled: false }]),
  ),
  maxEntries: { drops: 5000 },
});
after(() => coll.close());

function key(netns: number, reason: number): Buffer {
  const k = Buffer.alloc(8);
  k.writeUInt32LE(netns, 0);
  k.writeUInt32LE(reason, 4);
  return k;
}

test('possible CPUs come from the kernel cpu list', () => {
  assert.equal(parseCpuList('0-1'), 2);
  assert.equal(parseCpuList('0-3,8,10-11'), 12);
  const nproc = Number(execFileSync('nproc', ['--all'], { encoding: 'utf8' }).trim());
  assert.ok(possibleCpus() >= nproc);
  assert.throws(() => parseCpuList('x'), /cannot parse cpu list/);
});

test('PERCPU_HASH: batch lookup returns every entry with values summed over CPUs', () => {
  const drops = coll.map('drops');
  assert.equal(drops.maxEntries, 5000, 'resized before load');
  const cpus = possibleCpus();
  assert.equal(drops.valueBytes, cpus * 16);
  const n = 3000; // several batches of 1024, last one ends with ENOENT + entries
  for (let i = 0; i < n; i++) {
    const v = Buffer.alloc(drops.valueBytes);
    for (let c = 0; c < cpus; c++) {
      v.writeBigUInt64LE(BigInt(i + c), c * 16); // packets on CPU c
      v.writeBigUInt64LE(BigInt(1000 * c + 7), c * 16 + 8); // bytes on CPU c
    }
    drops.update(key(4026530000 + i, i % 7), v, BPF_NOEXIST);
  }
  assert.throws(
    () => drops.update(key(4026530000, 0), Buffer.alloc(drops.valueBytes), BPF_NOEXIST),
    /EEXIST|exists/i,
  );
  const all = drops.entriesSummed(1024);
  assert.equal(all.length, n);
  let expectedCpuSum = 0;
  for (let c = 0; c < cpus; c++) expectedCpuSum += 1000 * c + 7;
  for (const e of all) {
    const i = e.key.readUInt32LE(0) - 4026530000;
    assert.equal(e.key.readUInt32LE(4), i % 7);
    assert.equal(e.values[0], cpus * i + (cpus * (cpus - 1)) / 2);
    assert.equal(e.values[1], expectedCpuSum);
  }
  // a tiny batch size forces many batches (and ENOSPC growth for crowded buckets)
  assert.equal(drops.entries(3).length, n);
  // get-next-key path gives the same keys
  const keys = drops.keys();
  assert.equal(keys.length, n);
  // delete stale keys: everything with reason 0
  const removed = drops.deleteWhere((k) => k.readUInt32LE(4) === 0);
  assert.equal(removed, Math.ceil(n / 7));
  assert.equal(drops.entries().length, n - removed);
  assert.equal(drops.delete(key(4026530000, 0)), false);
  assert.equal(drops.lookup(key(4026530000, 0)), null);
  assert.throws(() => drops.lookup(Buffer.alloc(3)), /key is 3 bytes, expected 8/);
});

test('LRU hash and per-CPU array read through the same reader; bpftool sees the same entries', () => {
  const rl = coll.map('pn_ratelimit');
  const k = Buffer.alloc(8);
  k.writeUInt32LE(123, 0);
  k.writeUInt32LE(1, 4);
  const v = Buffer.alloc(16);
  v.writeBigUInt64LE(5n, 0);
  v.writeBigUInt64LE(9n, 8);
  rl.update(k, v);
  assert.deepEqual(
    rl.entriesSummed().map((e) => e.values),
    [[5, 9]],
  );
  const id = JSON.parse(
    execFileSync('bpftool', ['-j', 'map', 'show', 'name', 'pn_ratelimit'], { encoding: 'utf8' }),
  );
  const ids = (Array.isArray(id) ? id : [id]).map((m: { id: number }) => m.id);
  // Maps of that name belong to any process (other podnet runs); one may vanish between show and dump.
  // Ours stays: this process holds it open, so a failed dump is never ours.
  const dumps = ids.flatMap((i: number) => {
    try {
      return [
        JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'id', String(i)], { encoding: 'utf8' })),
      ];
    } catch {
      return [];
    }
  });
  assert.ok(
    dumps.some((d: { formatted?: { value: { count: number } } }[]) =>
      d.some((e) => e.formatted?.value.count === 9),
    ),
    'bpftool does not show the entry',
  );
  const stats = coll.map('pn_stats');
  assert.equal(stats.arrayU64(0), 0);
  const per = Buffer.alloc(stats.valueBytes);
  for (let c = 0; c < possibleCpus(); c++) per.writeBigUInt64LE(3n, c * 8);
  const zero = Buffer.alloc(4);
  stats.update(zero, per);
  assert.equal(stats.arrayU64(0), 3 * possibleCpus());
});
