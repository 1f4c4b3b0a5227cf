// Pod churn (short version of benchmarks/reliability/churn.ts): 30 real pods created and deleted, 3 alive
// at a time, each sent UDP to a closed port so the eBPF counter maps get entries under its netns, while
// `podnet run` (default probes) watches them over CRI. After the churn, compared with after a warm-up
// round: the same open fds (by kind), the same watched-netns entries, no key in any counter map naming a
// deleted pod's netns, no error logged, RSS flat.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { churnFailures, runChurn } from '../../benchmarks/reliability/churn.ts';

test('30 pods through podnet: no growth in fds, BPF map entries or memory', async () => {
  const r = await runChurn({ pods: 30, live: 3, warmupPods: 6 });
  const info = JSON.stringify({
    ...r,
    warm: { ...r.warm, maps: r.warm.maps.map((m) => `${m.name}=${m.entries}`) },
    end: { ...r.end, maps: r.end.maps.map((m) => `${m.name}=${m.entries}`) },
  });
  assert.equal(r.seenByPodnet, 30, `podnet saw every pod: ${info}`);
  assert.deepEqual(r.podnetErrors, []);
  // fds: BPF objects exactly; everything else within a couple of transient sockets/pipes.
  for (const k of ['anon_inode:bpf-map', 'anon_inode:bpf-prog', 'anon_inode:bpf_link'])
    assert.equal(r.end.fdKinds[k], r.warm.fdKinds[k], `${k}: ${info}`);
  assert.ok(r.end.fds <= r.warm.fds + 2, `fds ${r.warm.fds} → ${r.end.fds}: ${info}`);
  // Maps: the same set; watched-netns entries back to the entity count; no stale netns keys.
  assert.deepEqual(
    r.end.maps.map((m) => m.id),
    r.warm.maps.map((m) => m.id),
  );
  for (const m of r.end.maps.filter((m) => m.name === 'pn_watched'))
    assert.equal(m.entries, r.end.entities, `${m.name}#${m.id}: ${info}`);
  assert.deepEqual(r.staleKeys, {}, `keys of deleted pods left in counter maps: ${info}`);
  // LRU maps (the per-(netns, type) event rate limiter) are bounded by their preallocated size.
  for (const m of r.end.maps.filter((m) => /lru/.test(m.type))) assert.ok(m.entries <= m.maxEntries);
  assert.ok(r.end.rssMiB - r.warm.rssMiB < 40, `RSS ${r.warm.rssMiB} → ${r.end.rssMiB} MiB: ${info}`);
  // the benchmark's exit code checks the same
  assert.deepEqual(churnFailures(r), []);
});
