// A procfs probe closed while a collection is running (a config reload, the probe disabled) stops
// reading entities at the loop's next yield: a probe's close may release what the reads use (the process
// probe closes its kept /proc/<pid> fds), and a read after it would open them again with no one left to
// close them (receiver/kit/procfs.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProcfsProbe } from '../../receiver/kit/procfs.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { podEntity } from '../env/pod-entity.ts';

test('a procfs probe closed mid-collection reads no entity after its close', async () => {
  let reads = 0;
  let readsAtClose = -1;
  const probe = createProcfsProbe<Record<string, never>>({
    log: childLogger('test-close-mid-collection'),
    concurrency: 1,
    writeEntity: () => {
      reads++;
    },
  });
  const entities = Array.from({ length: 200 }, (_, i) => podEntity(i));
  const collection = probe.collect(entities);
  // The loop yields after its first 32 entities; close there, as a reload would.
  await new Promise((r) => setImmediate(r));
  readsAtClose = reads;
  await probe.close();
  await collection;
  assert.ok(
    readsAtClose > 0 && readsAtClose < entities.length,
    `closed mid-collection (${readsAtClose} read)`,
  );
  assert.equal(reads, readsAtClose, 'no entity read after close');
});
