// sockoverflow against the kernel's own counters: a UDP socket with a tiny receive buffer that never
// reads, flooded → UDP overflow count == packetloss SOCKET_RCVBUFF drops == Udp RcvbufErrors delta, with
// overflow events (tuple, buffer size, memory in use); an ICMP echo socket with a tiny buffer → receive-queue
// overflows (sock_rcvqueue_full) == the socket's drops. (Raw sockets check sk_rcvbuf before this
// tracepoint on 6.18.)
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import koffi from 'koffi';
import { type PacketlossArgs, M as PL, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { M, type SockoverflowArgs, sockoverflowProbe } from '../../probes/sockoverflow/sockoverflow.ts';
import { SELF_METRIC } from '../../receiver/kit/ebpf/runtime.ts';
import { socketInNetns } from '../../receiver/netns/setns.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns, sockaddr } from '../env/netns.ts';
import {
  assertDeclared,
  killChild,
  nstat,
  selfPoint,
  sideEntity,
  sumPoints,
  tcpFixture,
  testContext,
  waitFor,
} from './env.ts';

let pair: NetnsPair;
const probes: Probe<SockoverflowArgs | PacketlossArgs>[] = [];
const children: ChildProcess[] = [];
const fds: number[] = [];
const libc = koffi.load('libc.so.6');
const setsockopt = libc.func(
  'int setsockopt(int fd, int level, int name, const void *val, uint32_t len)',
) as (fd: number, level: number, name: number, val: Uint8Array, len: number) => number;
const sendto = libc.func(
  'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
) as (fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, addrlen: number) => number;
const closeFd = libc.func('int close(int fd)') as (fd: number) => number;

before(() => {
  removeStaleNetns('pna');
  pair = createNetnsPair({ prefix: 'pna', tag: 'so' });
});
after(async () => {
  for (const c of children) killChild(c);
  for (const fd of fds) closeFd(fd);
  for (const p of probes) await p.close();
  pair?.cleanup();
});

test('UDP socket with a tiny receive buffer flooded: overflows == SOCKET_RCVBUFF drops == Udp RcvbufErrors', async () => {
  const { a, b } = pair;
  const ctx = testContext([sideEntity(a), sideEntity(b)]);
  const so = await sockoverflowProbe.create(ctx, sockoverflowProbe.args.parse({ rateLimit: 0 }));
  probes.push(so);
  const pl = await packetlossProbe.create(ctx, packetlossProbe.args.parse({ rateLimit: 1 }));
  probes.push(pl);
  assert.equal(so.status().state, 'running', so.status().reason);
  const sink = await tcpFixture(b, ['udpsink', '7100', '1']);
  children.push(sink.child);
  const rcvbuf = sink.result['rcvbuf'] as number;
  const k0 = nstat(b.name);
  const s0 = await so.collect([]);
  const d0 = await pl.collect([]);
  const n4 = 1500;
  const n6 = 500;
  a.sendUdp(b.ipv4, 7100, n4, 200);
  a.sendUdp(b.ipv6, 7100, n6, 200);
  const k1 = nstat(b.name);
  const kernel =
    (k1.get('UdpRcvbufErrors') ?? 0) -
    (k0.get('UdpRcvbufErrors') ?? 0) +
    (k1.get('Udp6RcvbufErrors') ?? 0) -
    (k0.get('Udp6RcvbufErrors') ?? 0);
  assert.ok(kernel > n4 + n6 - 100, `the receive buffer overflowed (${kernel})`);
  const overflowEvents = () =>
    ctx.events.filter((e) => e.netns === b.inode && e.type === 'UDP_RCVBUF_OVERFLOW');
  const s1 = await so.collect([]);
  const self = (m: string) => selfPoint(s1, m) - selfPoint(s0, m);
  assert.ok(
    await waitFor(() => overflowEvents().length >= kernel),
    `${overflowEvents().length} overflow events for ${kernel} overflows; ring lost ${self(SELF_METRIC.lost)}, suppressed ${self(SELF_METRIC.suppressed)}, read ${self(SELF_METRIC.read)}; status ${JSON.stringify(so.status().details?.['events'])}`,
  );
  const d1 = await pl.collect([]);
  const over = (p: typeof s1) =>
    sumPoints(p, M.udp, b.inode, { 'podnet.udp.overflow.reason': 'receive_buffer' });
  assert.equal(over(s1) - over(s0), kernel);
  const drops = (p: typeof d1) => sumPoints(p, PL.drops, b.inode, { 'error.type': 'SOCKET_RCVBUFF' });
  assert.equal(drops(d1) - drops(d0), kernel);
  const ev = overflowEvents();
  assert.equal(ev.length, kernel);
  const v4 = ev.filter((e) => e.attributes['network.peer.address'] === a.ipv4);
  const v6 = ev.filter((e) => e.attributes['network.peer.address'] === a.ipv6);
  assert.equal(v4.length + v6.length, kernel);
  assert.ok(v4.length > 0 && v6.length > 0);
  for (const e of ev) {
    assert.equal(e.name, 'podnet.udp.overflow');
    assert.equal(e.attributes['network.local.port'], 7100);
    assert.equal(e.attributes['network.transport'], 'udp');
    assert.equal(e.attributes['podnet.socket.receive_buffer.size'], rcvbuf);
    assert.ok(Number(e.attributes['podnet.socket.receive_buffer.used']) > 0);
    assert.ok(Number(e.attributes['podnet.packet.size']) >= 200);
  }
  for (const e of v4) assert.equal(e.attributes['network.local.address'], b.ipv4);
  killChild(sink.child);
  assertDeclared({ events: [...sockoverflowProbe.events, ...packetlossProbe.events] }, ctx.events);
  await so.close();
  await pl.close();
});

test('ping socket with a tiny receive buffer: receive-queue overflows == the socket drops (/proc/net/icmp)', async () => {
  const { a, b } = pair;
  const ctx = testContext([sideEntity(a), sideEntity(b)]);
  const so = await sockoverflowProbe.create(ctx, sockoverflowProbe.args.parse({ rateLimit: 0 }));
  probes.push(so);
  // ICMP echo socket (SOCK_DGRAM, IPPROTO_ICMP) in netns a: echo replies from b queue on it, never read
  a.exec('sysctl', ['-q', '-w', 'net.ipv4.ping_group_range=0 2147483647']);
  const fd = socketInNetns(a.path, 2, 2, 1);
  fds.push(fd);
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  assert.equal(setsockopt(fd, 1, 8 /* SO_RCVBUF */, one, 4), 0);
  const s0 = await so.collect([]);
  const n = 300;
  const sa = sockaddr(b.ipv4, 0);
  const echo = Buffer.alloc(208);
  echo[0] = 8; // ICMP_ECHO; the kernel fills id and checksum
  for (let i = 0; i < n; i++) {
    echo.writeUInt16BE(i, 6);
    assert.ok(sendto(fd, echo, echo.length, 0, sa.bytes, sa.bytes.length) > 0);
  }
  const drops = () => {
    const line = a
      .exec('cat', ['/proc/net/icmp'])
      .split('\n')
      .slice(1)
      .find((l) => l.trim());
    return Number(line?.trim().split(/\s+/).at(-1));
  };
  const evs = () => ctx.events.filter((e) => e.netns === a.inode && e.type === 'SOCKET_RCVQUEUE_FULL');
  assert.ok(await waitFor(() => evs().length >= drops()));
  const kernel = drops();
  assert.ok(kernel > n - 10, `socket drops ${kernel}`);
  const s1 = await so.collect([]);
  const c =
    sumPoints(s1, M.rcvqueue, a.inode, { 'network.transport': 'icmp' }) - sumPoints(s0, M.rcvqueue, a.inode);
  assert.equal(c, kernel);
  assert.equal(evs().length, kernel);
  for (const e of evs()) {
    assert.equal(e.name, 'podnet.socket.overflow');
    assert.equal(e.attributes['network.local.address'], a.ipv4);
    assert.equal(e.attributes['network.peer.address'], b.ipv4);
    assert.equal(e.attributes['network.local.port'], undefined, 'no ports for ICMP');
    assert.ok(Number(e.attributes['podnet.socket.receive_buffer.size']) > 0);
    assert.ok(
      Number(e.attributes['podnet.socket.receive_buffer.used']) >=
        Number(e.attributes['podnet.socket.receive_buffer.size']),
    );
  }
  assertDeclared(sockoverflowProbe, ctx.events);
  await so.close();
});
