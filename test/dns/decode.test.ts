// dns decoding and the conntrack correlation, without a kernel: wire-format names as dig prints them,
// response codes, and which timeouts the correlator blames on the conntrack race.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { qtypeName, rcodeName, wireName } from '../../probes/dns/decode.ts';
import { ConntrackCorrelator, type CtCounters } from '../../probes/dns/diagnosis.ts';
import type { Entity } from '../../receiver/pods/entity.ts';

const wire = (labels: (string | number[])[]): Uint8Array => {
  const out: number[] = [];
  for (const l of labels) {
    const b = typeof l === 'string' ? [...Buffer.from(l)] : l;
    out.push(b.length, ...b);
  }
  out.push(0);
  return Uint8Array.from(out);
};

test('wire names: labels, root, escapes, a name cut at the kernel limit', () => {
  const n = wire(['kubernetes', 'default', 'svc', 'cluster', 'local']);
  assert.deepEqual(wireName(n, n.length), { name: 'kubernetes.default.svc.cluster.local', complete: true });
  assert.deepEqual(wireName(Uint8Array.of(0), 1), { name: '.', complete: true });
  const odd = wire([
    [0x61, 0x2e, 0x62],
    [0x00, 0x7f, 0x5c],
  ]);
  assert.equal(wireName(odd, odd.length).name, 'a\\.b.\\000\\127\\\\');
  assert.deepEqual(wireName(n, 12), { name: 'kubernetes', complete: false }); // cut mid-way
});

test('response codes and question types', () => {
  assert.deepEqual([0, 2, 3, 5].map(rcodeName), ['NOERROR', 'SERVFAIL', 'NXDOMAIN', 'REFUSED']);
  assert.equal(rcodeName(14), 'RCODE14');
  assert.deepEqual([1, 28, 33, 0, 99].map(qtypeName), ['A', 'AAAA', 'SRV', 'other', 'other']);
});

test('correlator: blames a timeout only when the counters moved after the query was sent', () => {
  let c: CtCounters = { insertFailed: 10, clashResolve: 0 };
  const netns: Entity = { kind: 'netns', netnsInode: 5, netnsPath: '/x', displayName: 'x' };
  const pod: Entity = { ...netns, kind: 'pod', netnsInode: 6 };
  const k = new ConntrackCorrelator({ read: () => c, keepNs: 10_000n });
  k.sample([netns], 1000n);
  // a move before the query's first transmission is not the query's
  c = { insertFailed: 11, clashResolve: 0 };
  k.sample([netns], 2000n);
  assert.deepEqual(k.diagnose(netns, 2500n), {}); // no sample after the query yet: no verdict
  k.sample([netns], 3000n);
  assert.deepEqual(k.diagnose(netns, 2500n), { insertFailed: 0, clashResolve: 0 });
  // a clash resolved after the query was sent
  c = { insertFailed: 11, clashResolve: 1 };
  k.sample([netns], 4000n);
  assert.deepEqual(k.diagnose(netns, 3500n), {
    cause: 'conntrack_insert_race',
    insertFailed: 0,
    clashResolve: 1,
  });
  // a plain netns seen for the first time has no baseline; a pod netns starts from zero
  const k2 = new ConntrackCorrelator({ read: () => ({ insertFailed: 3, clashResolve: 0 }), keepNs: 10_000n });
  k2.sample([netns, pod], 5000n);
  assert.deepEqual(k2.diagnose(netns, 4000n), {});
  assert.equal(k2.diagnose(pod, 4000n).cause, 'conntrack_insert_race');
  // samples older than the horizon go, but the newest older one stays as a baseline
  k.sample([netns], 20_000n);
  assert.deepEqual(k.diagnose(netns, 15_000n), { insertFailed: 0, clashResolve: 0 });
});
