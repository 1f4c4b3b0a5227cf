// sockoverflow: sockets that could not take more data. UDP receive-buffer overflows
// (udp:udp_fail_queue_rcv_skb, equal to Udp RcvbufErrors / MemErrors), packets refused by a full socket
// receive queue (sock:sock_rcvqueue_full: raw, ICMP, ... sockets) and socket memory charges refused by
// the protocol's memory limits (sock:sock_exceed_buf_limit: tcp_mem / udp_mem). Exact per-netns counters
// and rate-limited events with the tuple, buffer size and memory in use.
import { z } from 'zod';
import { readTuple, socketAttributes, transportName } from '../../receiver/kit/ebpf/decode.ts';
import { kernelRequirement } from '../../receiver/kit/ebpf/kernels.ts';
import {
  EbpfRuntime,
  eventArgsShape,
  hookAvailability,
  SELF_METRIC_DEFS,
} from '../../receiver/kit/ebpf/runtime.ts';
import type { MetricDef, MetricPoint, Probe, ProbeSpec } from '../../receiver/probe/types.ts';

export const OBJECT = new URL('./sockoverflow.bpf.o', import.meta.url);

const argsSchema = z.object({
  ...eventArgsShape,
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
} as const;
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
      counterMaps: ['so_counts'],
      decode: (rec, r) => {
        const { view, offset: o } = rec;
        const k = KINDS[rec.header.type];
        if (!k) return null;
        const allocated = Number(view.getBigInt64(o + 16, true));
        const limit = Number(view.getBigInt64(o + 24, true));
        const stackId = view.getInt32(o + 36, true);
        const rawNetns = view.getUint32(o + 60, true);
        const t = readTuple(view, o + 64);
        const attributes: Record<string, string | number> = { ...k.attributes };
        socketAttributes(t, attributes);
        attributes['podnet.socket.receive_buffer.size'] = view.getUint32(o + 40, true);
        attributes['podnet.socket.receive_buffer.used'] = view.getUint32(o + 44, true);
        attributes['podnet.socket.send_buffer.size'] = view.getUint32(o + 48, true);
        attributes['podnet.socket.send_buffer.used'] = view.getUint32(o + 52, true);
        if (rec.header.type <= 3) attributes['podnet.packet.size'] = view.getUint32(o + 56, true);
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
        for (const e of rt.counterEntries('so_counts')) {
          const k = KINDS[e.key.readUInt16LE(4)];
          if (!k) continue;
          const family = e.key.readUInt8(6);
          const attributes: Record<string, string> = {
            ...k.attributes,
            'network.transport': transportName(e.key.readUInt8(7)),
          };
          if (family) attributes['network.type'] = family === 6 ? 'ipv6' : 'ipv4';
          out.push({ metric: k.metric, netns: e.netns, attributes, value: e.values[0] ?? 0 });
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
