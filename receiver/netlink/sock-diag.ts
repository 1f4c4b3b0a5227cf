// sock_diag (NETLINK_SOCK_DIAG): dump of TCP/UDP sockets (inet_diag_req_v2 → inet_diag_msg) with
// tcp_info (INET_DIAG_INFO) and socket memory (INET_DIAG_SKMEMINFO), as `ss -tinm` reads them.
import { Attrs, type NetlinkMessage, NetlinkProtocolError, NLM_F_DUMP, NLM_F_REQUEST } from './codec.ts';
import type { NetlinkSocket } from './socket.ts';

export const SOCK_DIAG_BY_FAMILY = 20;
/** Legacy (v1) TCP dump request type; its dump covers IPv4 and IPv6 in one walk (AF_UNSPEC). */
export const TCPDIAG_GETSOCK = 18;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

const REQ_V1_LEN = 60; // family, src_len, dst_len, ext (u8), sockid (48), states u32, dbs u32
const REQ_LEN = 56; // family, protocol, ext, pad (u8 each), states u32, inet_diag_sockid (48)
const MSG_LEN = 72; // family, state, timer, retrans (u8), sockid (48), expires, rqueue, wqueue, uid, inode (u32)

// Extensions (linux/inet_diag.h): requested as bit (1 << (ext - 1)) in `idiag_ext`.
export const INET_DIAG_MEMINFO = 1;
export const INET_DIAG_INFO = 2;
export const INET_DIAG_SKMEMINFO = 7;
const INET_DIAG_MAX = 8;

/**
 * The one TCP state table (include/net/tcp_states.h) of podnet, for sock_diag's `idiag_state` and the
 * `sk_state` eBPF events carry: values are the semconv `network.connection.state` spelling, so the same
 * kernel state is one value on metrics and events. States semconv has no value for take the state the
 * socket is in for TCP: a request socket (TCP_NEW_SYN_RECV) is `syn_received`, a bound inactive socket
 * (TCP_BOUND_INACTIVE, a sock_diag pseudo-state of a bound TCP_CLOSE socket) is `closed`.
 */
export const TCP_STATES = [
  '',
  'established',
  'syn_sent',
  'syn_received',
  'fin_wait_1',
  'fin_wait_2',
  'time_wait',
  'closed',
  'close_wait',
  'last_ack',
  'listen',
  'closing',
  'syn_received', // TCP_NEW_SYN_RECV (request sockets)
  'closed', // TCP_BOUND_INACTIVE
] as const;
export const TCP_LISTEN = 10;
export const TCP_ESTABLISHED = 1;
/**
 * States bitmask for every socket state `ss -a` shows (1..12). Bit 13 (TCP_BOUND_INACTIVE, bound but
 * neither listening nor connected, dumped since 6.7) is left out on purpose: asking for it makes the
 * kernel walk the host-wide bind hash on every dump (~50 µs per netns here), and ss 6.1 does not show
 * those sockets either.
 */
export const ALL_STATES = 0x1ffe;

/** SK_MEMINFO_* (linux/sock_diag.h): index of each u32 in INET_DIAG_SKMEMINFO. */
export const SK_MEMINFO = [
  'rmem_alloc',
  'rcvbuf',
  'wmem_alloc',
  'sndbuf',
  'fwd_alloc',
  'wmem_queued',
  'optmem',
  'backlog',
  'drops',
] as const;
export type SkMemField = (typeof SK_MEMINFO)[number];

/**
 * tcp_info fields read by podnet, with their byte offsets in `struct tcp_info` (stable UAPI; a field is
 * read only when the kernel's struct is long enough to hold it).
 */
export const TCP_INFO_OFFSETS = {
  retransmits: 2, // u8: consecutive retransmits in progress
  rtt: 68, // u32 µs, smoothed RTT
  rttvar: 72, // u32 µs
  total_retrans: 100, // u32: retransmitted segments over the socket's life
  min_rtt: 148, // u32 µs
  bytes_retrans: 208, // u64
} as const;

/** One socket from the dump. Fields from extensions are -1 when the kernel did not send them. */
export interface InetSocket {
  family: number;
  state: number;
  /** Listeners: accept queue length. Others: bytes not yet read (TCP) / rmem (UDP). */
  rqueue: number;
  /** Listeners: backlog limit. Others: bytes not yet acknowledged (TCP) / wmem (UDP). */
  wqueue: number;
  inode: number;
  sport: number;
  dport: number;
  /** tcp_info present (not for time-wait and request sockets). */
  hasInfo: boolean;
  rttUs: number;
  totalRetrans: number;
  bytesRetrans: number;
  /** SK_MEMINFO values (length 9) when present, else empty. */
  readonly skmem: number[];
}

/** Builds an inet_diag_req_v2 for all sockets of `family`/`protocol` in `states` with extensions. */
export function inetDiagRequest(
  family: number,
  protocol: number,
  exts: readonly number[],
  states: number,
): Buffer {
  const b = Buffer.alloc(REQ_LEN);
  b.writeUInt8(family, 0);
  b.writeUInt8(protocol, 1);
  let mask = 0;
  for (const e of exts) mask |= 1 << (e - 1);
  b.writeUInt8(mask, 2);
  b.writeUInt32LE(states >>> 0, 4);
  return b;
}

/**
 * Decodes one SOCK_DIAG_BY_FAMILY message into `out` (reused to avoid allocation per socket).
 * Exported for codec tests.
 */
export function decodeInetDiagMsg(msg: NetlinkMessage, attrs: Attrs, out: InetSocket): InetSocket {
  if (msg.payloadLength < MSG_LEN) throw new NetlinkProtocolError('truncated inet_diag_msg');
  const v = msg.view;
  const p = msg.payloadOffset;
  out.family = v.getUint8(p);
  out.state = v.getUint8(p + 1);
  out.sport = v.getUint16(p + 4, false);
  out.dport = v.getUint16(p + 6, false);
  out.rqueue = v.getUint32(p + 56, true);
  out.wqueue = v.getUint32(p + 60, true);
  out.inode = v.getUint32(p + 68, true);
  attrs.parse(v, p + MSG_LEN, msg.payloadLength - MSG_LEN);
  out.hasInfo = false;
  out.rttUs = -1;
  out.totalRetrans = -1;
  out.bytesRetrans = -1;
  const infoLen = attrs.length(INET_DIAG_INFO);
  if (infoLen > 0) {
    const o = attrs.offset(INET_DIAG_INFO);
    out.hasInfo = true;
    if (infoLen >= TCP_INFO_OFFSETS.rtt + 4) out.rttUs = v.getUint32(o + TCP_INFO_OFFSETS.rtt, true);
    if (infoLen >= TCP_INFO_OFFSETS.total_retrans + 4) {
      out.totalRetrans = v.getUint32(o + TCP_INFO_OFFSETS.total_retrans, true);
    }
    if (infoLen >= TCP_INFO_OFFSETS.bytes_retrans + 8) {
      out.bytesRetrans = Number(v.getBigUint64(o + TCP_INFO_OFFSETS.bytes_retrans, true));
    }
  }
  out.skmem.length = 0;
  const memLen = attrs.length(INET_DIAG_SKMEMINFO);
  if (memLen > 0) {
    if (memLen < SK_MEMINFO.length * 4)
      throw new NetlinkProtocolError(`short INET_DIAG_SKMEMINFO (${memLen})`);
    const o = attrs.offset(INET_DIAG_SKMEMINFO);
    for (let i = 0; i < SK_MEMINFO.length; i++) out.skmem.push(v.getUint32(o + i * 4, true));
  }
  return out;
}

export function emptyInetSocket(): InetSocket {
  return {
    family: 0,
    state: 0,
    rqueue: 0,
    wqueue: 0,
    inode: 0,
    sport: 0,
    dport: 0,
    hasInfo: false,
    rttUs: -1,
    totalRetrans: -1,
    bytesRetrans: -1,
    skmem: [],
  };
}

/**
 * Dumps the sockets of one family/protocol and calls `fn` for each. The `InetSocket` object is reused
 * between calls: copy what you keep. Returns the number of sockets.
 */
export function dumpInetSockets(
  sock: NetlinkSocket,
  family: number,
  protocol: number,
  exts: readonly number[],
  fn: (s: Readonly<InetSocket>) => void,
  states = ALL_STATES,
): number {
  const req = inetDiagRequest(family, protocol, exts, states);
  const attrs = new Attrs(INET_DIAG_MAX);
  const cur = emptyInetSocket();
  let n = 0;
  sock.request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, req, (msg) => {
    if (msg.type !== SOCK_DIAG_BY_FAMILY) return;
    fn(decodeInetDiagMsg(msg, attrs, cur));
    n++;
  });
  return n;
}

/** Builds a legacy inet_diag_req (v1) for TCPDIAG_GETSOCK. */
export function inetDiagRequestV1(exts: readonly number[], states: number): Buffer {
  const b = Buffer.alloc(REQ_V1_LEN);
  let mask = 0;
  for (const e of exts) mask |= 1 << (e - 1);
  b.writeUInt8(mask, 3);
  b.writeUInt32LE(states >>> 0, 52);
  return b;
}

/**
 * Dumps the TCP sockets of both families with one request. The kernel walks the whole established
 * hash table (shared by every netns unless `tcp_child_ehash_entries` is set: 256 K buckets here,
 * ~0.2 ms) for each dump; the v1 request (TCPDIAG_GETSOCK) filters by AF_UNSPEC, so IPv4 and IPv6
 * cost one walk instead of two. Same `fn` contract as `dumpInetSockets`.
 */
export function dumpTcpSocketsAllFamilies(
  sock: NetlinkSocket,
  exts: readonly number[],
  fn: (s: Readonly<InetSocket>) => void,
  states = ALL_STATES,
): number {
  const req = inetDiagRequestV1(exts, states);
  const attrs = new Attrs(INET_DIAG_MAX);
  const cur = emptyInetSocket();
  let n = 0;
  sock.request(TCPDIAG_GETSOCK, NLM_F_REQUEST | NLM_F_DUMP, req, (msg) => {
    if (msg.type !== TCPDIAG_GETSOCK) return;
    fn(decodeInetDiagMsg(msg, attrs, cur));
    n++;
  });
  return n;
}
