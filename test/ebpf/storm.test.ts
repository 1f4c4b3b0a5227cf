// A storm of 1,000,000 drops in a test netns (a C generator built at test time): the kernel counter stays
// exact (== Udp NoPorts == datagrams sent), events are capped by the rate limit and every drop is
// accounted for as an event read, suppressed or lost, the process memory stays bounded, and the ring
// reader never holds the event loop for 100 ms (its longest turn in CPU time: wall-clock delays on a
// shared 2-core machine measure the other processes too, so they are reported, not asserted). A second
// storm with no rate limit sends every drop through the ring. benchmarks/ebpf/storm.ts reports the
// wall-clock event-loop delay too.
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { flood, removeFlood } from '../../benchmarks/ebpf/flood.ts';
import { M, type PacketlossArgs, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { SELF_METRIC } from '../../receiver/kit/ebpf/runtime.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { MetricPoint, Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import { selfPoint, sideEntity, sumPoints } from './env.ts';

let pair: NetnsPair;
/** Every probe a test created: closed in after() even when a test fails (an open ring keeps node alive). */
const probes: Probe<PacketlossArgs>[] = [];

before(() => {
  removeStaleNetns('pna');
  pair = createNetnsPair({ prefix: 'pna', tag: 'st' });
});
after(async () => {
  for (const p of probes) await p.close();
  pair?.cleanup();
  removeFlood();
});

/** The ring reader's longest turn (drain + handlers), wall and process-CPU ms, from the probe status. */
function longestTurn(p: Probe<PacketlossArgs>): { wall: number; cpu: number } {
  const ring = (p.status().details?.['events'] as { ring?: { maxTurnMs: number; maxTurnCpuMs: number } })
    ?.ring;
  assert.ok(ring, 'the probe reads its ring');
  return { wall: ring.maxTurnMs, cpu: ring.maxTurnCpuMs };
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap in use after a full GC: what the process retains, whatever the collector had not yet reclaimed. */
function liveHeap(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

/** Memory is bounded: nothing retained per event (live heap), and RSS (GC lag, ring pages) within reason. */
function assertBounded(heap0: number, rss0: number): void {
  const heap = liveHeap() - heap0;
  const rss = process.memoryUsage().rss - rss0;
  assert.ok(heap < 16 << 20, `live heap grew ${(heap / 1048576).toFixed(1)} MiB`);
  assert.ok(rss < 256 << 20, `rss grew ${rss >> 20} MiB`);
}

const total = (points: readonly MetricPoint[]) =>
  points.filter((p) => p.metric === M.drops).reduce((s, p) => s + (p.value as number), 0);

test('storm of 1M drops: exact counters, capped events, every drop accounted, bounded memory, loop not held', async () => {
  const b = pair.b;
  const perNetns = new Map<number, number>();
  let emitted = 0;
  const source = new StaticEntitySource([sideEntity(pair.a), sideEntity(b)]);
  const ctx = {
    log: childLogger('test-storm'),
    entities: source,
    emit: (e: { netns: number }) => {
      emitted++;
      perNetns.set(e.netns, (perNetns.get(e.netns) ?? 0) + 1);
    },
  };
  const limit = 50;
  const probe = await packetlossProbe.create(
    ctx,
    packetlossProbe.args.parse({ rateLimit: limit, rateWindowMs: 1000, excludeLocations: [] }),
  );
  probes.push(probe);
  const n = 1_000_000;
  const noports0 = b.snmp('Udp', 'NoPorts');
  const p0 = await probe.collect([]);
  const heap0 = liveHeap();
  const rss0 = process.memoryUsage().rss;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const t0 = Date.now();
  const r = await flood(b.name, '127.0.0.1', 9, n, { procs: 2 });
  const seconds = (Date.now() - t0) / 1000;
  assert.equal(r.sent, n);
  await new Promise((res) => setTimeout(res, 200));
  const p1 = await probe.collect([]);

  const kernel = b.snmp('Udp', 'NoPorts') - noports0;
  assert.equal(kernel, n, 'kernel: every datagram hit a closed port');
  const c = (p: readonly MetricPoint[]) =>
    sumPoints(p, M.drops, b.inode, { 'error.type': 'NO_SOCKET', 'network.transport': 'udp' });
  assert.equal(c(p1) - c(p0), n, 'counter exact');

  const events = perNetns.get(b.inode) ?? 0;
  const windows = Math.ceil(seconds + 1.2) + 1;
  assert.ok(events >= 1 && events <= limit * windows, `events ${events} for ${windows} windows`);
  // Each window reopens (pn_rate_allow's per-CPU fast path answers a suppressed flood until the jiffy
  // ends, so at most a tick late) and fills at once under this flood: every whole second of it sends
  // `limit` events. One second is left out for the flood's start-up and its last, partial window.
  const full = Math.max(1, Math.floor(seconds) - 1);
  assert.ok(events >= limit * full, `events ${events}: windows did not reopen over ${seconds.toFixed(1)} s`);
  const drops = total(p1) - total(p0);
  const read = selfPoint(p1, SELF_METRIC.read) - selfPoint(p0, SELF_METRIC.read);
  const suppressed = selfPoint(p1, SELF_METRIC.suppressed) - selfPoint(p0, SELF_METRIC.suppressed);
  const lost = selfPoint(p1, SELF_METRIC.lost) - selfPoint(p0, SELF_METRIC.lost);
  assert.ok(suppressed >= n - events, `suppressed ${suppressed}`);
  // Every drop counted in the kernel (all netns) is an event read, suppressed or lost. A collection reads
  // the counter map, then the self counters: drops of other netns (other tests run concurrently) that
  // land between the two reads skew the sums, so the tolerance grows with that background.
  const background = Math.max(0, drops - n);
  assert.ok(
    Math.abs(drops - (read + suppressed + lost)) <= 50 + background / 100,
    `${drops} drops (${background} of other netns) vs ${read}+${suppressed}+${lost}`,
  );
  assert.equal(read, emitted);
  assertBounded(heap0, rss0);
  loop.disable();
  const turn = longestTurn(probe);
  assert.ok(
    turn.cpu < 100,
    `reader held the loop ${turn.cpu} ms CPU (wall turn ${turn.wall} ms, loop delay max ${loop.max / 1e6} ms)`,
  );
  await probe.close();
});

test('storm of 200k drops with no rate limit: every drop an event read or lost, reader turns bounded', async () => {
  const b = pair.b;
  let emittedB = 0;
  const ctx = {
    log: childLogger('test-storm'),
    entities: new StaticEntitySource([sideEntity(b)]),
    emit: (e: { netns: number }) => {
      if (e.netns === b.inode) emittedB++;
    },
  };
  const probe = await packetlossProbe.create(
    ctx,
    packetlossProbe.args.parse({ rateLimit: 0, ringBytes: 8 << 20, excludeLocations: [] }),
  );
  probes.push(probe);
  const n = 200_000;
  const noports0 = b.snmp('Udp', 'NoPorts');
  const p0 = await probe.collect([]);
  const heap0 = liveHeap();
  const rss0 = process.memoryUsage().rss;
  const r = await flood(b.name, '127.0.0.1', 9, n, { procs: 2 });
  assert.equal(r.sent, n);
  const c = (p: readonly MetricPoint[]) =>
    sumPoints(p, M.drops, b.inode, { 'error.type': 'NO_SOCKET', 'network.transport': 'udp' });
  const d = (p1: readonly MetricPoint[], m: string) => selfPoint(p1, m) - selfPoint(p0, m);
  // The reader drains in budgeted turns: poll (up to 30 s) until every drop of b is an event or lost.
  // (Other netns drop too, unattributed, while other tests run: the exact checks are on netns b.)
  let p1 = await probe.collect([]);
  for (const end = Date.now() + 30_000; emittedB + d(p1, SELF_METRIC.lost) < n && Date.now() < end; ) {
    await new Promise((res) => setTimeout(res, 50));
    p1 = await probe.collect([]);
  }
  assert.equal(b.snmp('Udp', 'NoPorts') - noports0, n);
  assert.equal(c(p1) - c(p0), n, 'counter exact');
  const drops = total(p1) - total(p0);
  const read = d(p1, SELF_METRIC.read);
  const lost = d(p1, SELF_METRIC.lost);
  assert.equal(d(p1, SELF_METRIC.suppressed), 0, 'nothing suppressed without a rate limit');
  assert.ok(emittedB <= n && emittedB + lost >= n, `${n} drops in b: ${emittedB} events, ${lost} lost`);
  // Lost is global (the ring is shared by every netns): with none lost, every drop of b is an event.
  if (lost === 0) assert.equal(emittedB, n, 'every drop of b read as an event');
  // Globally, read + lost covers every drop up to the events in flight at the two reads (drops of
  // other netns counted before p0 and read after it, or counted before p1 and read after it).
  assert.ok(read + lost >= n && drops >= n, `${drops} drops, ${read} read, ${lost} lost`);
  assert.ok(emittedB >= n / 2, `most events read (${emittedB} read, ${lost} lost)`);
  assertBounded(heap0, rss0);
  const turn = longestTurn(probe);
  assert.ok(turn.cpu < 100, `reader held the loop ${turn.cpu} ms CPU (wall ${turn.wall} ms)`);
  await probe.close();
});
