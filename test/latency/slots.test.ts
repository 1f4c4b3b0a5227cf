// Netns slots (probes/include/pn_slot.bpf.h, receiver/kit/ebpf/watched.ts): a watched netns with a slot
// is counted in the probe's per-CPU array, one without (no slot left, or its table index taken) in the
// per-CPU hash as before; both must count every UDP read exactly, each in one place only, and a slot
// given again must start from zero. The object is socketlatency's, loaded by the kit with a fast array
// that holds one usable slot (slot 0 means "none").
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SL_KEY, SL_KEY_SIZE } from '../../probes/socketlatency/socketlatency.layout.gen.ts';
import { OBJECT, socketlatencyProbe } from '../../probes/socketlatency/socketlatency.ts';
import type { BpfMap } from '../../receiver/bpf/maps.ts';
import { slotKeys } from '../../receiver/kit/ebpf/latency.ts';
import { EbpfRuntime, WatchedNetns } from '../../receiver/kit/ebpf/runtime.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import { App, sideEntity, type TestContext, testContext } from './env.ts';

const VARIANTS = slotKeys(SL_KEY_SIZE, SL_KEY.dir, SL_KEY.l4proto, [
  [0, 6],
  [0, 17],
  [1, 6],
]);

let pair: NetnsPair;
let rt: EbpfRuntime;
let ctx: TestContext;
const apps: App[] = [];

before(() => {
  removeStaleNetns('pnt');
  pair = createNetnsPair({ prefix: 'pnt', tag: 'slot' });
  // b first: it gets the one slot, a keeps the hash path
  ctx = testContext([sideEntity(pair.b), sideEntity(pair.a)]);
  rt = EbpfRuntime.open({
    probe: 'socketlatency',
    object: OBJECT,
    ctx,
    args: socketlatencyProbe.args.parse({}),
    counterMaps: ['sl_hist'],
    maxEntries: { sl_hist_fast: 2 * VARIANTS.length },
    slotted: { sl_hist: { fast: 'sl_hist_fast', variants: VARIANTS } },
  });
});

after(() => {
  for (const a of apps) a.kill();
  rt?.close();
  pair?.cleanup();
});

/** UDP reads counted under `netns` (sl_key read/UDP), from the runtime's merged view. */
function udpReads(netns: number): number {
  const e = rt
    .counterEntries('sl_hist')
    .find(
      (x) => x.netns === netns && x.key.readUInt8(SL_KEY.dir) === 0 && x.key.readUInt8(SL_KEY.l4proto) === 17,
    );
  return e?.values[41] ?? 0; // struct pn_hist: 40 slots, sum_ns, count
}

/** Whether the per-CPU hash itself holds a key of `netns` (the kernel map, not the merged view). */
const inHash = (netns: number): boolean =>
  rt.coll
    .map('sl_hist')
    .keys()
    .some((k) => k.readUInt32LE(0) === netns);

async function udpTo(to: typeof pair.a, from: typeof pair.a, port: number, n: number): Promise<void> {
  const u = new App(to, ['udp', String(port)]);
  apps.push(u);
  await u.waitLine(/^ready/);
  for (let i = 0; i < n; i++) from.sendUdp(to.ipv4, port, 1, 100);
  await u.waitLine(new RegExp(`^udp ${n}$`), 5000, 0);
  u.kill();
}

test('one slot: the slotted netns counts in the array, the other in the hash, both exactly', async () => {
  assert.deepEqual([...(rt.watched?.slots() ?? [])], [[pair.b.inode, 1]]);
  const b0 = udpReads(pair.b.inode);
  const a0 = udpReads(pair.a.inode);
  await udpTo(pair.b, pair.a, 7201, 100);
  await udpTo(pair.a, pair.b, 7202, 60);
  assert.equal(udpReads(pair.b.inode) - b0, 100, 'slotted netns b');
  assert.equal(udpReads(pair.a.inode) - a0, 60, 'hash-path netns a');
  assert.equal(inHash(pair.b.inode), false, 'b has no hash entry: counted in one place only');
  assert.equal(inHash(pair.a.inode), true, 'a is counted in the hash');
});

test('a slot given again starts at zero: b removed and re-added counts only what came after', async () => {
  await udpTo(pair.b, pair.a, 7203, 30);
  assert.ok(udpReads(pair.b.inode) >= 30);
  ctx.source.remove(pair.b.inode);
  assert.deepEqual([...(rt.watched?.slots() ?? [])], [], 'slot released');
  ctx.source.add(sideEntity(pair.b));
  assert.deepEqual([...(rt.watched?.slots() ?? [])], [[pair.b.inode, 1]], 'slot given again');
  assert.equal(udpReads(pair.b.inode), 0, 'no series before the first read');
  await udpTo(pair.b, pair.a, 7204, 25);
  assert.equal(udpReads(pair.b.inode), 25);
});

/** An in-memory stand-in for the pn_slots ARRAY: what WatchedNetns wrote, by index. */
function fakeMap(name: string, maxEntries: number): BpfMap & { writes: Map<number, [number, number]> } {
  const writes = new Map<number, [number, number]>();
  return {
    name,
    maxEntries,
    writes,
    update(key: Uint8Array, value: Uint8Array) {
      const k = Buffer.from(key).readUInt32LE(0);
      if (value.length === 8)
        writes.set(k, [Buffer.from(value).readUInt32LE(0), Buffer.from(value).readUInt32LE(4)]);
    },
    delete() {
      return true;
    },
  } as unknown as BpfMap & { writes: Map<number, [number, number]> };
}

test('WatchedNetns: a taken table index or no free slot keeps the hash path; a slot is reset before it is published', () => {
  const table = fakeMap('pn_slots', 16);
  const order: string[] = [];
  const w = new WatchedNetns(fakeMap('pn_watched', 64), {
    table,
    capacity: 3, // slots 1 and 2
    reset: (slot) =>
      order.push(`reset ${slot} (published: ${[...table.writes.values()].some(([, s]) => s === slot)})`),
  });
  w.add(0xf0000001);
  w.add(0xf0000011); // same index (low 4 bits) as the first: no slot
  w.add(0xf0000002);
  w.add(0xf0000003); // no slot left
  assert.deepEqual(
    [...w.slots()],
    [
      [0xf0000001, 1],
      [0xf0000002, 2],
    ],
  );
  assert.deepEqual(order, ['reset 1 (published: false)', 'reset 2 (published: false)']);
  assert.deepEqual(table.writes.get(1), [0xf0000001, 1]);
  w.delete(0xf0000001);
  assert.deepEqual(table.writes.get(1), [0, 0], 'unpublished');
  w.add(0xf0000004); // the freed slot
  assert.deepEqual([...w.slots()].sort(), [
    [0xf0000002, 2],
    [0xf0000004, 1],
  ]);
  assert.equal(order.at(-1), 'reset 1 (published: false)');
  assert.equal(w.size, 4);
});
