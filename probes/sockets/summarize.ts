// sockets: the aggregation of the sock_diag records of one netns into a per-netns summary
// (SocketSummary) and of that summary into metric points. Its own file so the per-socket arithmetic
// (states, queues, skmem, listen fill, RTT buckets) is read and tested apart from the declarations
// (defs.ts) and the probe's lifecycle and cumulative RTT state (sockets.ts).
import {
  AF_INET,
  AF_INET6,
  dumpInetSockets,
  dumpTcpSocketsAllFamilies,
  INET_DIAG_INFO,
  INET_DIAG_SKMEMINFO,
  type InetSocket,
  IPPROTO_TCP,
  IPPROTO_UDP,
  SK_MEMINFO,
  TCP_LISTEN,
  TCP_STATES,
} from '../../receiver/netlink/sock-diag.ts';
import type { NetlinkSocket } from '../../receiver/netlink/socket.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { type MetricSink, SeriesKey } from '../../receiver/probe/sink.ts';
import type { HistogramValue } from '../../receiver/probe/types.ts';
import { readNetFiles } from '../../receiver/procfs/netns-files.ts';
import { forEachSockstat } from '../sockstat/parse.ts';
import { M, type SocketsArgs } from './defs.ts';

const DROPS_INDEX = SK_MEMINFO.indexOf('drops');
/** Metric name per SK_MEMINFO field (`drops` is its own metric), built once instead of per point. */
const MEM_KEYS: readonly (SeriesKey | undefined)[] = SK_MEMINFO.map((f) =>
  f === 'drops' ? undefined : new SeriesKey(M.mem(f)),
);
/** Distinct connection-state values, in a stable order; each is emitted every collection (0 if none). */
const STATE_VALUES = [...new Set(TCP_STATES.filter((s) => s !== ''))];
/** Their series keys (receiver/probe/sink.ts), shared (attribute objects frozen). */
const STATE_KEYS = new Map<string, SeriesKey>(
  STATE_VALUES.map((s) => [
    s,
    new SeriesKey(M.connections, Object.freeze({ 'network.connection.state': s })),
  ]),
);
/** STATE_KEYS in STATE_VALUES order. */
const STATE_KEY_LIST: readonly SeriesKey[] = STATE_VALUES.map((s) => STATE_KEYS.get(s)!);
/** The keys of the attribute-less metrics, by metric name. */
const KEYS = new Map<string, SeriesKey>();
function key(metric: string): SeriesKey {
  let k = KEYS.get(metric);
  if (k === undefined) {
    k = new SeriesKey(metric);
    KEYS.set(metric, k);
  }
  return k;
}
const RX_QUEUE = key(M.rxQueue);
const TX_QUEUE = key(M.txQueue);
const DROPS = key(M.drops);
const LISTEN_QUEUE = key(M.listenQueue);
const LISTEN_LIMIT = key(M.listenLimit);
const LISTEN_FILL_MAX = key(M.listenFillMax);
const LISTEN_AT_RISK = key(M.listenAtRisk);
const RETRANS = key(M.retrans);
const RETRANS_BYTES = key(M.retransBytes);
const UDP_COUNT = key(M.udpCount);
const UDP_RX = key(M.udpRx);
const UDP_TX = key(M.udpTx);
const UDP_DROPS = key(M.udpDrops);
/** Per-netns aggregate of one collection. */
export interface SocketSummary {
  readonly states: Map<string, number>;
  rxQueue: number;
  txQueue: number;
  readonly mem: number[];
  drops: number;
  listeners: number;
  listenQueue: number;
  listenLimit: number;
  listenFillMax: number;
  listenAtRisk: number;
  readonly rttCounts: number[];
  /** Sum of RTTs in µs (integer: exact, independent of order). */
  rttSumUs: number;
  rttCount: number;
  retrans: number;
  retransBytes: number;
  udpCount: number;
  udpRx: number;
  udpTx: number;
  udpDrops: number;
}

function emptySummary(buckets: number): SocketSummary {
  return {
    states: new Map(STATE_VALUES.map((s) => [s, 0])),
    rxQueue: 0,
    txQueue: 0,
    mem: new Array<number>(SK_MEMINFO.length).fill(0),
    drops: 0,
    listeners: 0,
    listenQueue: 0,
    listenLimit: 0,
    listenFillMax: 0,
    listenAtRisk: 0,
    rttCounts: new Array<number>(buckets + 1).fill(0),
    rttSumUs: 0,
    rttCount: 0,
    retrans: 0,
    retransBytes: 0,
    udpCount: 0,
    udpRx: 0,
    udpTx: 0,
    udpDrops: 0,
  };
}

const idle = new Map<number, SocketSummary>();
/** The all-zero summary with `buckets` RTT bounds, shared: callers only read a summary. */
function idleSummary(buckets: number): SocketSummary {
  let s = idle.get(buckets);
  if (s === undefined) {
    s = emptySummary(buckets);
    if (idle.size < 16) idle.set(buckets, s);
  }
  return s;
}

/** What a netns holds, from its socket counts: which dumps can have anything to report. */
export interface SocketPresence {
  /** TCP sockets hashed (listening, connected, connecting; IPv4 or IPv6) or in TIME_WAIT. */
  readonly tcp: boolean;
  /** Bound UDP sockets, IPv4 / IPv6. */
  readonly udp4: boolean;
  readonly udp6: boolean;
}

export const EVERY_SOCKET: SocketPresence = { tcp: true, udp4: true, udp6: true };
/** The 8 presences, by bits tcp 4, udp4 2, udp6 1: shared, not one object per netns. */
const PRESENCE: readonly SocketPresence[] = Array.from({ length: 8 }, (_, m) =>
  Object.freeze({ tcp: (m & 4) !== 0, udp4: (m & 2) !== 0, udp6: (m & 1) !== 0 }),
);

// `shared`: read once per netns per collection with the sockstat probe (receiver/procfs/netns-files.ts).
const SOCKSTAT_FILES = [
  { name: 'sockstat', shared: true, single: true },
  { name: 'sockstat6', optional: true, shared: true, single: true },
] as const;

/**
 * Which socket dumps of the entity's netns can return anything, from `net/sockstat(6)`: `TCP: inuse`
 * and `TCP6: inuse` count the TCP sockets in the hash tables sock_diag walks (listeners, connections,
 * connecting sockets; a SYN_RECV request needs a listener), `TCP: tw` the TIME_WAIT ones, `UDP(6):
 * inuse` the bound UDP sockets — all per netns. Zero means the dump would come back empty.
 */
// Counts of `socketPresence`'s visitor (one parse at a time, synchronously; no closure per netns).
const counts = { tcp: 0, udp4: 0, udp6: 0 };
const countSockets = (proto: string, key: string, value: number): void => {
  if (key === 'inuse') {
    if (proto === 'TCP' || proto === 'TCP6') counts.tcp += value;
    else if (proto === 'UDP') counts.udp4 += value;
    else if (proto === 'UDP6') counts.udp6 += value;
  } else if (key === 'tw' && proto === 'TCP') counts.tcp += value;
};

export function socketPresence(entity: Entity, cycle?: object): SocketPresence {
  const texts = readNetFiles(entity, SOCKSTAT_FILES, cycle); // (indexed: destructuring walks an iterator)
  const v6 = texts[1];
  counts.tcp = 0;
  counts.udp4 = 0;
  counts.udp6 = 0;
  // Both files parsed whole before deciding (a malformed one throws here).
  forEachSockstat(texts[0]!, `${entity.displayName} net/sockstat`, countSockets);
  if (v6 !== undefined) forEachSockstat(v6, `${entity.displayName} net/sockstat6`, countSockets);
  return PRESENCE[(counts.tcp !== 0 ? 4 : 0) | (counts.udp4 !== 0 ? 2 : 0) | (counts.udp6 !== 0 ? 1 : 0)]!;
}

/**
 * Reads and aggregates the sockets of the netns the socket `sock` lives in (`sock` may be a function
 * opening it, called only when a dump is needed). `presence` skips the dumps that would be empty.
 */
export function summarize(
  sock: NetlinkSocket | (() => NetlinkSocket),
  args: Pick<SocketsArgs, 'listenFillThreshold' | 'rttBoundaries' | 'udp'> & {
    /** One TCPDIAG_GETSOCK dump for both families (default) instead of one v2 dump per family. */
    tcpAllFamiliesRequest?: boolean;
  },
  presence: SocketPresence = EVERY_SOCKET,
): SocketSummary {
  const bounds = args.rttBoundaries;
  // Nothing to dump (an idle netns, most of them): one shared all-zero summary, not one per netns.
  if (!presence.tcp && (!args.udp || (!presence.udp4 && !presence.udp6))) return idleSummary(bounds.length);
  const s = emptySummary(bounds.length);
  const open = typeof sock === 'function' ? sock : () => sock;
  const onTcp = (k: Readonly<InetSocket>): void => {
    const state = TCP_STATES[k.state] ?? '';
    if (state !== '') s.states.set(state, (s.states.get(state) ?? 0) + 1);
    if (k.skmem.length > 0) {
      for (let i = 0; i < k.skmem.length; i++) s.mem[i]! += k.skmem[i]!;
      s.drops += k.skmem[DROPS_INDEX]!;
    }
    if (k.state === TCP_LISTEN) {
      s.listeners++;
      s.listenQueue += k.rqueue;
      s.listenLimit += k.wqueue;
      const fill = k.wqueue > 0 ? k.rqueue / k.wqueue : k.rqueue > 0 ? 1 : 0;
      if (fill > s.listenFillMax) s.listenFillMax = fill;
      if (k.rqueue > 0 && fill >= args.listenFillThreshold) s.listenAtRisk++;
      return;
    }
    s.rxQueue += k.rqueue;
    s.txQueue += k.wqueue;
    if (!k.hasInfo) return;
    if (k.totalRetrans > 0) s.retrans += k.totalRetrans;
    if (k.bytesRetrans > 0) s.retransBytes += k.bytesRetrans;
    if (k.rttUs > 0) {
      const v = k.rttUs / 1e6;
      let i = 0;
      while (i < bounds.length && v > bounds[i]!) i++;
      s.rttCounts[i]!++;
      s.rttSumUs += k.rttUs;
      s.rttCount++;
    }
  };
  const exts = [INET_DIAG_INFO, INET_DIAG_SKMEMINFO];
  if (!presence.tcp) {
    // nothing to dump
  } else if (args.tcpAllFamiliesRequest !== false) {
    dumpTcpSocketsAllFamilies(open(), exts, onTcp);
  } else {
    for (const family of [AF_INET, AF_INET6]) dumpInetSockets(open(), family, IPPROTO_TCP, exts, onTcp);
  }
  if (args.udp) {
    for (const family of [AF_INET, AF_INET6]) {
      if (!(family === AF_INET ? presence.udp4 : presence.udp6)) continue;
      dumpInetSockets(open(), family, IPPROTO_UDP, [INET_DIAG_SKMEMINFO], (k) => {
        s.udpCount++;
        s.udpRx += k.rqueue;
        s.udpTx += k.wqueue;
        if (k.skmem.length > 0) s.udpDrops += k.skmem[DROPS_INDEX]!;
      });
    }
  }
  return s;
}

export function toPoints(
  s: SocketSummary,
  netns: number,
  rtt: HistogramValue,
  udp: boolean,
  out: MetricSink,
): void {
  // By the fixed state list (a Map's entries iterator makes a [key, value] array per state).
  for (let i = 0; i < STATE_VALUES.length; i++) {
    const state = STATE_VALUES[i]!;
    out.value(STATE_KEY_LIST[i]!, netns, s.states.get(state) ?? 0);
  }
  out.value(RX_QUEUE, netns, s.rxQueue);
  out.value(TX_QUEUE, netns, s.txQueue);
  for (let i = 0; i < SK_MEMINFO.length; i++) {
    const k = MEM_KEYS[i];
    if (k !== undefined) out.value(k, netns, s.mem[i]!);
  }
  out.value(DROPS, netns, s.drops);
  out.value(LISTEN_QUEUE, netns, s.listenQueue);
  out.value(LISTEN_LIMIT, netns, s.listenLimit);
  out.value(LISTEN_FILL_MAX, netns, s.listenFillMax);
  out.value(LISTEN_AT_RISK, netns, s.listenAtRisk);
  out.point({ metric: M.rtt, netns, value: rtt });
  out.value(RETRANS, netns, s.retrans);
  out.value(RETRANS_BYTES, netns, s.retransBytes);
  if (udp) {
    out.value(UDP_COUNT, netns, s.udpCount);
    out.value(UDP_RX, netns, s.udpRx);
    out.value(UDP_TX, netns, s.udpTx);
    out.value(UDP_DROPS, netns, s.udpDrops);
  }
}
