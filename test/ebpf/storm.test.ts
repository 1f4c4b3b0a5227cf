// A short storm (200k drops in a test netns, a C generator built at test time): the kernel counter stays
// exact (== Udp NoPorts == datagrams sent), events are capped by the rate limit and every drop is
// accounted for as an event read, suppressed or lost, and the process memory stays bounded.
// The full 1,000,000-drop run with event-loop delay is benchmarks/ebpf/storm.ts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { flood, removeFlood } from '../../benchmarks/ebpf/flood.ts';
import { SELF_METRIC } from '../../probes/common/ebpf.ts';
import { M, type PacketlossArgs, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { MetricPoint, Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import { selfPoint, sideEntity, sumPoints } from './env.ts';

let pair: NetnsPair;
let probe: Probe<PacketlossArgs> | undefined;

before(() => {
  removeStaleNetns('pna');
  pair = createNetnsPair({ prefix: 'pna', tag: 'st' });
});
after(async () => {
  await probe?.close();
  pair?.cleanup();
  removeFlood();
});

const total = (points: readonly MetricPoint[]) =>
  points.filter((p) => p.metric === M.drops).reduce((s, p) => s + (p.value as number), 0);

test('storm of 200k drops: exact counters, capped events, every drop accounted, bounded memory', async () => {
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
  probe = await packetlossProbe.create(
    ctx,
    packetlossProbe.args.parse({ rateLimit: limit, rateWindowMs: 1000, excludeLocations: [] }),
  );
  const n = 200_000;
  const noports0 = b.snmp('Udp', 'NoPorts');
  const p0 = await probe.collect([]);
  const rss0 = process.memoryUsage().rss;
  const t0 = Date.now();
  const r = await flood(b.name, '127.0.0.1', 9, n, { procs: 2 });
  const seconds = (Date.now() - t0) / 1000;
  assert.equal(r.sent, n);
  await new Promise((res) => setTimeout(res, 200));
  const p1 = await probe.collect([]);
  const rss1 = process.memoryUsage().rss;

  const kernel = b.snmp('Udp', 'NoPorts') - noports0;
  assert.equal(kernel, n, 'kernel: every datagram hit a closed port');
  const c = (p: readonly MetricPoint[]) =>
    sumPoints(p, M.drops, b.inode, { 'error.type': 'NO_SOCKET', 'network.transport': 'udp' });
  assert.equal(c(p1) - c(p0), n, 'counter exact');

  const events = perNetns.get(b.inode) ?? 0;
  const windows = Math.ceil(seconds + 1.2) + 1;
  assert.ok(events >= 1 && events <= limit * windows, `events ${events} for ${windows} windows`);
  // every drop counted in the kernel (all netns) is an event read, suppressed or lost
  const drops = total(p1) - total(p0);
  const read = selfPoint(p1, SELF_METRIC.read) - selfPoint(p0, SELF_METRIC.read);
  const suppressed = selfPoint(p1, SELF_METRIC.suppressed) - selfPoint(p0, SELF_METRIC.suppressed);
  const lost = selfPoint(p1, SELF_METRIC.lost) - selfPoint(p0, SELF_METRIC.lost);
  assert.ok(suppressed >= n - events, `suppressed ${suppressed}`);
  assert.ok(
    Math.abs(drops - (read + suppressed + lost)) <= 50,
    `${drops} drops vs ${read}+${suppressed}+${lost}`,
  );
  assert.equal(read, emitted);
  assert.ok(rss1 - rss0 < 64 << 20, `rss grew ${(rss1 - rss0) >> 20} MiB`);
  await probe.close();
  probe = undefined;
});
