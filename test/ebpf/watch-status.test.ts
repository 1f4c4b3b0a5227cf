// The eBPF kit reports the per-entity status every kit shares (receiver/kit/status.ts): an entity whose
// netns the kernel refuses in the watched-netns map (here: pn_watched sized to 1 entry, so the second
// add fails with the kernel's E2BIG) is a failed entity until it is removed; the map holds what the
// runtime says it holds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EbpfRuntime, eventArgsSchema } from '../../receiver/kit/ebpf/runtime.ts';
import type { EntityStatusDetails } from '../../receiver/kit/status.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { testContext } from './env.ts';

const entity = (inode: number, name: string): Entity => ({
  kind: 'netns',
  netnsInode: inode,
  netnsPath: '/proc/self/ns/net',
  netnsName: name,
  displayName: name,
});

test('eBPF kit: a netns the watched map refuses is a failed entity in status().details', () => {
  const first = entity(0x7ff0_0001, `pnws${process.pid}a`);
  const second = entity(0x7ff0_0002, `pnws${process.pid}b`);
  const ctx = testContext([first]);
  const rt = EbpfRuntime.open({
    probe: 'tcpretrans',
    object: new URL('../../probes/tcpretrans/tcpretrans.bpf.o', import.meta.url),
    ctx,
    args: eventArgsSchema.parse({}),
    maxEntries: { pn_watched: 1 },
  });
  try {
    const keys = () =>
      rt.coll
        .map('pn_watched')
        .keys()
        .map((k) => k.readUInt32LE(0))
        .sort();
    rt.selfPoints();
    let d = rt.status().details as unknown as EntityStatusDetails;
    assert.equal(d.entities, 1);
    assert.equal(d.failedEntities, 0);
    assert.deepEqual(d.failures, []);
    assert.deepEqual(keys(), [first.netnsInode]);

    ctx.source.add(second);
    rt.selfPoints();
    const st = rt.status();
    d = st.details as unknown as EntityStatusDetails;
    assert.equal(d.entities, 2);
    assert.equal(d.failedEntities, 1);
    assert.equal(d.failures[0]!.entity, second.displayName);
    assert.equal(d.failures[0]!.netns, second.netnsInode);
    assert.match(d.failures[0]!.error, /errno 7\)/, 'E2BIG: the map is full');
    assert.equal(st.state, 'running', 'one of two entities failed: not degraded');
    assert.deepEqual(keys(), [first.netnsInode], 'the kernel map holds only the first netns');

    ctx.source.remove(second.netnsInode);
    rt.selfPoints();
    d = rt.status().details as unknown as EntityStatusDetails;
    assert.equal(d.failedEntities, 0);
    assert.equal(d.collections, 3);
    assert.equal(d.failuresTotal, 1);
  } finally {
    rt.close();
  }
});
