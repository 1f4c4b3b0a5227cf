// pn_submit (probes/include/pn_ring.bpf.h): below a quarter-full ring a record is committed without
// waking the reader (BPF_RB_NO_WAKEUP) and the reader's drain tick (receiver/bpf/ringbuf.ts, drainMs)
// delivers it; past a quarter the kernel wakes the reader at once (BPF_RB_FORCE_WAKEUP). Checked on the
// packetloss object with UDP to a closed port, against the probe's own in-kernel drop counter.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeDrop, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
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

function runtime(ringBytes: number, port: number): { rt: EbpfRuntime; got: () => number } {
  const ctx = testContext([sideEntity(pair.b)]);
  const args = packetlossProbe.args.parse({ rateLimit: 0, stacks: false, ringBytes, excludeLocations: [] });
  let got = 0;
  const rt = EbpfRuntime.open({
    probe: 'packetloss',
    object: OBJECT,
    ctx,
    args,
    programs: { pl_kfree_skb2_raw: OFF },
    fallbacks: { pl_kfree_skb4: 'pl_kfree_skb4_raw', pl_kfree_skb3: 'pl_kfree_skb3_raw' },
    // count only this test's datagrams (other drops happen on the machine)
    decode: (rec, r) => {
      if (decodeDrop(rec.view, rec.offset, new Map(), r).attributes['destination.port'] === port) got++;
      return null;
    },
  });
  open.push(rt);
  assert.ok(rt.ring, 'ring reader started');
  return { rt, got: () => got };
}

test('a few events: no kernel wake-up, delivered by the drain tick', async () => {
  const { rt, got } = runtime(1 << 20, 4301);
  await new Promise((r) => setTimeout(r, 150)); // reader waiting
  const n = 20;
  pair.a.sendUdp(pair.b.ipv4, 4301, n);
  const t0 = performance.now();
  assert.ok(await waitFor(() => got() >= n, 10_000), `got ${got()} of ${n}`);
  const ms = performance.now() - t0;
  const s = rt.ring!.stats;
  assert.equal(s.wakeups, 0, 'no record woke the reader');
  assert.ok(s.tickDrains >= 1, `tick drains ${s.tickDrains}`);
  assert.ok(ms < 2000, `delivered after ${ms.toFixed(0)} ms`);
  assert.equal(rt.ring!.lost(), 0);
});

test('past a quarter of the ring: the reader is woken at once; every record read or lost', async () => {
  // 16 KiB ring: a quarter is ~36 records; 3,000 drops in a burst fill it far faster than a 100 ms tick
  const { rt, got } = runtime(16 << 10, 4302);
  await new Promise((r) => setTimeout(r, 150));
  const n = 3000;
  pair.a.sendUdp(pair.b.ipv4, 4302, n);
  const ring = rt.ring!;
  assert.ok(await waitFor(() => got() + ring.lost() >= n, 10_000), `${got()} + ${ring.lost()} < ${n}`);
  assert.ok(ring.stats.wakeups >= 1, `wakeups ${ring.stats.wakeups}`);
});
