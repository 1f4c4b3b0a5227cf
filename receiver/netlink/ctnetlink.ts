// ctnetlink (NETLINK_NETFILTER, subsystem CTNETLINK): conntrack statistics of the socket's netns.
// IPCTNL_MSG_CT_GET_STATS_CPU is a dump with one message per possible CPU (nfgenmsg.res_id = cpu);
// IPCTNL_MSG_CT_GET_STATS answers one message with the netns' entry count and the table limit.
// Netfilter attribute values are big-endian.
import { Attrs, type NetlinkMessage, NetlinkProtocolError, NLM_F_DUMP, NLM_F_REQUEST } from './codec.ts';
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

function nfgenmsg(): Uint8Array {
  return new Uint8Array(NFGENMSG_LEN); // AF_UNSPEC, NFNETLINK_V0, res_id 0
}

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
  const attrs = new Attrs(CTA_STATS_MAX);
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
  const attrs = new Attrs(2);
  let out: ConntrackGlobal | undefined;
  sock.request(type, NLM_F_REQUEST, nfgenmsg(), (msg) => {
    if (msg.type !== type) return;
    out = decodeStatsGlobal(msg, attrs);
  });
  if (out === undefined) throw new NetlinkProtocolError('no conntrack global stats in the reply');
  return out;
}
