// Backend down under load (short version of benchmarks/reliability/backend-down.ts): `podnet run` as a
// child process, 2000 synthetic events/s over OTLP gRPC, the receiver refusing connections for 8 s then
// stalled for 8 s, then back. Bounded queue and memory, exact accounting, the loss exported, recovery.
// PODNET_TEST_OUTAGE_S sets the outage (default 16).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backendDownFailures, runBackendDown } from '../../benchmarks/reliability/backend-down.ts';

const outageMs = Number(process.env['PODNET_TEST_OUTAGE_S'] ?? 16) * 1000;

test(`OTLP backend down then stalled for ${outageMs / 1000} s under 2000 events/s`, async () => {
  const maxQueueSize = 1000;
  const r = await runBackendDown({ outageMs, eventRatePerSec: 2000, protocol: 'grpc', maxQueueSize });
  const { samples: _samples, ...summary } = r;
  assert.deepEqual(backendDownFailures(r), [], JSON.stringify(summary));
  // Bounded: the queue holds at most 1000 records (≈1 MiB); RSS may not climb through the outage.
  assert.ok(r.rssMiB.maxOutage - r.rssMiB.warm < 96, `RSS grew: ${JSON.stringify(summary)}`);
});
