// The direct export path (receiver/otel/log-export-direct.ts) against a real OTLP receiver: requests of
// max_export_batch_size records, every record sent exactly once; a batch the encoder
// rejects is counted lost exactly once (with what the open request held), and the next batches go on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DirectLogExport } from '../../../receiver/otel/log-export-direct.ts';
import type { TableEntry } from '../../../receiver/otel/log-export-protocol.ts';
import { startOtlpReceiver } from '../../env/otlp-receiver/receiver.ts';

const TABLE: TableEntry[] = ['podnet.test.drop', 'T', { 'podnet.entity.kind': 'host' }, 'podnet.test.seq'];

/** `n` records with podnet.test.seq = from, from + 1, ... (the layout of log-export-protocol.ts). */
function batch(from: number, n: number, badKey = false): Float64Array {
  const d: number[] = [];
  for (let k = 0; k < n; k++) d.push(0, 1, 2, 1_796_000_000, k, 2, -1, 1, badKey ? 99 : 3, from + k);
  return Float64Array.from(d);
}

/** A DirectLogExport to `endpoint` (OTLP/HTTP protobuf), counting the records its requests sent and lost. */
async function directExport(
  endpoint: string,
  o: { timeoutMs: number; maxQueueSize: number; maxExportBatchSize: number },
): Promise<{ exp: DirectLogExport; counts: { sent: number; lost: number } }> {
  const counts = { sent: 0, lost: 0 };
  const exp = await DirectLogExport.create(
    { protocol: 'http/protobuf', endpoint, headers: {}, scheduledDelayMs: 60_000, ...o },
    { resource: { 'service.name': 'podnet' }, scopeName: 'podnet', scopeVersion: '1' },
    {
      onResult: (ok, n) => {
        if (ok) counts.sent += n;
        else counts.lost += n;
      },
      onQueueFull: () => assert.fail('queue full'),
    },
  );
  return { exp, counts };
}

test('direct export: batch-size requests, exact outcomes, a rejected batch counted once', async () => {
  const rx = await startOtlpReceiver();
  const { exp, counts } = await directExport(rx.httpEndpoint, {
    timeoutMs: 10_000,
    maxQueueSize: 10_000,
    maxExportBatchSize: 4,
  });
  try {
    const obs: [number, number] = [1_796_000_001, 0];
    exp.push(batch(0, 3), [], 3, TABLE, obs);
    exp.push(batch(3, 7), [], 7, TABLE, obs); // 10 records: requests of 4, 4, and 2 open
    exp.push(batch(10, 2, true), [], 2, TABLE, obs); // rejected: with the 2 the open request held
    exp.push(batch(12, 5), [], 5, TABLE, obs);
    await exp.forceFlush();
    assert.equal(counts.lost, 4);
    assert.equal(counts.sent, 3 + 7 - 2 + 5);
    assert.equal(rx.logsReceived, counts.sent);
    assert.deepEqual(rx.requests.get('logs http/protobuf'), 4); // 4 + 4, then 4 + 1 of the last batch
    // Two requests may be in flight at once (log-export-direct.ts MAX_IN_FLIGHT): arrival order across
    // requests is the network's; each record once.
    const seqs = rx.logs.map((l) => Number(l.attributes['podnet.test.seq'])).sort((a, b) => a - b);
    assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 16]);
  } finally {
    await exp.shutdown();
    await rx.down();
  }
});

test('direct export: requests written into the buffers of earlier ones (after their success) arrive whole; a stalled backend in between', async () => {
  const rx = await startOtlpReceiver();
  const BATCH = 1500; // ~150 KB per request: large enough for its buffer to be kept (protobuf/logs.ts)
  const { exp, counts } = await directExport(rx.httpEndpoint, {
    timeoutMs: 1500,
    maxQueueSize: 100_000,
    maxExportBatchSize: BATCH,
  });
  const obs: [number, number] = [1_796_000_001, 0];
  let seq = 0;
  /** `requests` requests' worth of records in chunks of 300, yielding to I/O between chunks. */
  const feed = async (requests: number): Promise<void> => {
    for (let k = 0; k < (requests * BATCH) / 300; k++) {
      exp.push(batch(seq, 300), [], 300, TABLE, obs);
      seq += 300;
      await new Promise((r) => setImmediate(r));
    }
  };
  try {
    await feed(8);
    // One push spanning 4 requests (a posted batch larger than max_export_batch_size): the later ones are
    // written before the first is on the wire, so a buffer given back before its export would be torn.
    exp.push(batch(seq, 4 * BATCH), [], 4 * BATCH, TABLE, obs);
    seq += 4 * BATCH;
    await exp.forceFlush();
    assert.equal(counts.sent, 12 * BATCH);
    rx.stall();
    const stalledFrom = seq;
    await feed(2);
    await exp.forceFlush(); // both time out: lost
    rx.unstall();
    assert.equal(counts.lost, 2 * BATCH);
    const stalledTo = seq;
    await feed(6);
    await exp.forceFlush();
    assert.equal(counts.sent, 18 * BATCH);
    assert.deepEqual(rx.decodeErrors, []);
    const got = rx.logs.map((l) => Number(l.attributes['podnet.test.seq'])).sort((a, b) => a - b);
    const want = Array.from({ length: seq }, (_, i) => i).filter((i) => i < stalledFrom || i >= stalledTo);
    assert.deepEqual(got, want);
    // The record fields around the attributes arrived as written (the reused bytes were not torn).
    for (const l of rx.logs) {
      assert.equal(l.eventName, 'podnet.test.drop');
      assert.equal(l.observedTimeUnixNano, 1_796_000_001_000_000_000n);
    }
  } finally {
    await exp.shutdown();
    await rx.down();
  }
});
