// Netlink multicast subscriptions in a test netns: link notifications, conntrack NEW/DESTROY events from
// real connections, and a counted overrun when the receive buffer overflows.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import {
  type ConntrackEntry,
  type ConntrackTuple,
  decodeConntrackEntry,
} from '../../receiver/netlink/ctnetlink.ts';
import { RTM_NEWLINK } from '../../receiver/netlink/rtnetlink.ts';
import { NETLINK_NETFILTER, NETLINK_ROUTE } from '../../receiver/netlink/socket.ts';
import {
  NetlinkSubscription,
  NFNLGRP_CONNTRACK_DESTROY,
  NFNLGRP_CONNTRACK_NEW,
  RTNLGRP_LINK,
} from '../../receiver/netlink/subscription.ts';
import { inNs, sh, sleep, TestNetwork } from './env.ts';

const net = new TestNetwork('m');
let A = '';
let B = '';
const subs: NetlinkSubscription[] = [];

before(() => {
  A = net.addNetns('a');
  B = net.addNetns('b');
  net.link(A, B, 5);
  sh('ip', [
    'netns',
    'exec',
    A,
    'nft',
    'add table inet pnl; add chain inet pnl in { type filter hook input priority 0; }; add rule inet pnl in ct state established accept',
  ]);
});
after(() => {
  for (const s of subs) s.close();
  net.cleanup();
});

async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(20);
  }
}

test('subscription: RTM_NEWLINK notifications for links created in the netns', async () => {
  const names: string[] = [];
  const sub = NetlinkSubscription.open(`/run/netns/${B}`, NETLINK_ROUTE, [RTNLGRP_LINK], (m) => {
    if (m.type === RTM_NEWLINK) names.push(String(m.view.getInt32(m.payloadOffset + 4, true)));
  });
  subs.push(sub);
  sh('ip', ['-n', B, 'link', 'add', 'pnlm0', 'type', 'veth', 'peer', 'name', 'pnlm1']);
  await until(() => names.length >= 2);
  const idx = JSON.parse(inNs(B, 'ip', ['-j', 'link', 'show', 'pnlm0']))[0].ifindex as number;
  assert.ok(names.includes(String(idx)), `ifindex ${idx} in ${names}`);
  assert.equal(sub.stats.overruns, 0);
});

test('subscription: conntrack NEW and DESTROY events from real connections decode to conntrack -L tuples', async () => {
  const entries: ConntrackEntry[] = [];
  const sub = NetlinkSubscription.open(
    `/run/netns/${A}`,
    NETLINK_NETFILTER,
    [NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_DESTROY],
    (m) => {
      const e = decodeConntrackEntry(m);
      if (e && e.orig?.dport === 8080) entries.push(e);
    },
  );
  subs.push(sub);
  const server = await net.run(A, ['server', '8080']);
  const c4 = await net.run(B, ['client', '10.200.5.1', '8080', '3', '10']);
  const c6 = await net.run(B, ['client', 'fd00:5::1', '8080', '1', '10']);
  const key = (t: ConntrackTuple | undefined) => `${t?.proto} ${t?.src}:${t?.sport} > ${t?.dst}:${t?.dport}`;
  await until(() => entries.filter((e) => e.event === 'new').length >= 4);
  // conntrack -L prints: tcp 6 <timeout> ESTABLISHED src=.. dst=.. sport=.. dport=.. src=.. (reply) ...
  const listed = inNs(A, 'conntrack', ['-L', '-p', 'tcp', '--dport', '8080'])
    .split('\n')
    .filter((l) => l.startsWith('tcp'))
    .map((l) => {
      const [, src, dst, sport, dport] = /src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(l)!;
      return `6 ${src}:${sport} > ${dst}:${dport}`;
    })
    .sort();
  const created = entries.filter((e) => e.event === 'new');
  assert.deepEqual(created.map((e) => key(e.orig)).sort(), listed);
  assert.equal(listed.length, 4);
  assert.deepEqual(new Set(created.map((e) => e.family)), new Set([2, 10]));
  for (const e of created) {
    assert.equal(e.reply?.sport, 8080); // reply direction: server → client
    assert.equal(e.reply?.dst, e.orig?.src);
  }
  // Flushing the table destroys the entries: one DESTROY event each, same tuples.
  inNs(A, 'conntrack', ['-F']);
  await until(() => entries.filter((e) => e.event === 'destroy').length >= 4);
  assert.deepEqual(
    entries
      .filter((e) => e.event === 'destroy')
      .map((e) => key(e.orig))
      .sort(),
    listed,
  );
  for (const p of [c4, c6, server]) p.kill('SIGKILL');
  assert.equal(sub.stats.overruns, 0);
  assert.equal(sub.stats.malformed, 0);
});

test('subscription: a full receive buffer is counted as an overrun, and reading goes on', async () => {
  let n = 0;
  const sub = NetlinkSubscription.open(`/run/netns/${B}`, NETLINK_ROUTE, [RTNLGRP_LINK], () => n++, {
    rcvbuf: 4096,
  });
  subs.push(sub);
  // The event loop is blocked while ip runs, so notifications pile up past the 4 KiB buffer.
  const batch = `/tmp/${net.prefix}-ovr.batch`;
  writeFileSync(
    batch,
    `${Array.from({ length: 40 }, (_, i) => `link add pnlo${i}a type veth peer name pnlo${i}b`).join('\n')}\n`,
  );
  sh('ip', ['-n', B, '-batch', batch]);
  rmSync(batch);
  await until(() => sub.stats.overruns > 0).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(sub.stats)} n=${n}`);
  });
  sh('ip', ['-n', B, 'link', 'add', 'pnlz0', 'type', 'veth', 'peer', 'name', 'pnlz1']);
  const before = n;
  await until(() => n > before);
  sub.close();
  sub.close();
  assert.equal(sub.socketFd, -1);
});
