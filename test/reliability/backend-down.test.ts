// Backend down under load (short version of benchmarks/reliability/backend-down.ts): `podnet run` as a
// child process, 2000 synthetic events/s over OTLP gRPC, the receiver refusing connections for 8 s then
// stalled for 8 s, then back. Bounded queue and memory, exact accounting, the loss exported, recovery.
// PODNET_TEST_OUTAGE_S sets the outage (default 16).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runBackendDown } from '../../benchmarks/reliability/backend-down.ts';

const outageMs = Number(process.env['PODNET_TEST_OUTAGE_S'] ?? 16) * 1000;

test(`OTLP backend down then stalled for ${outageMs / 1000} s under 2000 events/s`, async () => {
  const maxQueueSize = 1000;
  const r = await runBackendDown({ outageMs, eventRatePerSec: 2000, protocol: 'grpc', maxQueueSize });
  const { samples, ...summary } = r;
  const info = JSON.stringify(summary);
  assert.ok(r.accounted, `sent + suppressed + lost != emitted: ${info}`);
  assert.ok(r.final.emitted > (2000 * outageMs) / 1000, `load too low: ${info}`);
  assert.ok(r.maxQueue <= maxQueueSize, `queue over capacity: ${info}`);
  assert.ok(r.final.lost_export_failed > 0, 'refused exports counted');
  assert.ok(r.final.lost_queue_full > 0, 'a stalled backend fills the queue; the overflow is counted');
  assert.ok(r.exportFailures.logs > 0 && r.exportFailures.metrics > 0, info);
  assert.ok(r.exportedLost > 0, 'the loss was exported after recovery');
  // What the receiver got is what podnet counted as sent (a refused-then-recorded batch may add a few).
  assert.ok(r.receivedLogs >= r.final.sent, info);
  assert.ok(r.receivedLogs <= r.final.sent + r.final.lost_export_failed, info);
  // Bounded: the queue holds at most 1000 records (≈1 MiB); RSS may not climb through the outage.
  assert.ok(r.rssMiB.maxOutage - r.rssMiB.warm < 96, `RSS grew: ${info}`);
  assert.ok(samples.some((s) => s.phase === 'recovery' && s.sent > 0));
});
