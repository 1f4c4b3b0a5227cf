// The netlink socket layer against the real kernel: errors with errno, timeouts, multipart dumps over
// several datagrams, fd hygiene, a missing netns, a joined multicast group.
import assert from 'node:assert/strict';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { NetlinkError, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_NOOP } from '../../receiver/netlink/codec.ts';
import { conntrackGlobal } from '../../receiver/netlink/ctnetlink.ts';
import { dumpLinkNames, RTM_GETLINK } from '../../receiver/netlink/rtnetlink.ts';
import { inetDiagRequest, SOCK_DIAG_BY_FAMILY } from '../../receiver/netlink/sock-diag.ts';
import {
  NETLINK_NETFILTER,
  NETLINK_ROUTE,
  NETLINK_SOCK_DIAG,
  NetlinkSocket,
  withNetlinkSocket,
} from '../../receiver/netlink/socket.ts';
import { RTNLGRP_IPV4_IFADDR } from '../../receiver/netlink/subscription.ts';
import { NetnsError } from '../../receiver/netns/setns.ts';
import { inNs, TestNetwork } from './env.ts';

const net = new TestNetwork('k');
let NS = '';
const LINKS = 150;

before(() => {
  NS = net.addNetns('x');
  // No dummy driver on this kernel: veth pairs, both ends in the netns.
  const batch = Array.from({ length: LINKS / 2 }, (_, i) => `link add pnl${i}a type veth peer name pnl${i}b`);
  writeFileSync(`/tmp/${net.prefix}.batch`, `${batch.join('\n')}\n`);
  inNs(NS, 'ip', ['-batch', `/tmp/${net.prefix}.batch`]);
  rmSync(`/tmp/${net.prefix}.batch`);
});
after(() => net.cleanup());

const fdCount = () => readdirSync('/proc/self/fd').length;

test('socket: a multipart dump spanning several datagrams equals ip link', () => {
  withNetlinkSocket(`/run/netns/${NS}`, NETLINK_ROUTE, (sock) => {
    const names = dumpLinkNames(sock);
    const want = (JSON.parse(inNs(NS, 'ip', ['-j', 'link', 'show'])) as { ifindex: number; ifname: string }[])
      .map((l) => [l.ifindex, l.ifname] as const)
      .sort((a, b) => a[0] - b[0]);
    assert.deepEqual(
      [...names].sort((a, b) => a[0] - b[0]),
      want,
    );
    assert.equal(names.size, LINKS + 1);
    assert.ok(sock.stats.datagrams > 2, `datagrams ${sock.stats.datagrams}`);
  });
});

test('socket: a kernel error arrives as NetlinkError with errno, and the socket stays usable', () => {
  withNetlinkSocket(`/run/netns/${NS}`, NETLINK_SOCK_DIAG, (sock) => {
    // sdiag_family 99 >= AF_MAX: the kernel answers NLMSG_ERROR -EINVAL.
    assert.throws(
      () =>
        sock.request(
          SOCK_DIAG_BY_FAMILY,
          NLM_F_REQUEST | NLM_F_DUMP,
          inetDiagRequest(99, 6, [], -1),
          () => {},
        ),
      (e: unknown) => e instanceof NetlinkError && e.errno === 22,
    );
    const n = sock.request(
      SOCK_DIAG_BY_FAMILY,
      NLM_F_REQUEST | NLM_F_DUMP,
      inetDiagRequest(2, 6, [], -1),
      () => {},
    );
    assert.equal(n, 0); // no TCP sockets in a fresh netns
  });
  withNetlinkSocket(`/run/netns/${NS}`, NETLINK_NETFILTER, (sock) => {
    // ctnetlink message type 0x0f does not exist.
    assert.throws(
      () => sock.request((1 << 8) | 0x0f, NLM_F_REQUEST, new Uint8Array(4), () => {}),
      (e: unknown) => e instanceof NetlinkError && e.errno > 0,
    );
    assert.equal(conntrackGlobal(sock).entries, 0);
  });
});

test('socket: no reply → timeout error (EAGAIN) after SO_RCVTIMEO', () => {
  const sock = NetlinkSocket.open(`/run/netns/${NS}`, NETLINK_ROUTE, { timeoutMs: 150 });
  try {
    // A NOOP without NLM_F_ACK is consumed silently by the kernel.
    assert.throws(
      () => sock.request(NLMSG_NOOP, NLM_F_REQUEST, new Uint8Array(0), () => {}),
      (e: unknown) => e instanceof NetlinkError && e.errno === 11,
    );
  } finally {
    sock.close();
  }
});

test('socket: fds are released; close is idempotent; a closed socket refuses requests', () => {
  const before = fdCount();
  for (let i = 0; i < 50; i++) {
    assert.throws(() =>
      withNetlinkSocket(`/run/netns/${NS}`, NETLINK_ROUTE, () => {
        throw new Error('boom');
      }),
    );
  }
  const s = NetlinkSocket.open(`/run/netns/${NS}`, NETLINK_ROUTE);
  s.close();
  s.close();
  assert.equal(s.closed, true);
  assert.throws(() => dumpLinkNames(s), /closed/);
  assert.equal(fdCount(), before);
});

test('socket: a missing netns is a NetnsError', () => {
  assert.throws(() => NetlinkSocket.open('/run/netns/pnl-does-not-exist', NETLINK_ROUTE), NetnsError);
});

test("socket: a joined group's notifications are noticed by drainPending and skipped by a request", () => {
  withNetlinkSocket(`/run/netns/${NS}`, NETLINK_ROUTE, (sock) => {
    sock.join(RTNLGRP_IPV4_IFADDR);
    assert.equal(sock.drainPending(), false, 'nothing queued');
    inNs(NS, 'ip', ['addr', 'add', '10.253.1.1/24', 'dev', 'pnl0a']);
    assert.equal(sock.drainPending(), true, 'the address notification (ip addr add)');
    assert.equal(sock.drainPending(), false, 'drained');
    inNs(NS, 'ip', ['addr', 'del', '10.253.1.1/24', 'dev', 'pnl0a']);
    const skipped = sock.stats.skipped;
    const names = dumpLinkNames(sock);
    assert.ok(names.size > 0);
    assert.equal(sock.stats.skipped, skipped + 1, 'the deletion notification read and skipped by the dump');
    assert.equal(sock.drainPending(), false);
  });
});

test('socket: a request from inside a reply callback throws instead of overwriting the reply it is in', () => {
  const path = `/run/netns/${NS}`;
  const want = new Map(
    (JSON.parse(inNs(NS, 'ip', ['-j', 'link', 'show'])) as { ifindex: number; ifname: string }[]).map((l) => [
      l.ifindex,
      l.ifname,
    ]),
  );
  // RTM_GETLINK dump, ifinfomsg of AF_UNSPEC: every link, over several datagrams (LINKS links)
  const linkDump = (sock: NetlinkSocket, onMessage: () => void) =>
    sock.request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, new Uint8Array(16), onMessage);
  // An outer socket per case: a dump abandoned by a throwing callback stays running in the kernel, and
  // the socket's next dump would get EBUSY (such a socket is closed, as request's doc says).
  const refused = (nested: (outer: NetlinkSocket) => unknown, message: RegExp) =>
    withNetlinkSocket(path, NETLINK_ROUTE, (outer) => {
      assert.throws(() => linkDump(outer, () => nested(outer)), message);
    });
  const inner = NetlinkSocket.open(path, NETLINK_ROUTE);
  const own = NetlinkSocket.open(path, NETLINK_ROUTE, { buffer: Buffer.alloc(64 * 1024) });
  try {
    refused(() => dumpLinkNames(inner), /request made from inside a reply callback \(both using the shared/);
    refused(
      (outer) => dumpLinkNames(outer),
      /request made from inside a reply callback \(on the same socket\)/,
    );
    refused((outer) => outer.drainPending(), /drainPending made from inside a reply callback/);
    // The refusals left no flag set: the shared buffer and a new socket serve whole replies.
    assert.deepEqual(dumpLinkNames(inner), want);
    // A socket with its own buffer receives elsewhere: nesting it is sound, and both replies are whole.
    withNetlinkSocket(path, NETLINK_ROUTE, (outer) => {
      let calls = 0;
      const n = linkDump(outer, () => {
        if (calls++ === 0) assert.deepEqual(dumpLinkNames(own), want);
      });
      assert.equal(n, want.size);
      assert.equal(calls, want.size);
    });
  } finally {
    inner.close();
    own.close();
  }
});
