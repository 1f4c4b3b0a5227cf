// What kernel stacks on events cost podnet in user space, per event: the same events through the pipeline
// and the export worker, OTLP http/protobuf to the counting sink in its own process (its CPU is not
// podnet's), with and without a kernel stack (the stack array, podnet.kernel.stack, and the multi-line
// code.stacktrace), alternating in one run; medians of the rounds and their ratio; the sink's count must
// equal the events sent. The in-kernel part (bpf_get_stackid) is benchmarks/ebpf/hook-cost.ts. Exits
// non-zero when an event is lost or unaccounted.
//
//   node benchmarks/otel/stack-cost.ts [--events 100000] [--rounds 3] [--frames 24]
import { applyHeapSettings } from '../../receiver/otel/heap.ts';
import type { ProbeEvent } from '../../receiver/probe/types.ts';
import { BENCH_EVENT, benchPipeline, benchPods } from '../lib/event-bench.ts';
import { finish } from '../lib/finish.ts';
import { startSink } from '../lib/otlp-sink.ts';

applyHeapSettings(); // as `podnet run` does (Agent.start)
const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('events', 100_000);
const ROUNDS = arg('rounds', 3);
const FRAMES = arg('frames', 24);

const entities = benchPods(100, 4026800000);

// 64 distinct stacks (the probes cache one array per stack id, as here), FRAMES frames each.
const STACKS = Array.from({ length: 64 }, (_, s) =>
  Array.from(
    { length: FRAMES },
    (_, f) => `kernel_function_${(s * 7 + f) % 97}+0x${(f * 37 + s).toString(16)}`,
  ),
);

function events(withStack: boolean): ProbeEvent[] {
  return Array.from({ length: 1000 }, (_, k) => ({
    name: BENCH_EVENT,
    type: 'PACKETLOSS',
    netns: 4026800000 + (k % 100),
    timeUnixNano: BigInt(Date.now()) * 1_000_000n + BigInt(k),
    attributes: {
      'error.type': 'NETFILTER_DROP',
      'podnet.drop.location': 'nft_do_chain+0x1c4',
      'network.transport': 'tcp',
      'source.address': '10.0.0.1',
      'source.port': 40000 + (k % 1000),
      'destination.address': '10.0.0.2',
      'destination.port': 80,
    },
    ...(withStack ? { stack: STACKS[k % STACKS.length]! } : {}),
  }));
}

const sink = await startSink();

async function once(
  withStack: boolean,
): Promise<{ cpuUsPerEvent: number; sent: number; lost: number; received: number; bytesPerEvent: number }> {
  await sink.reset();
  const p = await benchPipeline({ entities, logsEndpoint: sink.endpoint });
  const evs = events(withStack);
  // Let the worker start before measuring (its module loading is not the events' cost).
  await p.forceFlush();
  const cpu0 = process.cpuUsage();
  for (let k = 0; k < N; k++) p.events.emit('bench', evs[k % 1000]!);
  await p.forceFlush();
  const cpu = process.cpuUsage(cpu0); // podnet's whole process: main thread and the export worker
  const counts = await sink.counts();
  const out = {
    cpuUsPerEvent: (cpu.user + cpu.system) / N,
    sent: p.self.events.sent,
    lost: p.self.events.lost_queue_full + p.self.events.lost_export_failed,
    received: counts.logs.items,
    bytesPerEvent: counts.logs.rawBytes / Math.max(1, counts.logs.items),
  };
  await p.shutdown();
  return out;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const off: number[] = [];
const on: number[] = [];
const bytes = { off: 0, on: 0 };
const failures: string[] = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const withStack of [false, true]) {
    const res = await once(withStack);
    (withStack ? on : off).push(res.cpuUsPerEvent);
    bytes[withStack ? 'on' : 'off'] = Math.round(res.bytesPerEvent);
    if (res.sent !== N || res.lost !== 0 || res.received !== N)
      failures.push(
        `round ${r}, stacks ${withStack ? 'on' : 'off'}: ${N} emitted, ${res.sent} sent, ${res.lost} lost, ${res.received} received by the sink`,
      );
  }
}
await sink.stop();
const result = {
  events: N,
  rounds: ROUNDS,
  frames: FRAMES,
  cpuUsPerEvent: { stacksOff: +median(off).toFixed(2), stacksOn: +median(on).toFixed(2) },
  ratioOnOverOff: +(median(on) / median(off)).toFixed(2),
  extraUsPerEventWithStack: +(median(on) - median(off)).toFixed(2),
  otlpBytesPerEvent: bytes,
  rounds_us: { off: off.map((x) => +x.toFixed(2)), on: on.map((x) => +x.toFixed(2)) },
  loadavg1m: (await import('node:os')).loadavg()[0],
  accounted: failures.length === 0,
};
finish(JSON.stringify(result, null, 2), failures);
