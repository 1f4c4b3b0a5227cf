// ctnetlink (NETLINK_NETFILTER, subsystem CTNETLINK): conntrack statistics of the socket's netns.
// IPCTNL_MSG_CT_GET_STATS_CPU is a dump with one message per possible CPU (nfgenmsg.res_id = cpu);
// IPCTNL_MSG_CT_GET_STATS answers one message with the netns' entry count and the table limit.
// Netfilter attribute values are big-endian.
import {
  Attrs,
  ipText,
  type NetlinkMessage,
  NetlinkProtocolError,
  NLM_F_DUMP,
  NLM_F_REQUEST,
} from './codec.ts';
import type { NetlinkSocket } from './socket.ts';

export const NFNL_SUBSYS_CTNETLINK = 1;
export const IPCTNL_MSG_CT_GET_STATS_CPU = 4;
export const IPCTNL_MSG_CT_GET_STATS = 5;
const NFGENMSG_LEN = 4; // family u8, version u8, res_id be16

/** CTA_STATS_* attribute number → name (linux/netfilter/nfnetlink_conntrack.h). Unused ones omitted. */
export const CTA_STATS: Readonly<Record<number, string>> = {
  1: 'searched', // no longer sent
  2: 'found',
  3: 'new', // no longer sent
  4: 'invalid',
  5: 'ignore', // no longer sent
  6: 'delete', // no longer sent
  7: 'delete_list', // no longer sent
  8: 'insert',
  9: 'insert_failed',
  10: 'drop',
  11: 'early_drop',
  12: 'error',
  13: 'search_restart',
  14: 'clash_resolve',
  15: 'chain_toolong',
};
const CTA_STATS_MAX = 31; // room for attributes newer kernels add (ignored unless named above)
const CTA_STATS_GLOBAL_ENTRIES = 1;
const CTA_STATS_GLOBAL_MAX_ENTRIES = 2;

export interface ConntrackCpuStats {
  readonly cpu: number;
  /** Stat name → value, only the attributes this kernel sent. */
  readonly values: Readonly<Record<string, number>>;
}

export interface ConntrackStats {
  /** Per-CPU stats summed; only the names this kernel sent (e.g. `found`, `insert_failed`). */
  readonly totals: Readonly<Record<string, number>>;
  readonly perCpu: readonly ConntrackCpuStats[];
}

export interface ConntrackGlobal {
  /** Entries in this netns' table (`conntrack -C`). */
  readonly entries: number;
  /** Table limit (`nf_conntrack_max`); absent on kernels that don't send it. */
  readonly maxEntries?: number;
}

/** AF_UNSPEC, NFNETLINK_V0, res_id 0; only read (copied into the send buffer by the socket). */
const NFGENMSG_ZERO = new Uint8Array(NFGENMSG_LEN);
function nfgenmsg(): Uint8Array {
  return NFGENMSG_ZERO;
}
// Attribute tables of the stats requests, reused: a request's callbacks run synchronously and to the
// end before the next request (receiver/netlink/socket.ts), so one table per reply kind is enough.
let statsCpuAttrs: Attrs | undefined;
let statsGlobalAttrs: Attrs | undefined;

/** Decodes one per-CPU stats message. Exported for codec tests. */
export function decodeStatsCpu(msg: NetlinkMessage, attrs: Attrs): ConntrackCpuStats {
  if (msg.payloadLength < NFGENMSG_LEN) throw new NetlinkProtocolError('truncated nfgenmsg');
  const cpu = msg.view.getUint16(msg.payloadOffset + 2, false);
  attrs.parse(msg.view, msg.payloadOffset + NFGENMSG_LEN, msg.payloadLength - NFGENMSG_LEN);
  const values: Record<string, number> = {};
  for (let t = 1; t <= CTA_STATS_MAX; t++) {
    const name = CTA_STATS[t];
    if (name !== undefined && attrs.has(t)) values[name] = attrs.be32(t);
  }
  return { cpu, values };
}

/** Per-CPU conntrack statistics of the socket's netns, and their sums (`conntrack -S`). */
export function conntrackStats(sock: NetlinkSocket): ConntrackStats {
  const type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS_CPU;
  statsCpuAttrs ??= new Attrs(CTA_STATS_MAX);
  const attrs = statsCpuAttrs;
  const perCpu: ConntrackCpuStats[] = [];
  const totals: Record<string, number> = {};
  sock.request(type, NLM_F_REQUEST | NLM_F_DUMP, nfgenmsg(), (msg) => {
    if (msg.type !== type) return;
    const s = decodeStatsCpu(msg, attrs);
    perCpu.push(s);
    for (const [k, v] of Object.entries(s.values)) totals[k] = (totals[k] ?? 0) + v;
  });
  return { totals, perCpu };
}

/**
 * `conntrackGlobal`, and the per-CPU statistics summed straight into `sums` (index: CTA_STATS_* type, as
 * `conntrack -S` totals; NaN where no CPU message carried the attribute), with no object per CPU: the
 * dump has one message per possible CPU, per netns, every collection. `sums` needs CTA_STATS_MAX + 1
 * entries (`statSumsArray`). One round trip (`NetlinkSocket.requestPair`: one sendto and one recvmmsg
 * instead of two sendto, a recvmmsg and a recv): the global stats first (a single reply), then the dump.
 */
export function conntrackGlobalAndSums(sock: NetlinkSocket, sums: Float64Array): ConntrackGlobal {
  if (sums.length < CTA_STATS_MAX + 1) throw new RangeError(`sums needs ${CTA_STATS_MAX + 1} entries`);
  const globalType = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS;
  const cpuType = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS_CPU;
  statsGlobalAttrs ??= new Attrs(2);
  statsCpuAttrs ??= new Attrs(CTA_STATS_MAX);
  const gAttrs = statsGlobalAttrs;
  const attrs = statsCpuAttrs;
  let out: ConntrackGlobal | undefined;
  sums.fill(Number.NaN);
  sock.requestPair(
    {
      type: globalType,
      flags: NLM_F_REQUEST,
      payload: nfgenmsg(),
      onMessage: (msg) => {
        if (msg.type === globalType) out = decodeStatsGlobal(msg, gAttrs);
      },
    },
    {
      type: cpuType,
      flags: NLM_F_REQUEST | NLM_F_DUMP,
      payload: nfgenmsg(),
      onMessage: (msg) => {
        if (msg.type !== cpuType) return;
        if (msg.payloadLength < NFGENMSG_LEN) throw new NetlinkProtocolError('truncated nfgenmsg');
        attrs.parse(msg.view, msg.payloadOffset + NFGENMSG_LEN, msg.payloadLength - NFGENMSG_LEN);
        for (let t = 1; t <= CTA_STATS_MAX; t++) {
          if (CTA_STATS[t] === undefined || !attrs.has(t)) continue;
          const v = attrs.be32(t);
          sums[t] = Number.isNaN(sums[t]!) ? v : sums[t]! + v;
        }
      },
    },
  );
  if (out === undefined) throw new NetlinkProtocolError('no conntrack global stats in the reply');
  return out;
}

/** An array for `conntrackGlobalAndSums`. */
export function statSumsArray(): Float64Array {
  return new Float64Array(CTA_STATS_MAX + 1);
}

/** Decodes the global stats message. Exported for codec tests. */
export function decodeStatsGlobal(msg: NetlinkMessage, attrs: Attrs): ConntrackGlobal {
  if (msg.payloadLength < NFGENMSG_LEN) throw new NetlinkProtocolError('truncated nfgenmsg');
  attrs.parse(msg.view, msg.payloadOffset + NFGENMSG_LEN, msg.payloadLength - NFGENMSG_LEN);
  const entries = attrs.be32(CTA_STATS_GLOBAL_ENTRIES);
  return attrs.has(CTA_STATS_GLOBAL_MAX_ENTRIES)
    ? { entries, maxEntries: attrs.be32(CTA_STATS_GLOBAL_MAX_ENTRIES) }
    : { entries };
}

/** Entry count of the socket's netns and the table limit (`conntrack -C`, `nf_conntrack_max`). */
export function conntrackGlobal(sock: NetlinkSocket): ConntrackGlobal {
  const type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS;
  statsGlobalAttrs ??= new Attrs(2);
  const attrs = statsGlobalAttrs;
  let out: ConntrackGlobal | undefined;
  sock.request(type, NLM_F_REQUEST, nfgenmsg(), (msg) => {
    if (msg.type !== type) return;
    out = decodeStatsGlobal(msg, attrs);
  });
  if (out === undefined) throw new NetlinkProtocolError('no conntrack global stats in the reply');
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Conntrack entries, as ctnetlink sends them in event notifications (NFNLGRP_CONNTRACK_*) and dumps.

export const IPCTNL_MSG_CT_NEW = 0;
export const IPCTNL_MSG_CT_DELETE = 2;
const NLM_F_CREATE = 0x400;
const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_REPLY = 2;
const CTA_STATUS = 3;
const CTA_PROTOINFO = 4;
const CTA_TIMEOUT = 7;
const CTA_MARK = 8;
const CTA_ID = 12;
const CTA_ZONE = 18;
const CTA_MAX = 31;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_IP_V6_SRC = 3;
const CTA_IP_V6_DST = 4;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;
const CTA_PROTO_ICMP_TYPE = 5;
const CTA_PROTO_ICMP_CODE = 6;
const CTA_PROTO_ICMPV6_TYPE = 8;
const CTA_PROTO_ICMPV6_CODE = 9;
const CTA_PROTOINFO_TCP = 1;
const CTA_PROTOINFO_TCP_STATE = 1;

/** TCP conntrack states (linux/netfilter/nf_conntrack_tcp.h), as `conntrack -L` prints them. */
export const CT_TCP_STATES = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2',
] as const;

export interface ConntrackTuple {
  /** Textual address (IPv4 dotted, IPv6 RFC 5952 as Node prints it). */
  readonly src: string;
  readonly dst: string;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6). */
  readonly proto: number;
  /** Ports for TCP/UDP/SCTP; ICMP type/code in `icmpType`/`icmpCode` instead. */
  readonly sport?: number;
  readonly dport?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
}

export interface ConntrackEntry {
  /** `new` (created), `update` (changed), `destroy` (deleted). */
  readonly event: 'new' | 'update' | 'destroy';
  /** AF_INET (2) or AF_INET6 (10). */
  readonly family: number;
  readonly orig?: ConntrackTuple;
  readonly reply?: ConntrackTuple;
  /** IPS_* status bits. */
  readonly status?: number;
  /** TCP state name (`ESTABLISHED`, ...), for TCP entries. */
  readonly tcpState?: string;
  /** Seconds left before the entry expires. */
  readonly timeout?: number;
  readonly mark?: number;
  readonly id?: number;
  readonly zone?: number;
}

function decodeTuple(v: DataView, off: number, len: number): ConntrackTuple {
  const t = new Attrs(3).parse(v, off, len);
  if (!t.has(CTA_TUPLE_IP) || !t.has(CTA_TUPLE_PROTO))
    throw new NetlinkProtocolError('incomplete conntrack tuple');
  const ip = new Attrs(4).parse(v, t.offset(CTA_TUPLE_IP), t.length(CTA_TUPLE_IP));
  let src: string;
  let dst: string;
  if (ip.has(CTA_IP_V4_SRC) && ip.has(CTA_IP_V4_DST)) {
    src = ipText(v, ip.offset(CTA_IP_V4_SRC), ip.length(CTA_IP_V4_SRC));
    dst = ipText(v, ip.offset(CTA_IP_V4_DST), ip.length(CTA_IP_V4_DST));
  } else if (ip.has(CTA_IP_V6_SRC) && ip.has(CTA_IP_V6_DST)) {
    src = ipText(v, ip.offset(CTA_IP_V6_SRC), ip.length(CTA_IP_V6_SRC));
    dst = ipText(v, ip.offset(CTA_IP_V6_DST), ip.length(CTA_IP_V6_DST));
  } else {
    throw new NetlinkProtocolError('conntrack tuple without addresses');
  }
  const p = new Attrs(9).parse(v, t.offset(CTA_TUPLE_PROTO), t.length(CTA_TUPLE_PROTO));
  if (!p.has(CTA_PROTO_NUM)) throw new NetlinkProtocolError('conntrack tuple without protocol');
  const proto = v.getUint8(p.offset(CTA_PROTO_NUM));
  const u8 = (type: number) => (p.length(type) >= 1 ? v.getUint8(p.offset(type)) : undefined);
  const be16 = (type: number) => (p.length(type) >= 2 ? v.getUint16(p.offset(type), false) : undefined);
  const sport = be16(CTA_PROTO_SRC_PORT);
  const dport = be16(CTA_PROTO_DST_PORT);
  const icmpType = u8(CTA_PROTO_ICMP_TYPE) ?? u8(CTA_PROTO_ICMPV6_TYPE);
  const icmpCode = u8(CTA_PROTO_ICMP_CODE) ?? u8(CTA_PROTO_ICMPV6_CODE);
  return {
    src,
    dst,
    proto,
    ...(sport !== undefined ? { sport } : {}),
    ...(dport !== undefined ? { dport } : {}),
    ...(icmpType !== undefined ? { icmpType } : {}),
    ...(icmpCode !== undefined ? { icmpCode } : {}),
  };
}

/**
 * Decodes a ctnetlink entry message (IPCTNL_MSG_CT_NEW / IPCTNL_MSG_CT_DELETE, as sent to the
 * NFNLGRP_CONNTRACK_* groups). Returns undefined for other message types.
 */
export function decodeConntrackEntry(msg: NetlinkMessage): ConntrackEntry | undefined {
  if (msg.type >> 8 !== NFNL_SUBSYS_CTNETLINK) return undefined;
  const kind = msg.type & 0xff;
  if (kind !== IPCTNL_MSG_CT_NEW && kind !== IPCTNL_MSG_CT_DELETE) return undefined;
  if (msg.payloadLength < NFGENMSG_LEN) throw new NetlinkProtocolError('truncated nfgenmsg');
  const v = msg.view;
  const family = v.getUint8(msg.payloadOffset);
  const a = new Attrs(CTA_MAX).parse(v, msg.payloadOffset + NFGENMSG_LEN, msg.payloadLength - NFGENMSG_LEN);
  const event = kind === IPCTNL_MSG_CT_DELETE ? 'destroy' : msg.flags & NLM_F_CREATE ? 'new' : 'update';
  const out: {
    -readonly [K in keyof ConntrackEntry]: ConntrackEntry[K];
  } = { event, family };
  if (a.has(CTA_TUPLE_ORIG)) out.orig = decodeTuple(v, a.offset(CTA_TUPLE_ORIG), a.length(CTA_TUPLE_ORIG));
  if (a.has(CTA_TUPLE_REPLY))
    out.reply = decodeTuple(v, a.offset(CTA_TUPLE_REPLY), a.length(CTA_TUPLE_REPLY));
  if (a.has(CTA_STATUS)) out.status = a.be32(CTA_STATUS);
  if (a.has(CTA_TIMEOUT)) out.timeout = a.be32(CTA_TIMEOUT);
  if (a.has(CTA_MARK)) out.mark = a.be32(CTA_MARK);
  if (a.has(CTA_ID)) out.id = a.be32(CTA_ID);
  if (a.length(CTA_ZONE) >= 2) out.zone = v.getUint16(a.offset(CTA_ZONE), false);
  if (a.has(CTA_PROTOINFO)) {
    const pi = new Attrs(3).parse(v, a.offset(CTA_PROTOINFO), a.length(CTA_PROTOINFO));
    if (pi.has(CTA_PROTOINFO_TCP)) {
      const tcp = new Attrs(5).parse(v, pi.offset(CTA_PROTOINFO_TCP), pi.length(CTA_PROTOINFO_TCP));
      if (tcp.length(CTA_PROTOINFO_TCP_STATE) >= 1) {
        const s = v.getUint8(tcp.offset(CTA_PROTOINFO_TCP_STATE));
        out.tcpState = CT_TCP_STATES[s] ?? String(s);
      }
    }
  }
  return out;
}
