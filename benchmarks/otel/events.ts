// CPU cost of one event through the pipeline (ctx.emit → entity keys → LogRecord into the bounded batch
// queue → OTLP http/protobuf export to the test receiver), with and without the OTLP logs exporter.
//
//   node_modules/.bin/node benchmarks/otel/events.ts [--events 200000]
//
// Exits 1, printing the figures as INVALID, when a check fails: every event sent with the exporter (the
// queue holds them all), none lost, the receiver got exactly `sent`, nothing unaccounted.
import { performance } from 'node:perf_hooks';
import { applyHeapSettings } from '../../receiver/otel/heap.ts';
import type { ProbeEvent } from '../../receiver/probe/types.ts';
import { startOtlpReceiver } from '../../test/env/otlp-receiver/receiver.ts';
import { BENCH_EVENT, benchPipeline, benchPods } from '../lib/event-bench.ts';

applyHeapSettings(); // as `podnet run` does (Agent.start)
const i = process.argv.indexOf('--events');
const N = i >= 0 ? Number(process.argv[i + 1]) : 200_000;

const entities = benchPods(100, 4026700000, { app: 'a' });

function event(k: number): ProbeEvent {
  return {
    name: BENCH_EVENT,
    type: 'PACKETLOSS',
    netns: 4026700000 + (k % 100),
    timeUnixNano: BigInt(Date.now()) * 1_000_000n + BigInt(k % 1000),
    attributes: {
      'error.type': 'NETFILTER_DROP',
      'network.transport': 'tcp',
      'source.address': '10.0.0.1',
      'source.port': 40000 + (k % 1000),
      'destination.address': '10.0.0.2',
      'destination.port': 80,
    },
    stack: ['kfree_skb_reason+0x0', 'nf_hook_slow+0x9c', 'ip_rcv+0x6f'],
  };
}

async function run(withOtlp: boolean): Promise<{ failures: string[] } & Record<string, unknown>> {
  const rx = await startOtlpReceiver({ maxKept: 1000 });
  const p = await benchPipeline({
    entities,
    labelAllowlist: ['app'],
    timeoutMs: 10_000,
    ...(withOtlp ? { logsEndpoint: rx.httpEndpoint } : {}),
  });
  const evs = Array.from({ length: 1000 }, (_, k) => event(k));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let k = 0; k < N; k++) p.events.emit('bench', evs[k % 1000]!);
  const emitMs = performance.now() - t0;
  await p.forceFlush();
  const totalMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const self = p.self.events;
  const checks: string[] = [];
  const unaccounted =
    p.events.emitted - (self.sent + self.suppressed + self.lost_queue_full + self.lost_export_failed);
  if (withOtlp) {
    // Without an exporter, records are not exported and not counted as an outcome (nothing to account).
    if (unaccounted !== 0) checks.push(`${unaccounted} events unaccounted`);
    if (self.sent !== N) checks.push(`sent ${self.sent} of ${N}`);
    if (self.lost_queue_full + self.lost_export_failed !== 0) checks.push('events lost');
    if (rx.logsReceived !== self.sent) checks.push(`receiver got ${rx.logsReceived}, sent ${self.sent}`);
    if (rx.decodeErrors.length) checks.push(`receiver decode errors: ${rx.decodeErrors[0]}`);
  }
  const result = {
    events: N,
    emitUsPerEvent: +((emitMs * 1000) / N).toFixed(2),
    cpuUsPerEventIncludingExportAndReceiver: +((cpu.user + cpu.system) / N).toFixed(2),
    totalMs: Math.round(totalMs),
    sent: p.self.events.sent,
    lost: p.self.events.lost_queue_full + p.self.events.lost_export_failed,
    failures: checks,
  };
  await p.shutdown();
  await rx.down();
  return result;
}

const results = { withoutExporter: await run(false), withOtlpHttpProtobuf: await run(true) };
const failures = [...results.withoutExporter.failures, ...results.withOtlpHttpProtobuf.failures];
if (failures.length) {
  process.stderr.write(`INVALID (checks failed: ${failures.join('; ')}):\n${JSON.stringify(results)}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
