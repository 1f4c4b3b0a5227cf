// tcpretrans: TCP retransmissions from tcp:tcp_retransmit_skb and tcp:tcp_retransmit_synack, counted in
// the kernel per netns in segments — the way the kernel counts Tcp RetransSegs — and reported as
// rate-limited `podnet.tcp.retransmit` events with the socket tuple, state, segments and optional stack.
import { constants } from 'node:os';
import { z } from 'zod';
import { readTuple, socketAttributes } from '../../receiver/kit/ebpf/decode.ts';
import { kernelRequirement } from '../../receiver/kit/ebpf/kernels.ts';
import {
  EbpfRuntime,
  eventArgsShape,
  hookAvailability,
  ringBytesArg,
  SELF_METRIC_DEFS,
} from '../../receiver/kit/ebpf/runtime.ts';
import type { MetricDef, MetricPoint, Probe, ProbeSpec } from '../../receiver/probe/types.ts';
import { type MapName, type Program, RT_EVENT, RT_VAL, rtEvent } from './tcpretrans.layout.gen.ts';

export const OBJECT = new URL('./tcpretrans.bpf.o', import.meta.url);

const argsSchema = z.object({
  ...eventArgsShape,
  /**
   * Ring size. The reader drains at ~1 µs a record (benchmarks/RESULTS.md, section «Per area — eBPF ring
   * reader: burst drain») at most 50 ms after the kernel wakes it (receiver/bpf/ringbuf.ts, wakeDelayMs); the
   * ring holds what arrives meanwhile and while the event loop is busy elsewhere. At the default rate limit
   * (100 events/s per netns and event type) one netns sends at most 2 types × 100 × 80 B = 16 KB/s: 256 KiB
   * holds a full second's burst of 16 netns at once. Every record that does not fit is counted
   * (podnet.ebpf.events.lost); raise ring_bytes for nodes with many pods that burst together.
   */
  ringBytes: ringBytesArg(256 << 10),
  /** On by default for this probe's anomaly events (bounded by the in-kernel rate limit; benchmarks/RESULTS.md). */
  stacks: z.boolean().default(true),
});
export type TcpretransArgs = z.infer<typeof argsSchema>;

export const M = {
  retransmits: 'podnet.tcp.retransmit.count',
  failed: 'podnet.tcp.retransmit.failed.count',
} as const;
export const EVENT = 'podnet.tcp.retransmit';
export const EVENT_TYPE = 'TCPRETRANS';

const metrics: MetricDef[] = [
  {
    name: M.retransmits,
    kind: 'counter',
    unit: '{segment}',
    description:
      'TCP segments retransmitted (data, SYN, FIN and SYN-ACK), as the kernel counts Tcp RetransSegs. Counted in the kernel for every retransmit.',
    attributes: ['podnet.tcp.retransmit.kind'],
    enabled: true,
  },
  {
    name: M.failed,
    kind: 'counter',
    unit: '{segment}',
    description: 'Retransmits whose transmit returned an error (Linux 6.10+ reports it).',
    attributes: [],
    enabled: true,
  },
  ...SELF_METRIC_DEFS,
];

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, n]) => [n as number, name] as const),
);

const PROGRAMS = {
  rt_skb3: { tpArgs: 3 },
  rt_skb2: { tpArgs: 2 },
  rt_skb3_raw: { tpArgs: 3 },
  rt_skb2_raw: { tpArgs: 2 },
} as const satisfies Partial<Record<Program, { tpArgs: number }>>;
const COUNTS: MapName = 'rt_counts';
const MODE: MapName = 'rt_mode';
/** The tcp_retransmit_skb programs that keep socket storage (tp_btf). */
const STORAGE_PROGRAMS: readonly Program[] = ['rt_skb3', 'rt_skb2'];
/** Alternatives per hook, preferred first (availability, minimum kernel). */
const GROUPS = [
  ['rt_skb3', 'rt_skb2', 'rt_skb3_raw', 'rt_skb2_raw'],
  ['rt_synack', 'rt_synack_raw'],
  // the close catch-up of the tp_btf programs (socket storage; idle with the raw_tp twins)
  ['rt_state'],
];

export const tcpretransProbe: ProbeSpec<TcpretransArgs> = {
  name: 'tcpretrans',
  description:
    'TCP retransmits (tcp:tcp_retransmit_skb, tcp:tcp_retransmit_synack): exact per-netns segment counters equal to Tcp RetransSegs, and events with tuple, state and optional stack.',
  source: 'ebpf',
  defaultEnabled: true,
  metrics,
  events: [
    {
      name: EVENT,
      description:
        'A TCP retransmit: the socket tuple (local/peer), state, segments, retransmit kind (segment or synack) and the transmit error if any (error.type).',
      severity: 'WARN',
      attributes: [
        'podnet.tcp.retransmit.kind',
        'podnet.tcp.retransmit.segments',
        'error.type',
        'network.type',
        'network.transport',
        'network.local.address',
        'network.local.port',
        'network.peer.address',
        'network.peer.port',
        'network.connection.state',
        'podnet.netns.origin_inode',
      ],
      types: [EVENT_TYPE],
      enabled: true,
    },
  ],
  args: argsSchema,
  async availability() {
    return hookAvailability(OBJECT, GROUPS, PROGRAMS);
  },
  kernel: () =>
    kernelRequirement(OBJECT, GROUPS, PROGRAMS, [
      'the transmit error (error.type on events) needs tcp_retransmit_skb with 3 arguments (after 6.1; 6.18 has it)',
      'exact counters (socket storage in rt_skb3/rt_skb2 and the TCP_CLOSE catch-up rt_state) need tp_btf and socket storage in tracing programs (5.11); the raw_tp twins count each firing',
    ]),
  async create(ctx, args) {
    const rt = EbpfRuntime.open({
      probe: 'tcpretrans',
      object: OBJECT,
      ctx,
      args,
      // rt_state serves the tp_btf socket-storage programs only (no raw_tp twin: off with attach: raw_tp)
      programs: args.attach === 'raw_tp' ? { ...PROGRAMS, rt_state: { enabled: false } } : PROGRAMS,
      fallbacks: { rt_skb3: 'rt_skb3_raw', rt_skb2: 'rt_skb2_raw', rt_synack: 'rt_synack_raw' },
      counterMaps: [COUNTS],
      decode: (rec, r) => {
        const { view, offset: o } = rec;
        const err = rtEvent.err(view, o);
        const stackId = rtEvent.stack_id(view, o);
        const segs = rtEvent.segs(view, o);
        const rawNetns = rtEvent.raw_netns(view, o);
        const t = readTuple(view, o + RT_EVENT.t);
        const attributes: Record<string, string | number> = {
          'podnet.tcp.retransmit.kind': rec.header.type === 2 ? 'synack' : 'segment',
          'podnet.tcp.retransmit.segments': segs,
        };
        if (err) attributes['error.type'] = errnoNames.get(-err) ?? String(err);
        socketAttributes(t, attributes);
        if (rec.header.netns === 0 && rawNetns) attributes['podnet.netns.origin_inode'] = rawNetns;
        const stack = r.stack(stackId);
        return {
          name: EVENT,
          type: EVENT_TYPE,
          netns: rec.header.netns,
          timeUnixNano: rec.timeUnixNano,
          attributes,
          ...(stack ? { stack } : {}),
        };
      },
    });
    // the socket-storage programs are attached: rt_state gives new sockets their storage and catches
    // up at TCP_CLOSE (tcpretrans.bpf.c); with the raw_tp twins it stays idle
    if (STORAGE_PROGRAMS.some((p) => rt.coll.programs.get(p)?.state === 'attached'))
      rt.coll.map(MODE).update(new Uint8Array(4), new Uint8Array([1, 0, 0, 0]));
    const probe: Probe<TcpretransArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        for (const e of rt.counterEntries(COUNTS)) {
          const segments = e.values[RT_VAL.segments / 8] ?? 0;
          const synack = e.values[RT_VAL.synack / 8] ?? 0;
          const failed = e.values[RT_VAL.failed / 8] ?? 0;
          out.push({
            metric: M.retransmits,
            netns: e.netns,
            attributes: { 'podnet.tcp.retransmit.kind': 'segment' },
            value: segments - synack,
          });
          out.push({
            metric: M.retransmits,
            netns: e.netns,
            attributes: { 'podnet.tcp.retransmit.kind': 'synack' },
            value: synack,
          });
          out.push({ metric: M.failed, netns: e.netns, value: failed });
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
