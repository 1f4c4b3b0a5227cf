// The qdisc probe keeps each netns' interface names between collections and dumps them again only after a
// link event (probes/qdisc/link-names.ts). Against `ip -j link` and `tc -s -j qdisc` of the same netns:
// names are reused while nothing changes (one dump for several collections), and a rename, a new link, a
// deleted link and a link moved in from another netns each show in the very next collection.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LinkNames } from '../../probes/qdisc/link-names.ts';
import { qdiscProbe } from '../../probes/qdisc/qdisc.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { NETLINK_ROUTE, NetlinkSocket } from '../../receiver/netlink/socket.ts';
import type { Probe, ProbeContext } from '../../receiver/probe/types.ts';
import { sh, TestNetwork } from './env.ts';
import { nsRun, qdiscTruth, qdiscValues, sortedRows } from './truth.ts';

const net = new TestNetwork('n');
let A = '';
let B = '';
let probe: Probe;
const ctx = { log: childLogger('test'), entities: undefined as never, emit() {} } as unknown as ProbeContext;

/** ifindex → name as `ip -j link` shows it in `ns`. */
function ipLinks(ns: string): Map<number, string> {
  const rows = JSON.parse(sh('ip', ['-n', ns, '-j', 'link', 'show'])) as {
    ifindex: number;
    ifname: string;
  }[];
  return new Map(rows.map((r) => [r.ifindex, r.ifname]));
}

/** The probe's rows of `ns` against tc's (counters of these idle links do not move). */
async function assertProbeEqualsTc(ns: string): Promise<void> {
  const e = net.entity(ns);
  const got = qdiscValues(await probe.collect([e]), e.netnsInode);
  assert.deepEqual(sortedRows(got), sortedRows(qdiscTruth(nsRun(ns))));
}

before(async () => {
  A = net.addNetns('a');
  B = net.addNetns('b');
  net.link(A, B, 5, 'pnna', 'pnnb');
  probe = await qdiscProbe.create(ctx, qdiscProbe.args.parse({}));
});

after(async () => {
  await probe?.close();
  net.cleanup();
});

test('link names: dumped once, reused while no link changes, dumped again after a rename', () => {
  const sock = NetlinkSocket.open(`/run/netns/${A}`, NETLINK_ROUTE);
  try {
    const names = new LinkNames();
    assert.deepEqual(names.get(sock), ipLinks(A));
    assert.deepEqual(names.get(sock), ipLinks(A));
    assert.deepEqual(names.get(sock), ipLinks(A));
    assert.deepEqual(names.stats, { dumps: 1, reused: 2, polls: 0, polled: 0 });
    sh('ip', ['-n', A, 'link', 'set', 'pnna', 'down']);
    sh('ip', ['-n', A, 'link', 'set', 'pnna', 'name', 'pnnr']);
    const after = names.get(sock);
    assert.equal(names.stats.dumps, 2, 'the rename was noticed');
    assert.deepEqual(after, ipLinks(A));
    assert.ok([...after.values()].includes('pnnr'));
    sh('ip', ['-n', A, 'link', 'set', 'pnnr', 'name', 'pnna']);
    sh('ip', ['-n', A, 'link', 'set', 'pnna', 'up']);
  } finally {
    sock.close();
  }
});

test('link names by collection: one poll(2) for all sockets, a rename noticed at the next collection', () => {
  const a = NetlinkSocket.open(`/run/netns/${A}`, NETLINK_ROUTE);
  const b = NetlinkSocket.open(`/run/netns/${B}`, NETLINK_ROUTE);
  try {
    const names = new LinkNames();
    const c1 = {};
    assert.deepEqual(names.get(a, c1), ipLinks(A));
    assert.deepEqual(names.get(b, c1), ipLinks(B));
    assert.equal(names.stats.dumps, 2);
    // Link events of the earlier test (carrier changes come late, from the kernel's link watcher) may
    // still arrive: collect until one collection finds both quiet.
    const deadline = Date.now() + 5000;
    for (;;) {
      const dumps: number = names.stats.dumps;
      const c = {};
      names.get(a, c);
      names.get(b, c);
      if (names.stats.dumps === dumps) break;
      assert.ok(Date.now() < deadline, 'link events kept coming for 5 s');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
    const s0 = { ...names.stats };
    const c2 = {};
    assert.deepEqual(names.get(a, c2), ipLinks(A));
    assert.deepEqual(names.get(b, c2), ipLinks(B));
    assert.deepEqual(
      names.stats,
      { dumps: s0.dumps, reused: s0.reused + 2, polls: s0.polls + 1, polled: s0.polled + 2 },
      'one poll, both quiet, no recv',
    );
    sh('ip', ['-n', B, 'link', 'set', 'pnnb', 'down']);
    sh('ip', ['-n', B, 'link', 'set', 'pnnb', 'name', 'pnns']);
    const c3 = {};
    assert.deepEqual(names.get(a, c3), ipLinks(A), 'A unchanged');
    const afterB = names.get(b, c3);
    assert.deepEqual(afterB, ipLinks(B));
    assert.ok([...afterB.values()].includes('pnns'), "B's rename seen in the next collection");
    // (A may be dumped again too: pnnb down takes pnna's carrier, a link event in A)
    assert.ok(names.stats.dumps > s0.dumps, 'B dumped again');
    assert.equal(names.stats.polls, s0.polls + 2);
    // A change after the collection's poll is seen at the next one (a second read in the same collection
    // looks again with a recv, so it sees it too).
    sh('ip', ['-n', B, 'link', 'set', 'pnns', 'name', 'pnnb']);
    assert.deepEqual(names.get(b, c3), ipLinks(B), 'second read in one collection');
    sh('ip', ['-n', B, 'link', 'set', 'pnnb', 'up']);
    assert.deepEqual(names.get(b, {}), ipLinks(B));
  } finally {
    a.close();
    b.close();
  }
});

test('qdisc probe: a rename, a new link, a deleted link and a link moved in show at the next collection', async () => {
  await assertProbeEqualsTc(A);
  await assertProbeEqualsTc(A); // kept names
  sh('ip', ['-n', A, 'link', 'set', 'pnna', 'down']);
  sh('ip', ['-n', A, 'link', 'set', 'pnna', 'name', 'pnnx']);
  sh('ip', ['-n', A, 'link', 'set', 'pnnx', 'up']);
  await assertProbeEqualsTc(A);
  sh('ip', ['-n', A, 'link', 'add', 'pnnd', 'type', 'veth', 'peer', 'name', 'pnne']);
  sh('ip', ['-n', A, 'link', 'set', 'pnnd', 'up']);
  sh('tc', ['-n', A, 'qdisc', 'add', 'dev', 'pnnd', 'root', 'pfifo_fast']);
  await assertProbeEqualsTc(A);
  const e = net.entity(A);
  const rows = qdiscValues(await probe.collect([e]), e.netnsInode);
  assert.ok(
    [...rows.keys()].some((k) => k.startsWith('pnnd|pfifo_fast|')),
    'the new link by name',
  );
  sh('ip', ['-n', A, 'link', 'del', 'pnnd']);
  await assertProbeEqualsTc(A);
  // A veth end created in B and moved to A (RTM_DELLINK in B, RTM_NEWLINK in A), then renamed there.
  sh('ip', ['-n', B, 'link', 'add', 'pnnm', 'type', 'veth', 'peer', 'name', 'pnnp']);
  sh('ip', ['-n', B, 'link', 'set', 'pnnp', 'up']);
  sh('ip', ['-n', B, 'link', 'set', 'pnnm', 'netns', A]);
  sh('ip', ['-n', A, 'link', 'set', 'pnnm', 'up']);
  await assertProbeEqualsTc(A);
  await assertProbeEqualsTc(B);
  sh('ip', ['-n', A, 'link', 'set', 'pnnm', 'down']);
  sh('ip', ['-n', A, 'link', 'set', 'pnnm', 'name', 'pnnn']);
  sh('ip', ['-n', A, 'link', 'set', 'pnnn', 'up']);
  await assertProbeEqualsTc(A);
});
