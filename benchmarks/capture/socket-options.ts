// Why the capture reads a TPACKET_V3 ring (docs/capture.md#design): the same flood into netns b read by
// (a) podnet's PacketSocket (mmapped TPACKET_V3 ring, blocks handed over by the kernel, no syscall per
// packet) and (b) a plain AF_PACKET socket read with one recvfrom(2) per packet through koffi, both with
// the same libpcap-compiled filter, both only counting packets. Reports CPU per packet of the reading
// thread and packets lost (kernel drops + not received). Exits non-zero when a reader saw nothing.
//
//   node benchmarks/capture/socket-options.ts [--quick]
import koffi from 'koffi';
import { PacketSocket } from '../../receiver/capture/packet-socket.ts';
import { compileFilter } from '../../receiver/capture/pcap-filter.ts';
import { socketInNetns } from '../../receiver/netns/setns.ts';
import { createNetnsPair, removeStaleNetns } from '../../test/env/netns.ts';
import { flood, removeFlood } from '../ebpf/flood.ts';
import { finish } from '../lib/finish.ts';

const quick = process.argv.includes('--quick');
const COUNT = quick ? 20_000 : 300_000;
removeStaleNetns('pncs');
const pair = createNetnsPair({ prefix: 'pncs', ipv4Net: '10.253.0' });
const libc = koffi.load('libc.so.6');
const setsockopt = libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)');
const getsockopt = libc.func('int getsockopt(int fd, int level, int name, void *val, void *len)');
const bind = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const recvfrom = libc.func(
  'intptr_t recvfrom(int fd, void *buf, size_t len, int flags, void *addr, void *alen)',
);
const close = libc.func('int close(int fd)');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  packets: number;
  drops: number;
  cpuUs: number;
  sentPps: number;
}

async function ring(): Promise<Outcome> {
  const s = new PacketSocket({ netnsPath: pair.b.path, filter: compileFilter('udp port 7777', 128) });
  let packets = 0;
  const count = () => {
    packets++;
    return true;
  };
  const poll = koffi.node.poll(s.fd, { readable: true }, () => s.drain(count, 8));
  const c0 = process.cpuUsage();
  const f = await flood(pair.a.name, pair.b.ipv4, 7777, COUNT, { size: 64 });
  await sleep(200);
  s.drain(count);
  const c = process.cpuUsage(c0);
  poll.stop();
  poll.close();
  s.close();
  return { packets, drops: s.kernelDrops, cpuUs: c.user + c.system, sentPps: f.sent / f.seconds };
}

async function perPacket(): Promise<Outcome> {
  const prog = compileFilter('udp port 7777', 128).insns;
  const fd = socketInNetns(pair.b.path, 17, 2 | 0o4000, 0); // AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(prog.length / 8, 0);
  fprog.writeBigUInt64LE(BigInt(koffi.address(prog) as unknown as bigint), 8);
  setsockopt(fd, 1, 26, fprog, 16);
  const rcvbuf = Buffer.alloc(4);
  rcvbuf.writeInt32LE(4 * 1024 * 1024, 0); // same memory as the ring
  setsockopt(fd, 1, 8, rcvbuf, 4); // SO_RCVBUF
  const sll = Buffer.alloc(20);
  sll.writeUInt16LE(17, 0);
  sll.writeUInt16LE(0x0300, 2);
  bind(fd, sll, 20);
  const buf = Buffer.alloc(2048);
  const addr = Buffer.alloc(20);
  const alen = Buffer.alloc(4);
  let packets = 0;
  const drain = () => {
    for (let i = 0; i < 4096; i++) {
      alen.writeUInt32LE(20, 0);
      if ((recvfrom(fd, buf, 2048, 0x20, addr, alen) as number) < 0) break; // MSG_TRUNC
      packets++;
    }
  };
  const poll = koffi.node.poll(fd, { readable: true }, drain);
  const c0 = process.cpuUsage();
  const f = await flood(pair.a.name, pair.b.ipv4, 7777, COUNT, { size: 64 });
  await sleep(200);
  drain();
  const c = process.cpuUsage(c0);
  poll.stop();
  poll.close();
  const st = Buffer.alloc(8);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(8, 0);
  getsockopt(fd, 263, 6, st, len); // PACKET_STATISTICS (tpacket_stats)
  close(fd);
  return { packets, drops: st.readUInt32LE(4), cpuUs: c.user + c.system, sentPps: f.sent / f.seconds };
}

const failures: string[] = [];
const out: string[] = [];
try {
  out.push(`## capture socket options (${COUNT} datagrams of 64 B, unpaced sendmmsg flood)`);
  for (const [name, run] of [
    ['TPACKET_V3 ring (podnet)', ring],
    ['recvfrom per packet', perPacket],
    ['TPACKET_V3 ring (podnet), again', ring],
    ['recvfrom per packet, again', perPacket],
  ] as const) {
    const o = await run();
    if (o.packets === 0) failures.push(`${name}: no packet read`);
    out.push(
      `${name}: ${o.packets}/${COUNT} packets read, ${o.drops} kernel drops, ${COUNT - o.packets} lost; ${(o.cpuUs / Math.max(1, o.packets)).toFixed(2)} µs CPU per packet read (sender ${Math.round(o.sentPps)} pps)`,
    );
  }
} finally {
  pair.cleanup();
  removeFlood();
}
finish(out.join('\n'), failures);
