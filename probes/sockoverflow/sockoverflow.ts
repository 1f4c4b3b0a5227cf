// sockoverflow: sockets that could not take more data. UDP receive-buffer overflows
// (udp:udp_fail_queue_rcv_skb, equal to Udp RcvbufErrors / MemErrors), packets refused by a full socket
// receive queue (sock:sock_rcvqueue_full: raw, ICMP, ... sockets) and socket memory charges refused by
// the protocol's memory limits (sock:sock_exceed_buf_limit: tcp_mem / udp_mem). Exact per-netns counters
// and rate-limited events with the tuple, buffer size and memory in use.
import { z } from 'zod';
import { dataView } from '../../receiver/bpf/events.ts';
import { readTuple, socketAttributes, transportName } from '../../receiver/kit/ebpf/decode.ts';
import { kernelRequirement } from '../../receiver/kit/ebpf/kernels.ts';
import {
  EbpfRuntime,
  eventArgsShape,
  hookAvailability,
  ringBytesArg,
  SELF_METRIC_DEFS,
} from '../../receiver/kit/ebpf/runtime.ts';
import type { MetricDef, MetricPoint, Probe, ProbeSpec } from '../../receiver/probe/types.ts';
import { type MapName, type Program, SO_EVENT, SO_VAL, soEvent, soKey } from './sockoverflow.layout.gen.ts';

export const OBJECT = new URL('./sockoverflow.bpf.o', import.meta.url);

const argsSchema = z.object({
  ...eventArgsShape,
  /**
   * Ring size. The reader drains at ~1 µs a record (benchmarks/RESULTS.md, section «Per area — eBPF ring
   * reader: burst drain») at most 50 ms after the kernel wakes it (receiver/bpf/ringbuf.ts, wakeDelayMs); the
   * ring holds what arrives meanwhile and while the event loop is busy elsewhere. At the default rate limit
   * (100 events/s per netns and event type) one netns sends at most 3 kinds × 100 × 112 B = 34 KB/s: 256 KiB
   * holds a full second's burst of every kind in 7 netns at once. Every record that does not fit is counted
   * (podnet.ebpf.events.lost); raise ring_bytes for nodes with many pods that burst together.
   */
  ringBytes: ringBytesArg(256 << 10),
  /** On by default for this probe's anomaly events (bounded by the in-kernel rate limit; benchmarks/RESULTS.md). */
  stacks: z.boolean().default(true),
});
export type SockoverflowArgs = z.infer<typeof argsSchema>;

export const M = {
  udp: 'podnet.udp.overflow.count',
  rcvqueue: 'podnet.socket.receive_queue.overflow.count',
  memLimit: 'podnet.socket.memory_limit.count',
} as const;

export const EVENTS = {
  udp: 'podnet.udp.overflow',
  rcvqueue: 'podnet.socket.overflow',
  memLimit: 'podnet.socket.memory_limit',
} as const;

interface Kind {
  readonly metric: string;
  readonly event: string;
  readonly type: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** Kernel kind number (sockoverflow.bpf.c SO_*) → metric, event, type. */
export const KINDS: Readonly<Record<number, Kind>> = {
  1: {
    metric: M.udp,
    event: EVENTS.udp,
    type: 'UDP_RCVBUF_OVERFLOW',
    attributes: { 'podnet.udp.overflow.reason': 'receive_buffer' },
  },
  2: {
    metric: M.udp,
    event: EVENTS.udp,
    type: 'UDP_MEMORY_OVERFLOW',
    attributes: { 'podnet.udp.overflow.reason': 'memory' },
  },
  3: { metric: M.rcvqueue, event: EVENTS.rcvqueue, type: 'SOCKET_RCVQUEUE_FULL', attributes: {} },
  4: {
    metric: M.memLimit,
    event: EVENTS.memLimit,
    type: 'SOCKET_MEMORY_LIMIT',
    attributes: { 'network.io.direction': 'transmit' },
  },
  5: {
    metric: M.memLimit,
    event: EVENTS.memLimit,
    type: 'SOCKET_MEMORY_LIMIT',
    attributes: { 'network.io.direction': 'receive' },
  },
};

const counter = (name: string, unit: string, description: string, attributes: string[]): MetricDef => ({
  name,
  kind: 'counter',
  unit,
  description,
  attributes: [...attributes, 'network.type', 'network.transport'],
  enabled: true,
});

const metrics: MetricDef[] = [
  counter(
    M.udp,
    '{packet}',
    'Datagrams a UDP socket could not queue: receive_buffer = receive buffer full (Udp RcvbufErrors), memory = protocol memory (Udp MemErrors). Counted in the kernel for every datagram.',
    ['podnet.udp.overflow.reason'],
  ),
  counter(
    M.rcvqueue,
    '{packet}',
    'Packets refused because a socket receive queue was full (sock_queue_rcv_skb: raw, ICMP, ... sockets).',
    [],
  ),
  counter(
    M.memLimit,
    '{allocation}',
    'Socket memory charges refused by the protocol memory limits (tcp_mem, udp_mem), by direction.',
    ['network.io.direction'],
  ),
  ...SELF_METRIC_DEFS,
];

const SOCKET_ATTRS = [
  'network.type',
  'network.transport',
  'network.local.address',
  'network.local.port',
  'network.peer.address',
  'network.peer.port',
  'podnet.socket.receive_buffer.size',
  'podnet.socket.receive_buffer.used',
  'podnet.socket.send_buffer.size',
  'podnet.socket.send_buffer.used',
  'podnet.netns.origin_inode',
];

const PROGRAMS = {
  so_udp3: { tpArgs: 3 },
  so_udp2: { tpArgs: 2 },
  so_udp3_raw: { tpArgs: 3 },
  so_udp2_raw: { tpArgs: 2 },
} as const satisfies Partial<Record<Program, { tpArgs: number }>>;
const COUNTS: MapName = 'so_counts';
/** Alternatives per hook, preferred first (availability, minimum kernel). */
const GROUPS = [
  ['so_udp3', 'so_udp2', 'so_udp3_raw', 'so_udp2_raw'],
  ['so_rcvq', 'so_rcvq_raw'],
  ['so_memlimit', 'so_memlimit_raw'],
];

export const sockoverflowProbe: ProbeSpec<SockoverflowArgs> = {
  name: 'sockoverflow',
  description:
    'Socket overflows: UDP receive-buffer and memory overflows (udp_fail_queue_rcv_skb), full socket receive queues (sock_rcvqueue_full), protocol memory limits (sock_exceed_buf_limit); exact counters and events with tuple, buffer size and memory in use.',
  source: 'ebpf',
  defaultEnabled: true,
  metrics,
  events: [
    {
      name: EVENTS.udp,
      description:
        'A datagram dropped because the UDP socket could not queue it: local/peer tuple (peer = the datagram source), receive buffer size and memory in use.',
      severity: 'WARN',
      attributes: ['podnet.udp.overflow.reason', 'podnet.packet.size', ...SOCKET_ATTRS],
      types: ['UDP_RCVBUF_OVERFLOW', 'UDP_MEMORY_OVERFLOW'],
      enabled: true,
    },
    {
      name: EVENTS.rcvqueue,
      description: 'A packet refused because the socket receive queue was full (sk_rmem_alloc >= sk_rcvbuf).',
      severity: 'WARN',
      attributes: ['podnet.packet.size', ...SOCKET_ATTRS],
      types: ['SOCKET_RCVQUEUE_FULL'],
      enabled: true,
    },
    {
      name: EVENTS.memLimit,
      description:
        'A socket memory charge refused by the protocol memory limits: pages allocated by the protocol and its hard limit.',
      severity: 'WARN',
      attributes: [
        'network.io.direction',
        'podnet.protocol.memory.allocated',
        'podnet.protocol.memory.limit',
        'network.connection.state',
        ...SOCKET_ATTRS,
      ],
      types: ['SOCKET_MEMORY_LIMIT'],
      enabled: true,
    },
  ],
  args: argsSchema,
  async availability() {
    return hookAvailability(OBJECT, GROUPS, PROGRAMS);
  },
  kernel: () =>
    kernelRequirement(OBJECT, GROUPS, PROGRAMS, [
      'UDP overflow events carry the datagram tuple only with udp_fail_queue_rcv_skb(rc, sk, skb) (after 6.1); before, the socket tuple',
    ]),
  async create(ctx, args) {
    const page = 4096;
    const rt = EbpfRuntime.open({
      probe: 'sockoverflow',
      object: OBJECT,
      ctx,
      args,
      programs: PROGRAMS,
      fallbacks: {
        so_udp3: 'so_udp3_raw',
        so_udp2: 'so_udp2_raw',
        so_rcvq: 'so_rcvq_raw',
        so_memlimit: 'so_memlimit_raw',
      },
      counterMaps: [COUNTS],
      decode: (rec, r) => {
        const { view, offset: o } = rec;
        const k = KINDS[rec.header.type];
        if (!k) return null;
        const allocated = Number(soEvent.allocated(view, o));
        const limit = Number(soEvent.mem_limit(view, o));
        const stackId = soEvent.stack_id(view, o);
        const rawNetns = soEvent.raw_netns(view, o);
        const t = readTuple(view, o + SO_EVENT.t);
        const attributes: Record<string, string | number> = { ...k.attributes };
        socketAttributes(t, attributes);
        attributes['podnet.socket.receive_buffer.size'] = soEvent.rcvbuf(view, o);
        attributes['podnet.socket.receive_buffer.used'] = soEvent.rmem_alloc(view, o);
        attributes['podnet.socket.send_buffer.size'] = soEvent.sndbuf(view, o);
        attributes['podnet.socket.send_buffer.used'] = soEvent.wmem_queued(view, o);
        if (rec.header.type <= 3) attributes['podnet.packet.size'] = soEvent.skb_len(view, o);
        if (rec.header.type >= 4) {
          attributes['podnet.protocol.memory.allocated'] = allocated * page;
          attributes['podnet.protocol.memory.limit'] = limit * page;
        }
        if (rec.header.netns === 0 && rawNetns) attributes['podnet.netns.origin_inode'] = rawNetns;
        const stack = r.stack(stackId);
        return {
          name: k.event,
          type: k.type,
          netns: rec.header.netns,
          timeUnixNano: rec.timeUnixNano,
          attributes,
          ...(stack ? { stack } : {}),
        };
      },
    });
    const probe: Probe<SockoverflowArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        for (const e of rt.counterEntries(COUNTS)) {
          const key = dataView(e.key);
          const k = KINDS[soKey.kind(key, 0)];
          if (!k) continue;
          const family = soKey.family(key, 0);
          const attributes: Record<string, string> = {
            ...k.attributes,
            'network.transport': transportName(soKey.l4proto(key, 0)),
          };
          if (family) attributes['network.type'] = family === 6 ? 'ipv6' : 'ipv4';
          out.push({ metric: k.metric, netns: e.netns, attributes, value: e.values[SO_VAL.count / 8] ?? 0 });
        }
        out.push(...rt.selfPoints());
        return out;
      },
      status: () => rt.status(),
      async close() {
        rt.close();
      },
    };
    return probe;
  },
};
