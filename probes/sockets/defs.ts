// sockets: the declarations of the probe — its arguments (zod schema) and the metrics it exports (names in
// `M`, definitions in `metrics`). Its own file so the signal catalogue reads apart from the sock_diag
// aggregation (summarize.ts) and the probe's lifecycle (sockets.ts); the reference docs are generated from
// these definitions.
import { z } from 'zod';
import { SK_MEMINFO } from '../../receiver/netlink/sock-diag.ts';
import type { MetricDef } from '../../receiver/probe/types.ts';

/** Default RTT bucket bounds, seconds: 100 µs … 5 s. */
export const DEFAULT_RTT_BOUNDARIES = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
] as const;

export const argsSchema = z.object({
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

export const metrics: MetricDef[] = [
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
