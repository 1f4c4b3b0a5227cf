// One AF_PACKET socket inside a network namespace, with a TPACKET_V3 receive ring (the layout libpcap
// and tcpdump use on Linux). Why this and not recvfrom or eBPF: docs/capture.md#design (measured).
//
// Order matters so that no unfiltered packet is ever queued: the socket is created with protocol 0 (it
// receives nothing yet), the compiled filter is attached, the ring is set up and mapped, and only then
// bind(ETH_P_ALL) starts delivery. The socket lives in the netns it was created in (receiver/netns/), so
// the main thread leaves the pod's netns right after socket(2). Everything is owned by the process: on
// SIGKILL the kernel closes the fd and unmaps the ring; nothing is pinned or attached elsewhere.

import koffi from 'koffi';
import { dumpLinkNames } from '../netlink/rtnetlink.ts';
import { NETLINK_ROUTE, withNetlinkSocket } from '../netlink/socket.ts';
import { socketInNetns } from '../netns/setns.ts';
import type { CompiledFilter } from './pcap-filter.ts';

const AF_PACKET = 17;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ATTACH_FILTER = 26;
const SOL_PACKET = 263;
const PACKET_RX_RING = 5;
const PACKET_STATISTICS = 6;
const PACKET_VERSION = 10;
const TPACKET_V3 = 2;
const ETH_P_ALL_BE = 0x0300; // htons(ETH_P_ALL)
const SIOCGIFNAME = 0x8910;
const PROT_RW = 3;
const MAP_SHARED = 1;
const TP_STATUS_USER = 1;
const TP_STATUS_KERNEL = 0;
const MAP_FAILED = 0xffffffffffffffffn;
/** TPACKET_ALIGN(sizeof(struct tpacket3_hdr)): where struct sockaddr_ll starts in a frame. */
const SLL_OFFSET = 48;

interface Libc {
  setsockopt(fd: number, level: number, name: number, val: Buffer, len: number): number;
  getsockopt(fd: number, level: number, name: number, val: Buffer, len: Buffer): number;
  bind(fd: number, addr: Buffer, len: number): number;
  ioctl(fd: number, req: number, arg: Buffer): number;
  mmap(addr: null, len: number, prot: number, flags: number, fd: number, off: number): bigint | null;
  munmap(addr: bigint, len: number): number;
  close(fd: number): number;
}

let libc: Libc | undefined;
function c(): Libc {
  if (libc) return libc;
  const so = koffi.load('libc.so.6');
  libc = {
    setsockopt: so.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)'),
    getsockopt: so.func('int getsockopt(int fd, int level, int name, void *val, void *len)'),
    bind: so.func('int bind(int fd, const void *addr, uint32_t len)'),
    ioctl: so.func('int ioctl(int fd, unsigned long req, void *arg)'),
    mmap: so.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
    munmap: so.func('int munmap(void *addr, size_t len)'),
    close: so.func('int close(int fd)'),
  } as Libc;
  return libc;
}

export class CaptureSocketError extends Error {
  readonly errno: number;
  constructor(what: string, errno: number) {
    const hint =
      errno === 1 ? ' (EPERM: capturing needs CAP_NET_RAW, and CAP_SYS_ADMIN to enter a netns)' : '';
    super(`${what} failed: errno ${errno}${hint}`);
    this.name = 'CaptureSocketError';
    this.errno = errno;
  }
}

/** One packet as the ring holds it; the object is reused for every packet (copy what you keep). */
export interface RingPacket {
  /** The whole ring; the packet's bytes are data[off .. off + capLen). */
  data: Uint8Array;
  off: number;
  capLen: number;
  /** Length on the wire (before the snaplen cut). */
  origLen: number;
  sec: number;
  nsec: number;
  ifindex: number;
  /** PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4 (linux/if_packet.h). */
  pkttype: number;
  hatype: number;
  /** The EtherType in network byte order as the two bytes data[sllOff+2], data[sllOff+3]. */
  protocol: number;
  /** sockaddr_ll of this packet (link-layer source address at +12, its length at +11). */
  sllOff: number;
}

export interface PacketSocketOptions {
  readonly netnsPath: string;
  /** The compiled filter (pcap-filter.ts); its snaplen is the bytes the kernel keeps per packet. */
  readonly filter: CompiledFilter;
  /** Ring size in bytes (default 4 MiB), split in 256 KiB blocks. The only buffer the kernel fills. */
  readonly ringBytes?: number;
  /** A block is handed over at the latest this long after its first packet (default 20 ms). */
  readonly blockTimeoutMs?: number;
}

const BLOCK_SIZE = 256 * 1024;

export class PacketSocket {
  readonly fd: number;
  readonly #ring: bigint;
  readonly #ringLen: number;
  readonly #blocks: number;
  readonly #u8: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #dv: DataView;
  #cur = 0;
  #closed = false;
  readonly #names = new Map<number, string>();
  readonly #netnsPath: string;
  readonly #pkt: RingPacket;
  /** Kernel counters (PACKET_STATISTICS reads and resets them; these are the running sums). */
  kernelPackets = 0;
  kernelDrops = 0;

  constructor(opts: PacketSocketOptions) {
    const l = c();
    const ringBytes = opts.ringBytes ?? 4 * 1024 * 1024;
    this.#blocks = Math.max(2, Math.ceil(ringBytes / BLOCK_SIZE));
    this.#ringLen = this.#blocks * BLOCK_SIZE;
    this.#netnsPath = opts.netnsPath;
    const program = opts.filter.insns;
    this.fd = socketInNetns(opts.netnsPath, AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    let ring: bigint | null = null;
    try {
      const fprog = Buffer.alloc(16);
      fprog.writeUInt16LE(program.length / 8, 0);
      fprog.writeBigUInt64LE(BigInt(koffi.address(program) as unknown as bigint), 8);
      if (l.setsockopt(this.fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, 16) !== 0)
        throw new CaptureSocketError('setsockopt(SO_ATTACH_FILTER)', koffi.errno());
      const ver = Buffer.alloc(4);
      ver.writeInt32LE(TPACKET_V3, 0);
      if (l.setsockopt(this.fd, SOL_PACKET, PACKET_VERSION, ver, 4) !== 0)
        throw new CaptureSocketError('setsockopt(PACKET_VERSION, TPACKET_V3)', koffi.errno());
      const req = Buffer.alloc(28);
      req.writeUInt32LE(BLOCK_SIZE, 0); // tp_block_size
      req.writeUInt32LE(this.#blocks, 4); // tp_block_nr
      req.writeUInt32LE(2048, 8); // tp_frame_size (V3 packs frames; the kernel only checks it)
      req.writeUInt32LE((BLOCK_SIZE / 2048) * this.#blocks, 12); // tp_frame_nr
      req.writeUInt32LE(opts.blockTimeoutMs ?? 20, 16); // tp_retire_blk_tov
      if (l.setsockopt(this.fd, SOL_PACKET, PACKET_RX_RING, req, 28) !== 0)
        throw new CaptureSocketError('setsockopt(PACKET_RX_RING)', koffi.errno());
      ring = l.mmap(null, this.#ringLen, PROT_RW, MAP_SHARED, this.fd, 0);
      if (!ring || ring === MAP_FAILED) throw new CaptureSocketError('mmap(packet ring)', koffi.errno());
      this.#ring = ring;
      const ab = koffi.view(ring, this.#ringLen);
      this.#u8 = new Uint8Array(ab);
      this.#u32 = new Uint32Array(ab);
      this.#dv = new DataView(ab);
      const sll = Buffer.alloc(20);
      sll.writeUInt16LE(AF_PACKET, 0);
      sll.writeUInt16LE(ETH_P_ALL_BE, 2);
      if (l.bind(this.fd, sll, 20) !== 0)
        throw new CaptureSocketError('bind(AF_PACKET, ETH_P_ALL)', koffi.errno());
    } catch (err) {
      if (ring && ring !== MAP_FAILED) l.munmap(ring, this.#ringLen);
      l.close(this.fd);
      throw err;
    }
    this.#pkt = {
      data: this.#u8,
      off: 0,
      capLen: 0,
      origLen: 0,
      sec: 0,
      nsec: 0,
      ifindex: 0,
      pkttype: 0,
      hatype: 0,
      protocol: 0,
      sllOff: 0,
    };
  }

  /**
   * Hands every packet of the blocks the kernel has retired to `onPacket`, at most `maxBlocks` blocks,
   * returning each block to the kernel after it. `onPacket` returns false to stop early (the rest of
   * that block is then skipped: the caller is stopping). Returns the number of packets delivered.
   */
  drain(onPacket: (p: RingPacket) => boolean, maxBlocks = this.#blocks): number {
    if (this.#closed) return 0;
    const u32 = this.#u32;
    const dv = this.#dv;
    const p = this.#pkt;
    let n = 0;
    for (let b = 0; b < maxBlocks; b++) {
      const base = this.#cur * BLOCK_SIZE;
      // struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1 (block_status first)
      if ((Atomics.load(u32, (base + 8) >>> 2) & TP_STATUS_USER) === 0) break;
      const num = u32[(base + 12) >>> 2]!;
      let off = base + u32[(base + 16) >>> 2]!;
      let go = true;
      for (let i = 0; i < num && go; i++) {
        // struct tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac(u16), net(u16)
        p.sec = dv.getUint32(off + 4, true);
        p.nsec = dv.getUint32(off + 8, true);
        p.capLen = dv.getUint32(off + 12, true);
        p.origLen = dv.getUint32(off + 16, true);
        p.off = off + dv.getUint16(off + 24, true);
        const sll = off + SLL_OFFSET;
        p.sllOff = sll;
        p.protocol = dv.getUint16(sll + 2, false);
        p.ifindex = dv.getInt32(sll + 4, true);
        p.hatype = dv.getUint16(sll + 8, true);
        p.pkttype = this.#u8[sll + 10]!;
        n++;
        go = onPacket(p);
        off += dv.getUint32(off, true);
      }
      Atomics.store(u32, (base + 8) >>> 2, TP_STATUS_KERNEL);
      this.#cur = (this.#cur + 1) % this.#blocks;
      if (!go) break;
    }
    return n;
  }

  /** Interface name of an ifindex in the socket's netns (SIOCGIFNAME on this socket), cached. */
  interfaceName(ifindex: number): string {
    let name = this.#names.get(ifindex);
    if (name !== undefined) return name;
    const ifr = Buffer.alloc(40);
    ifr.writeInt32LE(ifindex, 16);
    if (c().ioctl(this.fd, SIOCGIFNAME, ifr) === 0) {
      const end = ifr.indexOf(0);
      name = ifr.toString('latin1', 0, end < 0 || end > 16 ? 16 : end);
    } else name = `if${ifindex}`;
    this.#names.set(ifindex, name);
    return name;
  }

  /**
   * The interfaces of the socket's netns now, by ifindex (an RTM_GETLINK dump in that netns). A capture
   * declares them all up front, so that even a capture with no packet is a file every reader accepts.
   */
  interfaces(): Map<number, string> {
    const names = withNetlinkSocket(this.#netnsPath, NETLINK_ROUTE, (sock) => dumpLinkNames(sock));
    for (const [index, name] of names) this.#names.set(index, name);
    return new Map([...names].sort((a, b) => a[0] - b[0]));
  }

  /** Adds the kernel's counters since the last call (received by the socket, dropped: ring full). */
  updateStats(): void {
    if (this.#closed) return;
    const st = Buffer.alloc(12);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(12, 0);
    if (c().getsockopt(this.fd, SOL_PACKET, PACKET_STATISTICS, st, len) === 0) {
      this.kernelPackets += st.readUInt32LE(0);
      this.kernelDrops += st.readUInt32LE(4);
    }
  }

  get ringBytes(): number {
    return this.#ringLen;
  }

  /** Unmaps the ring and closes the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.updateStats();
    this.#closed = true;
    const l = c();
    l.munmap(this.#ring, this.#ringLen);
    l.close(this.fd);
  }
}
