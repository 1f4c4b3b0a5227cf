// The shared per-netns loop: partial points of a failing read are discarded, an interrupted dump
// (EINTR) is retried once on the same socket, other errors fail only their entity.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { collectPerNetns } from '../../receiver/kit/netlink.ts';
import { NetlinkError } from '../../receiver/netlink/codec.ts';
import { dumpLinkNames } from '../../receiver/netlink/rtnetlink.ts';
import { NETLINK_ROUTE } from '../../receiver/netlink/socket.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { TestNetwork } from './env.ts';

const net = new TestNetwork('p');
let E: Entity[] = [];
before(() => {
  E = [net.addNetns('a'), net.addNetns('b')].map((n) => net.entity(n));
});
after(() => net.cleanup());

test('per-netns: EINTR is retried once; partial points of failed attempts are dropped', async () => {
  const calls = new Map<number, number>();
  const { points, failures } = await collectPerNetns(E, NETLINK_ROUTE, (sock, e, out) => {
    const n = (calls.get(e.netnsInode) ?? 0) + 1;
    calls.set(e.netnsInode, n);
    out.push({ metric: 'links', netns: e.netnsInode, value: dumpLinkNames(sock).size });
    if (n === 1) throw new NetlinkError('netlink dump interrupted', 4);
  });
  assert.deepEqual(failures, []);
  assert.deepEqual(
    points.map((p) => [p.netns, p.value]),
    E.map((e) => [e.netnsInode, 1]), // lo only, once per netns
  );
  assert.deepEqual([...calls.values()], [2, 2]);
});

test('per-netns: a second EINTR or another error fails only that entity, with no points', async () => {
  const { points, failures } = await collectPerNetns(E, NETLINK_ROUTE, (_sock, e, out) => {
    out.push({ metric: 'x', netns: e.netnsInode, value: 1 });
    if (e === E[0]) throw new NetlinkError('netlink dump interrupted', 4);
  });
  assert.deepEqual(
    points.map((p) => p.netns),
    [E[1]!.netnsInode],
  );
  assert.equal(failures.length, 1);
  assert.equal(failures[0]!.entity, E[0]);
  assert.match(failures[0]!.error.message, /interrupted/);
});
