// Ring reader: both wake paths (koffi.node.poll and async epoll_wait) deliver every event; budgeted
// turns; close releases the mapping and lets the process exit; run-time statistics count runs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { openResources } from '../../receiver/bpf/lifecycle.ts';
import { type BpfCollection, BpfSpec } from '../../receiver/bpf/object.ts';
import { openEventRing } from '../../receiver/bpf/ringbuf.ts';
import { enableRunTimeStats, programInfo } from '../../receiver/bpf/stats.ts';
import { createNetnsPair, type NetnsPair } from '../env/netns.ts';
import { decodeDrop, dropKey, dropOnly, SELFTEST_OBJECT, waitFor } from './selftest-object.ts';

let pair: NetnsPair;
let coll: BpfCollection;

before(() => {
  pair = createNetnsPair({ prefix: 'pnb', tag: 'r' });
  coll = BpfSpec.fromFile(SELFTEST_OBJECT).load(
    dropOnly({ cfg_event_netns: pair.b.inode }, { maxEntries: { pn_events: 1 << 16 } }),
  );
  assert.equal(coll.attach().state, 'running');
});
after(() => {
  coll?.close();
  pair?.cleanup();
});

for (const wake of ['poll', 'epoll'] as const) {
  test(`wake=${wake}: every event arrives, in budgeted turns; close releases everything`, async () => {
    // Other drops in the pair's netns (IPv6 neighbour discovery, ...) also make records: count ours by port.
    let got = 0;
    const ring = openEventRing(coll, {
      wake,
      budget: 64,
      onRecord: (v, o) => {
        if (v.getUint16(o + 46, true) === 4242) got++;
      },
    }).start();
    after(() => ring.close());
    assert.ok(openResources().includes('ring:pn_events'));
    await new Promise((r) => setTimeout(r, 50)); // let the reader go to sleep: the kernel must wake it
    const n = 500; // 500 × 96 B records fit a 64 KiB ring; budget 64 → several turns
    const drops = coll.map('drops');
    const before = drops.lookup(dropKey(pair.b.inode, 3));
    const base = before ? (drops.sumU64(before)[0] ?? 0) : 0;
    pair.a.sendUdp(pair.b.ipv4, 4242, n);
    assert.ok(await waitFor(() => got >= n), `got ${got} of ${n}`);
    assert.equal(got, n, 'one record per datagram');
    assert.ok(ring.stats.wakeups >= 1);
    assert.ok(ring.stats.turns >= Math.ceil(n / 64), `turns ${ring.stats.turns}`);
    // other drops in the netns may come later: a woken reader drains them up to wakeDelayMs (50 ms) later
    assert.ok(await waitFor(() => ring.pending() === 0), `pending ${ring.pending()}`);
    assert.equal(ring.lost(), 0);
    const value = drops.lookup(dropKey(pair.b.inode, 3));
    assert.ok((drops.sumU64(value!)[0] ?? 0) - base >= n);
    ring.close();
    ring.close();
    assert.ok(!openResources().includes('ring:pn_events'));
  });
}

test('records that wrap past the end of the data area (mapped once) arrive whole', async () => {
  // A one-page ring: 96-byte records (88 + the 8-byte kernel header) do not divide 4096, so every lap
  // leaves a record that wraps. Sent in batches smaller than the ring, so nothing is lost.
  const small = BpfSpec.fromFile(SELFTEST_OBJECT).load(
    dropOnly({ cfg_event_netns: pair.b.inode }, { maxEntries: { pn_events: 4096 } }),
  );
  after(() => small.close());
  assert.equal(small.attach().state, 'running');
  const seen: { netns: number; dport: number; daddr: string }[] = [];
  const ring = openEventRing(small, {
    onRecord: (v, o, len) => {
      assert.equal(len, 88);
      const d = decodeDrop(v, o);
      if (d.dport === 4244) seen.push({ netns: d.netns, dport: d.dport, daddr: d.daddr });
    },
  }).start();
  after(() => ring.close());
  const batches = 20; // 37.5 KiB over a 4 KiB ring: 9 laps, a wrap in most (a lap can end on a record boundary)
  for (let i = 1; i <= batches; i++) {
    pair.a.sendUdp(pair.b.ipv4, 4244, 20);
    assert.ok(await waitFor(() => seen.length >= 20 * i), `batch ${i}: ${seen.length}`);
  }
  assert.equal(seen.length, 20 * batches);
  assert.ok(ring.stats.wrapped >= 4, `wrapped ${ring.stats.wrapped}`);
  for (const d of seen) assert.deepEqual(d, { netns: pair.b.inode, dport: 4244, daddr: pair.b.ipv4 });
  assert.equal(ring.lost(), 0);
  ring.close();
});

test('a full ring loses records and the kernel-side counter says how many', async () => {
  const ring = openEventRing(coll, { onRecord: () => {} }); // not started: nothing consumes
  const lostBefore = ring.lost();
  const n = 1500; // > 65536 / 96 records
  pair.a.sendUdp(pair.b.ipv4, 4243, n);
  const drained = ring.drain(1 << 20);
  const lost = ring.lost() - lostBefore;
  assert.ok(lost > 0, 'nothing lost?');
  assert.ok(drained >= 600, `drained ${drained}`);
  assert.ok(drained + lost >= n, `${drained} + ${lost} < ${n}`);
  ring.close();
});

test('BPF_STATS_RUN_TIME: run counts and time per program, as bpftool reports them', () => {
  const prog = coll.program('on_kfree_skb');
  using _stats = enableRunTimeStats();
  const before = programInfo(prog.fd);
  pair.a.sendUdp(pair.b.ipv4, 9, 200);
  const info = programInfo(prog.fd);
  assert.equal(info.name, 'on_kfree_skb');
  assert.ok(info.runCount - before.runCount >= 200, `run_cnt grew by ${info.runCount - before.runCount}`);
  assert.ok(info.runTimeNs > before.runTimeNs);
  const shown = JSON.parse(
    execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(info.id)], { encoding: 'utf8' }),
  );
  assert.ok(shown.run_cnt >= info.runCount);
  assert.ok(shown.run_time_ns >= info.runTimeNs);
});
