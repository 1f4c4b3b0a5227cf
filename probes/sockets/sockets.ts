// sockets: TCP and UDP sockets of each netns through sock_diag (NETLINK_SOCK_DIAG opened inside the
// netns): connections by state, queues, socket memory (SK_MEMINFO), listen-queue fill, and connection
// quality from tcp_info (RTT histogram, retransmits). The values equal what `ss -tuanmi` shows in that
// netns. Every value is a level over the sockets alive at collection time (closed sockets leave the
// sums), so all metrics are gauges; the monotonic per-netns retransmit counter is the snmp probe's
// `podnet.snmp.tcp.retrans_segs` (and the eBPF `podnet.tcp.retransmit.count`).
import { z } from 'zod';
import { createNetlinkProbe } from '../../receiver/kit/netlink.ts';
import { NetlinkError } from '../../receiver/netlink/codec.ts';
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
import { NETLINK_SOCK_DIAG, type NetlinkSocket, withNetlinkSocket } from '../../receiver/netlink/socket.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { HistogramValue, MetricDef, MetricPoint, ProbeSpec } from '../../receiver/probe/types.ts';
import { readNetFiles } from '../../receiver/procfs/read.ts';
import { parseSockstat } from '../sockstat/parse.ts';

/** Default RTT bucket bounds, seconds: 100 µs … 5 s. */
export const DEFAULT_RTT_BOUNDARIES = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
] as const;

const argsSchema = z.object({
  /** A listener whose accept queue is at least this fraction of its backlog counts as at risk. */
  listenFillThreshold: z.number().min(0).max(1).default(0.8),
  /** RTT histogram bucket upper bounds, seconds, ascending. */
  rttBoundaries: z
    .array(z.number().positive())
    .min(1)
    .refine((a) => a.every((v, i) => i === 0 || v > a[i - 1]!), 'must be strictly ascending')
    .default([...DEFAULT_RTT_BOUNDARIES]),
  /** Also dump UDP sockets. */
  udp: z.boolean().default(true),
  /** Receive timeout per netlink read, ms. */
  timeoutMs: z.number().int().positive().default(2000),
  /**
   * Read the netns' socket counts (net/sockstat, sockstat6) first and skip the dumps of what it has
   * none of. A sock_diag dump walks the host-wide hash table (262,144 TCP buckets on a 24 GB host)
   * whatever the netns holds, so in an empty netns the dump is all cost.
   */
  skipEmpty: z.boolean().default(true),
});
export type SocketsArgs = z.infer<typeof argsSchema>;

/** Memory fields exported as `podnet.tcp.socket.memory.<field>` (drops has its own metric). */
const MEM_FIELDS = SK_MEMINFO.filter((f) => f !== 'drops');
const DROPS_INDEX = SK_MEMINFO.indexOf('drops');
const MEM_DESCRIPTIONS: Record<string, string> = {
  rmem_alloc: 'receive memory allocated (sk_rmem_alloc)',
  rcvbuf: 'receive buffer limit (sk_rcvbuf)',
  wmem_alloc: 'transmit memory allocated, in flight to the device (sk_wmem_alloc)',
  sndbuf: 'send buffer limit (sk_sndbuf)',
  fwd_alloc: 'memory reserved ahead of use (sk_forward_alloc)',
  wmem_queued: 'memory of the write queue (sk_wmem_queued)',
  optmem: 'socket option memory (sk_omem_alloc)',
  backlog: 'backlog queue length (sk_backlog.len)',
};

/** Distinct connection-state values, in a stable order; each is emitted every collection (0 if none). */
const STATE_VALUES = [...new Set(TCP_STATES.filter((s) => s !== ''))];
/** Their attribute objects, shared (frozen: the metric store keeps their series key). */
const STATE_ATTRS = new Map<string, Readonly<Record<string, string>>>(
  STATE_VALUES.map((s) => [s, Object.freeze({ 'network.connection.state': s })]),
);

const gauge = (name: string, unit: string, description: string, attributes: string[] = []): MetricDef => ({
  name,
  kind: 'gauge',
  unit,
  description,
  attributes,
  enabled: true,
});

export const M = {
  connections: 'podnet.tcp.connections',
  rxQueue: 'podnet.tcp.socket.receive_queue',
  txQueue: 'podnet.tcp.socket.send_queue',
  drops: 'podnet.tcp.socket.drops',
  listenQueue: 'podnet.tcp.listen.queue.size',
  listenLimit: 'podnet.tcp.listen.queue.limit',
  listenFillMax: 'podnet.tcp.listen.queue.fill_ratio.max',
  listenAtRisk: 'podnet.tcp.listen.queue.at_risk',
  rtt: 'podnet.tcp.rtt',
  retrans: 'podnet.tcp.socket.retransmits',
  retransBytes: 'podnet.tcp.socket.retransmitted_bytes',
  udpCount: 'podnet.udp.sockets',
  udpRx: 'podnet.udp.socket.receive_queue',
  udpTx: 'podnet.udp.socket.send_queue',
  udpDrops: 'podnet.udp.socket.drops',
  mem: (f: string) => `podnet.tcp.socket.memory.${f}`,
} as const;

const metrics: MetricDef[] = [
  gauge(
    M.connections,
    '{connection}',
    'TCP sockets (IPv4 and IPv6) by state, every state including listen and time_wait (ss -tan).',
    ['network.connection.state'],
  ),
  gauge(
    M.rxQueue,
    'By',
    'Bytes received but not read by the application, summed over non-listening TCP sockets (ss Recv-Q).',
  ),
  gauge(
    M.txQueue,
    'By',
    'Bytes sent but not acknowledged, summed over non-listening TCP sockets (ss Send-Q).',
  ),
  ...MEM_FIELDS.map((f) =>
    gauge(
      M.mem(f),
      'By',
      `TCP socket memory: ${MEM_DESCRIPTIONS[f]}, summed over TCP sockets (ss -m skmem).`,
    ),
  ),
  gauge(
    M.drops,
    '{packet}',
    'Packets dropped by TCP sockets (sk_drops), summed over live sockets; not monotonic.',
  ),
  gauge(
    M.listenQueue,
    '{connection}',
    'Connections waiting in accept queues, summed over listening sockets.',
  ),
  gauge(
    M.listenLimit,
    '{connection}',
    'Accept queue limits (listen backlog), summed over listening sockets.',
  ),
  gauge(
    M.listenFillMax,
    '1',
    'Highest accept-queue fill ratio (queue / backlog) over the listening sockets; >= 1 means full (SYNs are dropped).',
  ),
  gauge(
    M.listenAtRisk,
    '{socket}',
    'Listening sockets whose accept queue is at or above the configured fill threshold (overflow risk).',
  ),
  {
    name: M.rtt,
    kind: 'histogram',
    unit: 's',
    description:
      'Smoothed RTT (tcpi_rtt) of live TCP connections, sampled at each collection: every connection with an RTT sample adds one observation per collection (cumulative since the probe started), so rate() of the buckets is the RTT distribution over connection-time.',
    attributes: [],
    enabled: true,
  },
  gauge(
    M.retrans,
    '{segment}',
    'Retransmitted segments (tcpi_total_retrans) summed over live TCP sockets only: closed sockets leave the sum, so it can fall. The netns-wide monotonic counter is podnet.snmp.tcp.retrans_segs.',
  ),
  gauge(M.retransBytes, 'By', 'Retransmitted bytes (tcpi_bytes_retrans) summed over live TCP sockets only.'),
  gauge(M.udpCount, '{socket}', 'UDP sockets (IPv4 and IPv6).'),
  gauge(M.udpRx, 'By', 'Receive memory of UDP sockets (ss Recv-Q), summed.'),
  gauge(M.udpTx, 'By', 'Transmit memory of UDP sockets (ss Send-Q), summed.'),
  gauge(
    M.udpDrops,
    '{packet}',
    'Datagrams dropped by UDP sockets (sk_drops), summed over live sockets; not monotonic.',
  ),
];

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

/** What a netns holds, from its socket counts: which dumps can have anything to report. */
export interface SocketPresence {
  /** TCP sockets hashed (listening, connected, connecting; IPv4 or IPv6) or in TIME_WAIT. */
  readonly tcp: boolean;
  /** Bound UDP sockets, IPv4 / IPv6. */
  readonly udp4: boolean;
  readonly udp6: boolean;
}

export const EVERY_SOCKET: SocketPresence = { tcp: true, udp4: true, udp6: true };

const SOCKSTAT_FILES = [{ name: 'sockstat' }, { name: 'sockstat6', optional: true }] as const;

/**
 * Which socket dumps of the entity's netns can return anything, from `net/sockstat(6)`: `TCP: inuse`
 * and `TCP6: inuse` count the TCP sockets in the hash tables sock_diag walks (listeners, connections,
 * connecting sockets; a SYN_RECV request needs a listener), `TCP: tw` the TIME_WAIT ones, `UDP(6):
 * inuse` the bound UDP sockets — all per netns. Zero means the dump would come back empty.
 */
export function socketPresence(entity: Entity): SocketPresence {
  const [v4, v6] = readNetFiles(entity, SOCKSTAT_FILES);
  const e = parseSockstat(v4!, `${entity.displayName} net/sockstat`);
  if (v6 !== undefined) parseSockstat(v6, `${entity.displayName} net/sockstat6`, e);
  let tcp = 0;
  let udp4 = 0;
  let udp6 = 0;
  for (const { proto, key, value } of e) {
    if (key === 'inuse') {
      if (proto === 'TCP' || proto === 'TCP6') tcp += value;
      else if (proto === 'UDP') udp4 += value;
      else if (proto === 'UDP6') udp6 += value;
    } else if (key === 'tw' && proto === 'TCP') tcp += value;
  }
  return { tcp: tcp !== 0, udp4: udp4 !== 0, udp6: udp6 !== 0 };
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

function toPoints(
  s: SocketSummary,
  netns: number,
  rtt: HistogramValue,
  udp: boolean,
  out: MetricPoint[],
): void {
  for (const [state, value] of s.states) {
    out.push({ metric: M.connections, netns, attributes: STATE_ATTRS.get(state)!, value });
  }
  out.push({ metric: M.rxQueue, netns, value: s.rxQueue });
  out.push({ metric: M.txQueue, netns, value: s.txQueue });
  for (let i = 0; i < SK_MEMINFO.length; i++) {
    const f = SK_MEMINFO[i]!;
    if (f !== 'drops') out.push({ metric: M.mem(f), netns, value: s.mem[i]! });
  }
  out.push({ metric: M.drops, netns, value: s.drops });
  out.push({ metric: M.listenQueue, netns, value: s.listenQueue });
  out.push({ metric: M.listenLimit, netns, value: s.listenLimit });
  out.push({ metric: M.listenFillMax, netns, value: s.listenFillMax });
  out.push({ metric: M.listenAtRisk, netns, value: s.listenAtRisk });
  out.push({ metric: M.rtt, netns, value: rtt });
  out.push({ metric: M.retrans, netns, value: s.retrans });
  out.push({ metric: M.retransBytes, netns, value: s.retransBytes });
  if (udp) {
    out.push({ metric: M.udpCount, netns, value: s.udpCount });
    out.push({ metric: M.udpRx, netns, value: s.udpRx });
    out.push({ metric: M.udpTx, netns, value: s.udpTx });
    out.push({ metric: M.udpDrops, netns, value: s.udpDrops });
  }
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a === b || (a.length === b.length && a.every((v, i) => v === b[i]));
}

export const socketsProbe: ProbeSpec<SocketsArgs> = {
  name: 'sockets',
  description:
    'TCP/UDP sockets per netns via sock_diag: connections by state, queues, socket memory, listen-queue fill, RTT histogram and retransmits (as ss -tuanmi shows them).',
  source: 'netlink',
  defaultEnabled: true,
  metrics,
  events: [],
  args: argsSchema,
  async availability() {
    try {
      withNetlinkSocket('/proc/self/ns/net', NETLINK_SOCK_DIAG, (sock) => {
        dumpInetSockets(sock, AF_INET, IPPROTO_TCP, [], () => {}, 1 << TCP_LISTEN);
      });
      return { available: true };
    } catch (err) {
      return {
        available: false,
        reason: `sock_diag (NETLINK_SOCK_DIAG) unusable: ${(err as Error).message}`,
      };
    }
  },
  async create(ctx, initial) {
    let v1 = true;
    /** Cumulative RTT samples per netns: bucket bounds, counts, sum (µs, exact), count. */
    const rttTotals = new Map<
      number,
      { bounds: readonly number[]; counts: number[]; sumUs: number; count: number }
    >();
    const accumulate = (netns: number, sum: SocketSummary, bounds: readonly number[]): HistogramValue => {
      let acc = rttTotals.get(netns);
      if (!acc || !sameBounds(acc.bounds, bounds)) {
        // First sample of this netns, or new bucket bounds: the cumulative series (re)starts.
        acc = { bounds, counts: new Array<number>(bounds.length + 1).fill(0), sumUs: 0, count: 0 };
        rttTotals.set(netns, acc);
      }
      for (let i = 0; i < acc.counts.length; i++) acc.counts[i]! += sum.rttCounts[i]!;
      acc.sumUs += sum.rttSumUs;
      acc.count += sum.rttCount;
      return { boundaries: bounds, counts: [...acc.counts], sum: acc.sumUs / 1e6, count: acc.count };
    };
    return createNetlinkProbe({
      log: ctx.log,
      protocol: NETLINK_SOCK_DIAG,
      entities: ctx.entities,
      args: initial,
      read: (open, entity, out, a) => {
        const presence = a.skipEmpty ? socketPresence(entity) : EVERY_SOCKET;
        let summary: SocketSummary;
        try {
          summary = summarize(open, { ...a, tcpAllFamiliesRequest: v1 }, presence);
        } catch (err) {
          // A kernel without the legacy request: one v2 dump per family from now on.
          if (!v1 || !(err instanceof NetlinkError) || err.errno === 11) throw err;
          v1 = false;
          ctx.log.info({ errno: err.errno }, 'TCPDIAG_GETSOCK refused; dumping TCP per family');
          summary = summarize(open, { ...a, tcpAllFamiliesRequest: false }, presence);
        }
        toPoints(
          summary,
          entity.netnsInode,
          accumulate(entity.netnsInode, summary, a.rttBoundaries),
          a.udp,
          out,
        );
      },
      afterCollect: (entities) => {
        // Forget the RTT totals of netns that are no longer watched.
        const live = new Set(entities.map((e) => e.netnsInode));
        for (const inode of rttTotals.keys()) if (!live.has(inode)) rttTotals.delete(inode);
      },
      onClose: () => rttTotals.clear(),
    });
  },
};
