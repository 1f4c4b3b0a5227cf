// pn_submit (probes/include/pn_ring.bpf.h): below a quarter-full ring a record is committed without
// waking the reader (BPF_RB_NO_WAKEUP) and the reader's drain tick (receiver/bpf/ringbuf.ts, drainMs)
// delivers it; past a quarter the kernel wakes the reader at once (BPF_RB_FORCE_WAKEUP). Checked on the
// packetloss object with UDP to a closed port, against the probe's own in-kernel drop counter.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeDrop, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { openEventRing } from '../../receiver/bpf/ringbuf.ts';
import { EbpfRuntime } from '../../receiver/kit/ebpf/runtime.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import { sideEntity, testContext, waitFor } from './env.ts';

const OBJECT = new URL('../../probes/packetloss/packetloss.bpf.o', import.meta.url);
/** Every program but the one for this kernel's kfree_skb stays off (the test needs one hook). */
const OFF = { enabled: false } as const;
let pair: NetnsPair;
const open: EbpfRuntime[] = [];

before(() => {
  removeStaleNetns('pna');
  pair = createNetnsPair({ prefix: 'pna', tag: 'rw' });
});
after(() => {
  for (const rt of open) rt.close();
  pair?.cleanup();
});

/**
 * The packetloss object with the runtime's own reader (`read`), or with none (the test opens its own).
 * Other netns' drops on the machine are unattributed (netns 0) and share one rate-limit bucket.
 */
function runtime(opts: { ringBytes: number; rateLimit: number; port: number; read: boolean }): {
  rt: EbpfRuntime;
  got: () => number;
} {
  const ctx = testContext([sideEntity(pair.b)]);
  const args = packetlossProbe.args.parse({
    rateLimit: opts.rateLimit,
    stacks: false,
    ringBytes: opts.ringBytes,
    excludeLocations: [],
  });
  let got = 0;
  const rt = EbpfRuntime.open({
    probe: 'packetloss',
    object: OBJECT,
    ctx,
    args,
    programs: { pl_kfree_skb2_raw: OFF },
    fallbacks: { pl_kfree_skb4: 'pl_kfree_skb4_raw', pl_kfree_skb3: 'pl_kfree_skb3_raw' },
    // count only this test's datagrams
    ...(opts.read
      ? {
          decode: (rec, r) => {
            const port = decodeDrop(rec.view, rec.offset, new Map(), r).attributes['destination.port'];
            if (port === opts.port) got++;
            return null;
          },
        }
      : {}),
  });
  open.push(rt);
  assert.equal(rt.ring !== undefined, opts.read);
  return { rt, got: () => got };
}

test('a few events: no kernel wake-up, delivered by the drain tick', async () => {
  // rate limit 100/s: the machine's other drops (one netns-0 bucket) cannot fill a quarter of 1 MiB
  const { rt, got } = runtime({ ringBytes: 1 << 20, rateLimit: 100, port: 4301, read: true });
  await new Promise((r) => setTimeout(r, 150)); // reader waiting
  const n = 20;
  pair.a.sendUdp(pair.b.ipv4, 4301, n);
  const t0 = performance.now();
  assert.ok(await waitFor(() => got() >= n, 10_000), `got ${got()} of ${n}`);
  const ms = performance.now() - t0;
  const s = rt.ring!.stats;
  assert.equal(s.wakeups, 0, 'no record woke the reader');
  // (delivered by the drain tick, or by the reader's busy-turn timer when other drops came with them)
  assert.ok(ms < 2000, `delivered after ${ms.toFixed(0)} ms`);
  assert.equal(rt.ring!.lost(), 0);
});

test('past a quarter of the ring the kernel wakes the reader: a reader with no drain tick gets the burst', async () => {
  // 16 KiB ring, a quarter is ~36 records; the reader has drainMs 0, so only a kernel wake-up delivers
  const { rt } = runtime({ ringBytes: 16 << 10, rateLimit: 0, port: 4302, read: false });
  let got = 0;
  const ring = openEventRing(rt.coll, {
    drainMs: 0,
    onRecord: () => {
      got++; // any record: other netns' drops (unattributed, not rate limited here) may fill the ring first
    },
  }).start();
  after(() => ring.close());
  await new Promise((r) => setTimeout(r, 150));
  const n = 3000;
  pair.a.sendUdp(pair.b.ipv4, 4302, n);
  // the burst fills the ring (the rest is counted lost); with no drain tick, only a kernel wake-up can
  // deliver what is in it
  assert.ok(await waitFor(() => got > 0, 10_000), `nothing delivered (${ring.lost()} lost)`);
  assert.ok(ring.stats.wakeups >= 1, `wakeups ${ring.stats.wakeups}`);
  assert.equal(ring.stats.tickDrains, 0);
});
