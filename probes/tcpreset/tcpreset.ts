// tcpreset: TCP resets from tcp:tcp_send_reset and tcp:tcp_receive_reset, classified as KubeSkoop does
// (TCPRESET_NOSOCK / PROCESS / ACTIVE / RECEIVE). Exact per-netns counters by direction and kind, and
// rate-limited `podnet.tcp.reset` events with the socket tuple (ports in host order), the socket state
// and the kernel's reset reason (enum sk_rst_reason from BTF, Linux 6.10+).
import { z } from 'zod';
import { enumName, resetReasonNames } from '../../receiver/bpf/btf.ts';
import { dataView } from '../../receiver/bpf/events.ts';
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
import { type MapName, type Program, RST_EVENT, RST_VAL, rstEvent, rstKey } from './tcpreset.layout.gen.ts';

export const OBJECT = new URL('./tcpreset.bpf.o', import.meta.url);

const argsSchema = z.object({
  ...eventArgsShape,
  /**
   * Ring size. The reader drains at ~1 µs a record (benchmarks/RESULTS.md, section «Per area — eBPF ring
   * reader: burst drain») at most 50 ms after the kernel wakes it (receiver/bpf/ringbuf.ts, wakeDelayMs); the
   * ring holds what arrives meanwhile and while the event loop is busy elsewhere. At the default rate limit
   * (100 events/s per netns and event type) one netns sends at most 4 kinds × 100 × 80 B = 32 KB/s: 256 KiB
   * holds a full second's burst of every kind in 8 netns at once. Every record that does not fit is counted
   * (podnet.ebpf.events.lost); raise ring_bytes for nodes with many pods that burst together.
   */
  ringBytes: ringBytesArg(256 << 10),
  /** On by default for this probe's anomaly events (bounded by the in-kernel rate limit; benchmarks/RESULTS.md). */
  stacks: z.boolean().default(true),
});
export type TcpresetArgs = z.infer<typeof argsSchema>;

export const M = { resets: 'podnet.tcp.reset.count' } as const;
export const EVENT = 'podnet.tcp.reset';

/** Kernel kind number (tcpreset.bpf.c RST_*) → KubeSkoop type, metric kind, direction. */
export const KINDS: Readonly<Record<number, { type: string; kind: string; direction: string }>> = {
  1: { type: 'TCPRESET_NOSOCK', kind: 'nosock', direction: 'transmit' },
  2: { type: 'TCPRESET_PROCESS', kind: 'process', direction: 'transmit' },
  3: { type: 'TCPRESET_ACTIVE', kind: 'active', direction: 'transmit' },
  4: { type: 'TCPRESET_RECEIVE', kind: 'receive', direction: 'receive' },
};
const NO_REASON = 0xffffffff;

const metrics: MetricDef[] = [
  {
    name: M.resets,
    kind: 'counter',
    unit: '{segment}',
    description:
      'TCP resets sent (nosock: no socket for the segment; process: a socket answered with a reset; active: the local side aborted) and received. Counted in the kernel for every reset.',
    attributes: ['network.io.direction', 'podnet.tcp.reset.kind'],
    enabled: true,
  },
  ...SELF_METRIC_DEFS,
];

const PROGRAMS = {
  rst_send3: { tpArgs: 3 },
  rst_send2: { tpArgs: 2 },
  rst_send3_raw: { tpArgs: 3 },
  rst_send2_raw: { tpArgs: 2 },
} as const satisfies Partial<Record<Program, { tpArgs: number }>>;
const COUNTS: MapName = 'rst_counts';
/** Alternatives per hook, preferred first (availability, minimum kernel). */
const GROUPS = [
  ['rst_send3', 'rst_send2', 'rst_send3_raw', 'rst_send2_raw'],
  ['rst_receive', 'rst_receive_raw'],
];
/** Programs that pass the kernel's reset reason (tcp_send_reset with 3 arguments, 6.10+). */
const WITH_REASON = ['rst_send3', 'rst_send3_raw'];

export const tcpresetProbe: ProbeSpec<TcpresetArgs> = {
  name: 'tcpreset',
  description:
    'TCP resets sent and received (tcp:tcp_send_reset, tcp:tcp_receive_reset): exact per-netns counters by kind, and events with tuple, socket state and kernel reset reason.',
  source: 'ebpf',
  defaultEnabled: true,
  metrics,
  events: [
    {
      name: EVENT,
      description:
        'A TCP reset sent or received, with the socket tuple (local/peer), state, direction and the kernel reset reason (error.type) where the kernel gives one.',
      severity: 'WARN',
      attributes: [
        'network.io.direction',
        'podnet.tcp.reset.kind',
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
      types: Object.values(KINDS).map((k) => k.type),
      enabled: true,
    },
  ],
  args: argsSchema,
  async availability() {
    return hookAvailability(OBJECT, GROUPS, PROGRAMS);
  },
  kernel: () =>
    kernelRequirement(OBJECT, GROUPS, PROGRAMS, [
      'before 6.10 tcp_send_reset has no reset reason (no error.type on events) and does not fire for segments without a socket (kind nosock is not seen; TcpOutRsts still counts them)',
    ]),
  async create(ctx, args) {
    // enum sk_rst_reason exists from 6.10, with the 3-argument tcp_send_reset: read it only when a
    // program that passes a reason is loaded (it is absent on older kernels, see kernel()).
    let reasons: ReadonlyMap<number, string> = new Map();
    const rt = EbpfRuntime.open({
      probe: 'tcpreset',
      object: OBJECT,
      ctx,
      args,
      programs: PROGRAMS,
      fallbacks: { rst_send3: 'rst_send3_raw', rst_send2: 'rst_send2_raw', rst_receive: 'rst_receive_raw' },
      counterMaps: [COUNTS],
      decode: (rec, r) => {
        const { view, offset: o } = rec;
        const k = KINDS[rec.header.type];
        if (!k) return null;
        const reason = rstEvent.reason(view, o);
        const stackId = rstEvent.stack_id(view, o);
        const rawNetns = rstEvent.raw_netns(view, o);
        const t = readTuple(view, o + RST_EVENT.t);
        const attributes: Record<string, string | number> = {
          'network.io.direction': k.direction,
          'podnet.tcp.reset.kind': k.kind,
        };
        if (reason !== NO_REASON) attributes['error.type'] = enumName(reasons, reason);
        socketAttributes(t, attributes);
        if (rec.header.netns === 0 && rawNetns) attributes['podnet.netns.origin_inode'] = rawNetns;
        const stack = r.stack(stackId);
        return {
          name: EVENT,
          type: k.type,
          netns: rec.header.netns,
          timeUnixNano: rec.timeUnixNano,
          attributes,
          ...(stack ? { stack } : {}),
        };
      },
    });
    if (WITH_REASON.some((p) => rt.coll.programs.get(p)?.state === 'attached')) reasons = resetReasonNames();
    const probe: Probe<TcpresetArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        for (const e of rt.counterEntries(COUNTS)) {
          const k = KINDS[rstKey.kind(dataView(e.key), 0)];
          if (!k) continue;
          out.push({
            metric: M.resets,
            netns: e.netns,
            attributes: { 'network.io.direction': k.direction, 'podnet.tcp.reset.kind': k.kind },
            value: e.values[RST_VAL.count / 8] ?? 0,
          });
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
