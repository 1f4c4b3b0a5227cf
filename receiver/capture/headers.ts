// Headers only: where a packet's payload begins, so the default capture keeps the IP and transport headers
// and no application byte (docs/capture.md#privacy). The kernel still cuts at the snaplen; this cut is
// per packet, after the kernel's, because the header lengths vary (IPv4 options, TCP options).
// IPv6 extension headers are not walked: such a packet is cut after its fixed 40-byte header.
import type { RingPacket } from './packet-socket.ts';

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const TCP = 6;
const UDP = 17;
const ICMP = 1;
const ICMPV6 = 58;
const SCTP = 132;

/** Bytes of the transport header after `at`, for the protocols whose header length is known. */
function transportHeader(d: Uint8Array, at: number, end: number, proto: number): number {
  switch (proto) {
    case TCP:
      return at + 12 < end ? (d[at + 12]! >> 4) * 4 : 20;
    case UDP:
    case ICMP:
    case ICMPV6:
      return 8;
    case SCTP:
      return 12;
    default:
      return 0;
  }
}

/** Length of the network + transport headers of a captured packet (its first capLen bytes, from the IP header). */
export function headerLength(p: RingPacket): number {
  const d = p.data;
  const off = p.off;
  const end = off + p.capLen;
  if (p.protocol === ETH_P_IP && p.capLen >= 20) {
    const ihl = (d[off]! & 0x0f) * 4;
    // a non-first fragment carries no transport header: payload starts after the IP header
    const fragOffset = ((d[off + 6]! & 0x1f) << 8) | d[off + 7]!;
    if (fragOffset !== 0) return ihl;
    return ihl + transportHeader(d, off + ihl, end, d[off + 9]!);
  }
  if (p.protocol === ETH_P_IPV6 && p.capLen >= 40) return 40 + transportHeader(d, off + 40, end, d[off + 6]!);
  // ARP and other non-IP frames (no application payload), or an IP header the kernel cut: keep what there is
  return p.capLen;
}
