// Delta temporality (exporters.otlp.temporality: delta): monotonic sums and histograms arrive as the change
// since the previous export, each point starting where the previous one ended; gauges stay levels.
// Collections and exports are driven by hand so the expected deltas are exact.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { HOST_ENTITY } from '../../receiver/pods/entity.ts';
import { type OtlpReceiver, type ReceivedPoint, startOtlpReceiver } from '../env/otlp-receiver/receiver.ts';

let rx: OtlpReceiver;
before(async () => {
  rx = await startOtlpReceiver();
});
after(async () => {
  await rx.down();
});

test('delta temporality: exact deltas, contiguous intervals, gauges unchanged', async () => {
  const agent = await Agent.start({
    configText: `
collection_interval: 1h
server: { enabled: false }
probes: { synthetic: { enabled: true, args: { counter_step: 5, gauge_value: 9, unattributed: false } } }
exporters: { otlp: { endpoint: "${rx.httpEndpoint}", protocol: http/protobuf, interval: 1h, temporality: delta } }
`,
    specs: [],
    extraSpecs: [syntheticSpec],
    entitySource: new StaticEntitySource([HOST_ENTITY]),
    env: {},
  });
  try {
    const deadline = Date.now() + 10_000;
    while (agent.collections < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const exports: ReceivedPoint[][] = [];
    const exportNow = async () => {
      const n = rx.points.length;
      await agent.pipeline.forceFlush();
      await rx.waitFor(() => rx.points.length > n, 10_000, 'an export');
      exports.push(rx.points.slice(n));
    };
    await exportNow(); // after collection 1
    await agent.collectNow();
    await agent.collectNow();
    await exportNow(); // after collection 3
    for (let i = 0; i < 3; i++) await agent.collectNow();
    await exportNow(); // after collection 6
    await exportNow(); // no new collection: the counters have nothing to report

    const pick = (pts: ReceivedPoint[], name: string, dir?: string) =>
      pts.find((p) => p.name === name && (dir === undefined || p.attributes['network.io.direction'] === dir));
    const rxDelta = exports.map((e) => pick(e, 'podnet.synthetic.packet.count', 'receive'));
    assert.deepEqual(
      rxDelta.map((p) => p?.value),
      [5, 10, 15, undefined],
    );
    for (const p of rxDelta.slice(0, 3)) {
      assert.equal(p!.temporality, 'delta');
      assert.equal(p!.isMonotonic, true);
    }
    assert.equal(rxDelta[1]!.startTimeUnixNano, rxDelta[0]!.timeUnixNano, 'contiguous intervals');
    assert.equal(rxDelta[2]!.startTimeUnixNano, rxDelta[1]!.timeUnixNano);
    assert.deepEqual(
      exports.slice(0, 3).map((e) => pick(e, 'podnet.synthetic.packet.count', 'transmit')?.value),
      [10, 20, 30],
    );
    const hist = exports.slice(0, 3).map((e) => pick(e, 'podnet.synthetic.latency.duration')!);
    assert.deepEqual(
      hist.map((h) => h.histogram!.bucketCounts),
      [
        [1, 1, 1, 1, 1],
        [2, 2, 2, 2, 2],
        [3, 3, 3, 3, 3],
      ],
    );
    assert.ok(hist.every((h) => h.temporality === 'delta'));
    const gauges = exports.map((e) => pick(e, 'podnet.synthetic.queue.length'));
    assert.deepEqual(
      gauges.map((g) => g?.value),
      [9, 9, 9, 9],
    );
    assert.equal(gauges[0]!.type, 'gauge');
  } finally {
    await agent.stop();
  }
});
