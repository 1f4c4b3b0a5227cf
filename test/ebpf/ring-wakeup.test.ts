// Ring wake-ups (receiver/bpf/ringbuf.ts, wakeDelayMs): the kernel wakes the reader for a record committed
// at the consumer position, and pays that wake-up inside the BPF hook. A woken reader drains only
// wakeDelayMs later, so records committed meanwhile wake no one: paced events cost about one wake-up per
// wakeDelayMs, not one each, and still arrive within about wakeDelayMs. Checked on the packetloss object
// with UDP to a closed port; the wake-ups are the kernel's notifications of the ring fd.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeDrop, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { EbpfRuntime } from '../../receiver/kit/ebpf/runtime.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import { sideEntity, testContext, waitFor } from './env.ts';

const OBJECT = new URL('../../probes/packetloss/packetloss.bpf.o', import.meta.url);
const OFF = { enabled: false } as const;
let pair: NetnsPair;
let rt: EbpfRuntime | undefined;

before(() => {
  removeStaleNetns('pna');
  pair = createNetnsPair({ prefix: 'pna', tag: 'rw' });
});
after(() => {
  rt?.close();
  pair?.cleanup();
});

test('paced events: a few kernel wake-ups, not one per event; each event delivered within ~wakeDelayMs', async () => {
  const port = 4301;
  const delays: number[] = [];
  // rate limit 100/s: the machine's other drops (one unattributed netns-0 bucket) stay few
  const args = packetlossProbe.args.parse({ rateLimit: 100, stacks: false, excludeLocations: [] });
  rt = EbpfRuntime.open({
    probe: 'packetloss',
    object: OBJECT,
    ctx: testContext([sideEntity(pair.b)]),
    args,
    programs: { pl_kfree_skb2_raw: OFF },
    fallbacks: { pl_kfree_skb4: 'pl_kfree_skb4_raw', pl_kfree_skb3: 'pl_kfree_skb3_raw' },
    decode: (rec, r) => {
      if (decodeDrop(rec.view, rec.offset, new Map(), r).attributes['destination.port'] === port)
        delays.push(Number(BigInt(Date.now()) * 1_000_000n - rec.timeUnixNano) / 1e6);
      return null;
    },
  });
  const ring = rt.ring!;
  await new Promise((r) => setTimeout(r, 150)); // the reader is waiting
  const w0 = ring.stats.wakeups;
  const n = 30;
  for (let i = 0; i < n; i++) {
    pair.a.sendUdp(pair.b.ipv4, port, 1);
    await new Promise((r) => setTimeout(r, 10)); // the reader would catch up between two events
  }
  assert.ok(await waitFor(() => delays.length >= n, 10_000), `got ${delays.length} of ${n}`);
  const wakeups = ring.stats.wakeups - w0;
  // ≥ 300 ms of events at one wake-up per 50 ms: ~6 (+ other drops); one per event would be 30
  assert.ok(wakeups <= n / 2, `${wakeups} wake-ups for ${n} paced events`);
  assert.ok(ring.stats.delayedWakeups >= 1);
  assert.ok(Math.max(...delays) < 2000, `slowest event ${Math.max(...delays).toFixed(0)} ms`);
  assert.equal(ring.lost(), 0);
});
