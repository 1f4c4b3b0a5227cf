// The OTLP endpoint goes away under a steady event load (refusing connections, or accepting and never
// answering): the event queue never exceeds its capacity, memory stays bounded, every event is accounted
// for (sent + lost + suppressed = emitted, exactly), the loss is exported as podnet.event.count, and export
// resumes when the endpoint is back. PODNET_TEST_OUTAGE_MS sets the outage (default 4 s here; the
// benchmark benchmarks/otel/outage.ts runs the full minute).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runOutage } from '../../benchmarks/otel/outage.ts';

const outageMs = Number(process.env['PODNET_TEST_OUTAGE_MS'] ?? 4000);

for (const [mode, protocol] of [
  ['down', 'grpc'],
  ['stall', 'http/protobuf'],
] as const) {
  test(`OTLP endpoint ${mode} (${protocol}) for ${outageMs} ms under 2000 events/s`, async () => {
    const maxQueueSize = 1000;
    const r = await runOutage({ outageMs, eventRatePerSec: 2000, protocol, maxQueueSize, mode });
    const accounted = r.sent + r.lostQueueFull + r.lostExportFailed + r.suppressed;
    assert.equal(accounted, r.emitted, `accounting: ${JSON.stringify(r)}`);
    assert.ok(r.emitted > (2000 * outageMs) / 1000, `load too low: ${r.emitted}`);
    assert.ok(r.maxQueue <= maxQueueSize, `queue ${r.maxQueue} > ${maxQueueSize}`);
    assert.ok(r.lostQueueFull + r.lostExportFailed > 0, 'nothing was counted as lost');
    if (mode === 'down') {
      assert.ok(r.lostExportFailed > 0);
      assert.ok(r.exportFailures.logs > 0 && r.exportFailures.metrics > 0, JSON.stringify(r.exportFailures));
    } else {
      assert.equal(r.maxQueue, maxQueueSize, 'a stalled endpoint fills the queue');
      assert.ok(r.lostQueueFull > 0);
    }
    // Bounded: the queue holds at most 1000 records; heap growth during the outage stays far below what
    // keeping every event would take (2000/s × ~1 KiB).
    assert.ok(r.heapMB.maxDuringOutage - r.heapMB.before < 64, `heap grew ${JSON.stringify(r.heapMB)}`);
    assert.ok(r.receivedLogs > 0, 'no logs after the endpoint came back');
    assert.ok(r.exportedLostCount > 0, 'the loss was not exported');
  });
}
