// Storm benchmark: 1,000,000 UDP datagrams to a closed port inside a test netns (C generator, several
// processes) with the packetloss probe loaded. Checks and reports: the kernel counter is exact (== Udp
// NoPorts == sent), events read / suppressed / lost add up, RSS stays bounded, and the event loop is never
// blocked over 100 ms by the probe: the ring reader's longest turn (drain + handlers) in process CPU time is
// the check; the wall-clock event-loop delay (perf_hooks histogram, 1 ms resolution) and the reader's
// longest wall turn are reported beside it with the load average, since on a busy 2-core machine they
// include time the OS gave other processes. Runs three configurations: default rate limit, unlimited
// events (every drop through the ring), unlimited with stacks.
//   node benchmarks/ebpf/storm.ts [COUNT]        exit 1 if a check fails
//   FLOOD_PROCS=2 ...                             generator processes (default 1: leaves a core to node)
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { M, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { SELF_METRIC } from '../../receiver/kit/ebpf/runtime.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { MetricPoint } from '../../receiver/probe/types.ts';
import { createNetnsPair, removeStaleNetns } from '../../test/env/netns.ts';
import { finish } from '../lib/finish.ts';
import { flood, floodBinary, removeFlood } from './flood.ts';

const COUNT = Number(process.argv[2] ?? 1_000_000);
const configs = [
  { name: 'rate limit 100/s per netns', args: { rateLimit: 100 } },
  { name: 'no rate limit (every drop an event)', args: { rateLimit: 0, ringBytes: 8 << 20 } },
  { name: 'no rate limit + stacks', args: { rateLimit: 0, stacks: true, ringBytes: 8 << 20 } },
];

const self = (p: readonly MetricPoint[], m: string) => (p.find((x) => x.metric === m)?.value as number) ?? 0;
const all = (p: readonly MetricPoint[]) =>
  p.filter((x) => x.metric === M.drops).reduce((s, x) => s + (x.value as number), 0);

removeStaleNetns('pna');
floodBinary(); // compile outside the measurement
const PROCS = Number(process.env['FLOOD_PROCS'] ?? 1);
const pair = createNetnsPair({ prefix: 'pna', tag: 'bs' });
const failures: string[] = [];
const lines: string[] = [];
try {
  const b = pair.b;
  const entity = { kind: 'netns' as const, netnsInode: b.inode, netnsPath: b.path, displayName: b.name };
  for (const cfg of configs) {
    let emitted = 0;
    const ctx = {
      log: childLogger('bench-storm'),
      entities: new StaticEntitySource([entity]),
      emit: () => {
        emitted++;
      },
    };
    const probe = await packetlossProbe.create(
      ctx,
      packetlossProbe.args.parse({ excludeLocations: [], ...cfg.args }),
    );
    const h = monitorEventLoopDelay({ resolution: 1 });
    const before = b.snmp('Udp', 'NoPorts');
    const p0 = await probe.collect([]);
    const rss0 = process.memoryUsage().rss;
    let rssMax = rss0;
    const sampler = setInterval(() => {
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
    }, 50);
    h.enable();
    const cpu0 = process.cpuUsage();
    const r = await flood(b.name, '127.0.0.1', 9, COUNT, { procs: PROCS });
    await new Promise((res) => setTimeout(res, 300));
    h.disable();
    clearInterval(sampler);
    const cpu = process.cpuUsage(cpu0);
    const p1 = await probe.collect([]);
    const kernel = b.snmp('Udp', 'NoPorts') - before;
    const counted =
      p1
        .filter(
          (p) => p.metric === M.drops && p.netns === b.inode && p.attributes?.['error.type'] === 'NO_SOCKET',
        )
        .reduce((s, p) => s + (p.value as number), 0) -
      p0
        .filter(
          (p) => p.metric === M.drops && p.netns === b.inode && p.attributes?.['error.type'] === 'NO_SOCKET',
        )
        .reduce((s, p) => s + (p.value as number), 0);
    const d = (m: string) => self(p1, m) - self(p0, m);
    const drops = all(p1) - all(p0);
    const read = d(SELF_METRIC.read);
    const suppressed = d(SELF_METRIC.suppressed);
    const lost = d(SELF_METRIC.lost);
    const maxDelayMs = h.max / 1e6;
    const ring = (
      probe.status().details?.['events'] as { ring?: { maxTurnMs: number; maxTurnCpuMs: number } }
    )?.ring;
    const checks = {
      counterExact: counted === COUNT && kernel === COUNT && r.sent === COUNT,
      accounted: Math.abs(drops - (read + suppressed + lost)) <= 100,
      readerTurnCpuUnder100ms: ring !== undefined && ring.maxTurnCpuMs < 100,
      rssBounded: rssMax - rss0 < 128 << 20,
    };
    const missed = Object.entries(checks).filter(([, ok]) => !ok);
    if (missed.length)
      failures.push(
        `${cfg.name}: ${missed.map(([k]) => k).join(', ')} did not hold (sent ${r.sent}, kernel ${kernel}, counted ${counted}, drops ${drops} vs read ${read} + suppressed ${suppressed} + lost ${lost})`,
      );
    lines.push(
      JSON.stringify({
        config: cfg.name,
        sent: r.sent,
        generatorSeconds: r.seconds,
        dropsPerSecond: Math.round(r.sent / r.seconds),
        kernelNoPorts: kernel,
        counted,
        eventsRead: read,
        emitted,
        suppressed,
        lost,
        eventLoopDelayMs: { max: maxDelayMs, p99: h.percentile(99) / 1e6, mean: h.mean / 1e6 },
        wallLoopUnder100ms: maxDelayMs < 100,
        readerLongestTurnMs: ring ? { wall: ring.maxTurnMs, cpu: ring.maxTurnCpuMs } : null,
        loadavg1m: loadavg()[0],
        rssMiB: { before: rss0 >> 20, max: rssMax >> 20 },
        nodeCpuMs: Math.round((cpu.user + cpu.system) / 1000),
        checks,
      }),
    );
    await probe.close();
  }
} finally {
  pair.cleanup();
  removeFlood();
}
finish(lines.join('\n'), failures);
