// rtnetlink (NETLINK_ROUTE): link names (RTM_GETLINK dump), interface addresses (RTM_GETADDR dump) and
// qdisc statistics (RTM_GETQDISC dump).
import {
  Attrs,
  ipText,
  type NetlinkMessage,
  NetlinkProtocolError,
  NLM_F_DUMP,
  NLM_F_REQUEST,
} from './codec.ts';
import type { NetlinkSocket } from './socket.ts';

export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;
export const RTM_NEWQDISC = 36;
export const RTM_GETQDISC = 38;

const IFINFOMSG_LEN = 16; // family u8, pad u8, type u16, index i32, flags u32, change u32
const TCMSG_LEN = 20; // family u8, pad u8, pad u16, ifindex i32, handle u32, parent u32, info u32
const IFLA_IFNAME = 3;
const IFLA_MAX = 3;
const IFLA_EXT_MASK = 29;
/** Leave out IFLA_STATS/STATS64 and the per-device IPv6 MIBs: most of a link dump's kernel work. */
const RTEXT_FILTER_SKIP_STATS = 1 << 3;

/** ifinfomsg (AF_UNSPEC: all links) + IFLA_EXT_MASK = SKIP_STATS (a bit older kernels ignore). */
const LINK_NAMES_REQUEST = (() => {
  const b = new Uint8Array(IFINFOMSG_LEN + 8);
  const v = new DataView(b.buffer);
  v.setUint16(IFINFOMSG_LEN, 8, true);
  v.setUint16(IFINFOMSG_LEN + 2, IFLA_EXT_MASK, true);
  v.setUint32(IFINFOMSG_LEN + 4, RTEXT_FILTER_SKIP_STATS, true);
  return b;
})();

// Traffic control attributes (linux/rtnetlink.h, linux/gen_stats.h).
const TCA_KIND = 1;
const TCA_STATS = 3;
const TCA_STATS2 = 7;
const TCA_MAX = 7;
const TCA_STATS_BASIC = 1;
const TCA_STATS_QUEUE = 3;
const TCA_STATS_PKT64 = 8;
const TCA_STATS_MAX = 8;

export const TC_H_ROOT = 0xffffffff;

/** Statistics of one qdisc, as `tc -s qdisc` prints them. */
export interface QdiscStats {
  readonly ifindex: number;
  readonly kind: string;
  /** `major:minor`, 32 bits. */
  readonly handle: number;
  readonly parent: number;
  readonly bytes: number;
  readonly packets: number;
  readonly drops: number;
  readonly overlimits: number;
  readonly requeues: number;
  readonly qlen: number;
  readonly backlog: number;
}

/** Handle or parent as `tc` prints it: `root` (parent only), `8001:`, `1:10`, `ffff:fff1` (ingress). */
export function formatTcHandle(h: number, isParent = false): string {
  if (isParent && h === TC_H_ROOT) return 'root';
  const major = (h >>> 16).toString(16);
  const minor = h & 0xffff;
  return minor === 0 ? `${major}:` : `${major}:${minor.toString(16)}`;
}

/** tcmsg AF_UNSPEC, ifindex 0: all interfaces (only read: copied into the socket's send buffer). */
const QDISC_REQUEST = new Uint8Array(TCMSG_LEN);
// Attribute tables reused across requests: a request's callbacks run synchronously and to the end
// before the next request (./socket.ts), so one table per use is enough.
let qdiscAttrs: Attrs | undefined;
let qdiscStatsAttrs: Attrs | undefined;
let linkAttrs: Attrs | undefined;

/**
 * One RTM_GETLINK dump (stats left out): `fn(ifindex, attrs)` per link, with its attributes parsed into
 * `attrs` (valid during the call only; its size sets the highest attribute type kept).
 */
export function forEachLink(
  sock: NetlinkSocket,
  attrs: Attrs,
  fn: (ifindex: number, attrs: Attrs) => void,
): void {
  sock.request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, LINK_NAMES_REQUEST, (msg) => {
    if (msg.type !== RTM_NEWLINK) return;
    if (msg.payloadLength < IFINFOMSG_LEN) throw new NetlinkProtocolError('truncated ifinfomsg');
    const index = msg.view.getInt32(msg.payloadOffset + 4, true);
    attrs.parse(msg.view, msg.payloadOffset + IFINFOMSG_LEN, msg.payloadLength - IFINFOMSG_LEN);
    fn(index, attrs);
  });
}

/** Interface index → name in the socket's netns. */
export function dumpLinkNames(sock: NetlinkSocket): Map<number, string> {
  const names = new Map<number, string>();
  linkAttrs ??= new Attrs(IFLA_MAX);
  forEachLink(sock, linkAttrs, (index, attrs) => {
    if (attrs.has(IFLA_IFNAME)) names.set(index, attrs.str(IFLA_IFNAME));
  });
  return names;
}

const IFADDRMSG_LEN = 8; // family u8, prefixlen u8, flags u8, scope u8, index u32
const AF_INET = 2;
const AF_INET6 = 10;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_MAX = 2;
/** ifaddrmsg AF_UNSPEC: the addresses of every family (only read: copied into the send buffer). */
const ADDR_REQUEST = new Uint8Array(IFADDRMSG_LEN);
let addrAttrs: Attrs | undefined;

/**
 * Every interface address in the socket's netns (v4 and v6, one RTM_GETADDR dump), as `ip addr` lists
 * them: the local address (IFA_LOCAL, else IFA_ADDRESS: they differ only on point-to-point links, where
 * IFA_ADDRESS is the peer's), without a zone. `fn(address)` per address, in the kernel's order.
 */
export function forEachAddress(sock: NetlinkSocket, fn: (address: string) => void): void {
  sock.request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, ADDR_REQUEST, (msg) => {
    if (msg.type !== RTM_NEWADDR) return;
    if (msg.payloadLength < IFADDRMSG_LEN) throw new NetlinkProtocolError('truncated ifaddrmsg');
    const family = msg.view.getUint8(msg.payloadOffset);
    if (family !== AF_INET && family !== AF_INET6) return;
    addrAttrs ??= new Attrs(IFA_MAX);
    const a = addrAttrs;
    a.parse(msg.view, msg.payloadOffset + IFADDRMSG_LEN, msg.payloadLength - IFADDRMSG_LEN);
    const t = a.has(IFA_LOCAL) ? IFA_LOCAL : IFA_ADDRESS;
    if (!a.has(t)) return;
    fn(ipText(a.view, a.offset(t), a.length(t)));
  });
}

/** Decodes one RTM_NEWQDISC message. Exported for codec tests. */
export function decodeQdisc(msg: NetlinkMessage, attrs: Attrs, stats: Attrs): QdiscStats {
  if (msg.payloadLength < TCMSG_LEN) throw new NetlinkProtocolError('truncated tcmsg');
  const v = msg.view;
  const p = msg.payloadOffset;
  const ifindex = v.getInt32(p + 4, true);
  const handle = v.getUint32(p + 8, true);
  const parent = v.getUint32(p + 12, true);
  attrs.parse(v, p + TCMSG_LEN, msg.payloadLength - TCMSG_LEN);
  const kind = attrs.has(TCA_KIND) ? attrs.strShared(TCA_KIND) : '';
  let bytes = 0;
  let packets = 0;
  let drops = 0;
  let overlimits = 0;
  let requeues = 0;
  let qlen = 0;
  let backlog = 0;
  if (attrs.has(TCA_STATS2)) {
    stats.parse(v, attrs.offset(TCA_STATS2), attrs.length(TCA_STATS2));
    if (stats.has(TCA_STATS_BASIC)) {
      // struct gnet_stats_basic { u64 bytes; u32 packets; } (16 bytes with padding; 12 used)
      if (stats.length(TCA_STATS_BASIC) < 12) throw new NetlinkProtocolError('short TCA_STATS_BASIC');
      const o = stats.offset(TCA_STATS_BASIC);
      bytes = Number(v.getBigUint64(o, true));
      packets = v.getUint32(o + 8, true);
    }
    // The kernel adds the 64-bit packet count when it differs from the truncated 32-bit one.
    if (stats.has(TCA_STATS_PKT64)) packets = stats.u64(TCA_STATS_PKT64);
    if (stats.has(TCA_STATS_QUEUE)) {
      // struct gnet_stats_queue { u32 qlen, backlog, drops, requeues, overlimits; }
      if (stats.length(TCA_STATS_QUEUE) < 20) throw new NetlinkProtocolError('short TCA_STATS_QUEUE');
      const o = stats.offset(TCA_STATS_QUEUE);
      qlen = v.getUint32(o, true);
      backlog = v.getUint32(o + 4, true);
      drops = v.getUint32(o + 8, true);
      requeues = v.getUint32(o + 12, true);
      overlimits = v.getUint32(o + 16, true);
    }
  } else if (attrs.has(TCA_STATS)) {
    // Legacy struct tc_stats { u64 bytes; u32 packets, drops, overlimits, bps, pps, qlen, backlog; }
    if (attrs.length(TCA_STATS) < 36) throw new NetlinkProtocolError('short TCA_STATS');
    const o = attrs.offset(TCA_STATS);
    bytes = Number(v.getBigUint64(o, true));
    packets = v.getUint32(o + 8, true);
    drops = v.getUint32(o + 12, true);
    overlimits = v.getUint32(o + 16, true);
    qlen = v.getUint32(o + 28, true);
    backlog = v.getUint32(o + 32, true);
  }
  return { ifindex, kind, handle, parent, bytes, packets, drops, overlimits, requeues, qlen, backlog };
}

/** Every qdisc in the socket's netns (root, children, ingress/clsact), with statistics. */
export function dumpQdiscs(sock: NetlinkSocket): QdiscStats[] {
  const out: QdiscStats[] = [];
  sock.request(RTM_GETQDISC, NLM_F_REQUEST | NLM_F_DUMP, QDISC_REQUEST, (msg) => {
    if (msg.type !== RTM_NEWQDISC) return;
    qdiscAttrs ??= new Attrs(TCA_MAX);
    qdiscStatsAttrs ??= new Attrs(TCA_STATS_MAX);
    out.push(decodeQdisc(msg, qdiscAttrs, qdiscStatsAttrs));
  });
  return out;
}
