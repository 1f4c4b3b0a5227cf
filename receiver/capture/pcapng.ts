// A minimal pcapng writer (the IETF pcapng format, as Wireshark and libpcap read it): one
// Section Header Block, an Interface Description Block per interface as it first appears (with its name),
// and an Enhanced Packet Block per packet with its direction in epb_flags. Hand-written because no npm
// package writes pcapng and is maintained (checked: `pcap-parser` only reads classic pcap, `pcap` is a
// libpcap binding for capturing); the format is four block types. Little-endian; every block is whole
// when it is handed out, so a file cut after any block is a valid capture (tshark/tcpdump read it).
import type { RingPacket } from './packet-socket.ts';

/** LINKTYPE_LINUX_SLL: a 16-byte "cooked" header carrying packet type, ARPHRD type, address, EtherType. */
export const LINKTYPE_LINUX_SLL = 113;
const SLL_LEN = 16;
const BT_SHB = 0x0a0d0d0a;
const BT_IDB = 1;
const BT_EPB = 6;
const BT_ISB = 5;
/** EPB fixed part (type, length, interface, ts high/low, cap len, orig len) + trailing length. */
const EPB_OVERHEAD = 28 + 4;
/** epb_flags option (4 + 4) and opt_endofopt (4). */
const EPB_OPTIONS = 12;

const pad4 = (n: number): number => (n + 3) & ~3;

function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  value.copy(b, 4);
  return b;
}

function block(type: number, body: Buffer): Buffer {
  const len = 12 + body.length;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(len, 4);
  body.copy(b, 8);
  b.writeUInt32LE(len, len - 4);
  return b;
}

const END_OF_OPT = Buffer.alloc(4);

/** Section Header Block with shb_userappl (and shb_hardware / shb_os when given). */
export function sectionHeader(app: string, comment?: string): Buffer {
  const fixed = Buffer.alloc(16);
  fixed.writeUInt32LE(0x1a2b3c4d, 0); // byte-order magic
  fixed.writeUInt16LE(1, 4);
  fixed.writeUInt16LE(0, 6);
  fixed.writeBigInt64LE(-1n, 8); // section length unknown (streamed)
  const opts = [option(4, Buffer.from(app))];
  if (comment) opts.push(option(1, Buffer.from(comment)));
  return block(BT_SHB, Buffer.concat([fixed, ...opts, END_OF_OPT]));
}

/** Interface Description Block: link type, snaplen, if_name (microsecond timestamps, the default). */
export function interfaceDescription(name: string, linktype: number, snaplen: number): Buffer {
  const fixed = Buffer.alloc(8);
  fixed.writeUInt16LE(linktype, 0);
  fixed.writeUInt32LE(snaplen, 4);
  return block(BT_IDB, Buffer.concat([fixed, option(2, Buffer.from(name)), END_OF_OPT]));
}

/** Interface Statistics Block: isb_ifrecv / isb_ifdrop as the kernel counted them for the socket. */
export function interfaceStatistics(
  interfaceId: number,
  tsUs: number,
  received: number,
  dropped: number,
): Buffer {
  const fixed = Buffer.alloc(12);
  fixed.writeUInt32LE(interfaceId, 0);
  fixed.writeUInt32LE(Math.floor(tsUs / 0x100000000), 4);
  fixed.writeUInt32LE(tsUs % 0x100000000, 8);
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v), 0);
    return b;
  };
  return block(BT_ISB, Buffer.concat([fixed, option(4, u64(received)), option(5, u64(dropped)), END_OF_OPT]));
}

/** Size of the EPB `encodePacket` writes for a packet of `capLen` bytes. */
export function packetBlockSize(capLen: number): number {
  return EPB_OVERHEAD + pad4(SLL_LEN + capLen) + EPB_OPTIONS;
}

/**
 * epb_flags from the AF_PACKET packet type: bits 0-1 direction (1 inbound, 2 outbound), bits 2-4
 * reception type (1 unicast, 2 multicast, 3 broadcast, 4 promiscuous).
 */
export function directionFlags(pkttype: number): number {
  switch (pkttype) {
    case 0: // PACKET_HOST
      return 1 | (1 << 2);
    case 1: // PACKET_BROADCAST
      return 1 | (3 << 2);
    case 2: // PACKET_MULTICAST
      return 1 | (2 << 2);
    case 3: // PACKET_OTHERHOST
      return 1 | (4 << 2);
    case 4: // PACKET_OUTGOING
      return 2;
    default:
      return 0; // unknown direction
  }
}

/**
 * Writes one EPB (cooked header + the packet's captured bytes) into `out` at `pos`; returns the new
 * position. `out` must have packetBlockSize(p.capLen) bytes free.
 */
export function encodePacket(out: Buffer, pos: number, interfaceId: number, p: RingPacket): number {
  const capLen = SLL_LEN + p.capLen;
  const total = packetBlockSize(p.capLen);
  const tsUs = p.sec * 1e6 + Math.floor(p.nsec / 1000);
  out.writeUInt32LE(BT_EPB, pos);
  out.writeUInt32LE(total, pos + 4);
  out.writeUInt32LE(interfaceId, pos + 8);
  out.writeUInt32LE(Math.floor(tsUs / 0x100000000), pos + 12);
  out.writeUInt32LE(tsUs % 0x100000000, pos + 16);
  out.writeUInt32LE(capLen, pos + 20);
  out.writeUInt32LE(SLL_LEN + p.origLen, pos + 24);
  let q = pos + 28;
  // struct sll_header (big-endian): pkttype, hatype, halen, addr[8], protocol
  const d = p.data;
  const halen = d[p.sllOff + 11]!;
  out.writeUInt16BE(p.pkttype, q);
  out.writeUInt16BE(p.hatype, q + 2);
  out.writeUInt16BE(halen, q + 4);
  out.fill(0, q + 6, q + 14);
  out.set(d.subarray(p.sllOff + 12, p.sllOff + 12 + Math.min(halen, 8)), q + 6);
  out.writeUInt16BE(p.protocol, q + 14);
  q += SLL_LEN;
  out.set(d.subarray(p.off, p.off + p.capLen), q);
  q += p.capLen;
  const padded = pos + 28 + pad4(capLen);
  out.fill(0, q, padded);
  q = padded;
  out.writeUInt16LE(2, q); // epb_flags
  out.writeUInt16LE(4, q + 2);
  out.writeUInt32LE(directionFlags(p.pkttype), q + 4);
  out.writeUInt32LE(0, q + 8); // opt_endofopt
  out.writeUInt32LE(total, q + 12);
  return pos + total;
}

/**
 * Passes on whole pcapng blocks only, from a byte stream cut anywhere (an HTTP body): the output stays a
 * valid file when the stream ends mid-block (the partial block is left out).
 */
export class BlockAligner {
  #held: Buffer = Buffer.alloc(0);
  /** Bytes of a partial block held back (at most one block). */
  get pending(): number {
    return this.#held.length;
  }
  push(chunk: Buffer): Buffer {
    const buf = this.#held.length ? Buffer.concat([this.#held, chunk]) : chunk;
    let pos = 0;
    while (buf.length - pos >= 8) {
      const len = buf.readUInt32LE(pos + 4);
      if (len < 12 || len % 4 !== 0) throw new Error(`not a pcapng stream (block length ${len} at ${pos})`);
      if (buf.length - pos < len) break;
      pos += len;
    }
    this.#held = Buffer.from(buf.subarray(pos));
    return buf.subarray(0, pos);
  }
}
