// socketlatency: how long data waits in a socket, per pod (netns), as log2 histograms measured in the
// kernel (socketlatency.bpf.c; hooks and limits in docs/probes-latency.md):
//   read wait  = data arrival (sock:sk_data_ready) → the application's read (sock:sock_recv_length);
//   write wait = the application's write (tcp:tcp_sendmsg_locked) → the first segment carrying that data
//                reaches the device layer (net:net_dev_queue). TCP only.
// Also KubeSkoop's read1ms / read100ms / write1ms / write100ms as exact counters, and
// `podnet.socket.slow` events over a threshold (default 100 ms) with tuple, process and the wait.
import { z } from 'zod';
import { dataView } from '../../receiver/bpf/events.ts';
import { pnEventHdr } from '../../receiver/bpf/pn.layout.gen.ts';
import { socketAttributes, transportName } from '../../receiver/kit/ebpf/decode.ts';
import { kernelRequirement } from '../../receiver/kit/ebpf/kernels.ts';
import {
  bucketsShape,
  histEntries,
  histPoints,
  LATENCY_ATTR,
  msToNs,
  readTupleUnmapped,
  slotKeys,
  slowCounterDef,
  THRESHOLD_ATTR,
} from '../../receiver/kit/ebpf/latency.ts';
import { histogramDef } from '../../receiver/kit/ebpf/log2.ts';
import {
  EbpfRuntime,
  eventArgsShape,
  hookAvailability,
  SELF_METRIC_DEFS,
} from '../../receiver/kit/ebpf/runtime.ts';
import type { MetricDef, MetricPoint, Probe, ProbeEvent, ProbeSpec } from '../../receiver/probe/types.ts';
import {
  type MapName,
  type Program,
  type RodataName,
  SL_EVENT,
  SL_KEY,
  SL_KEY_SIZE,
  slEvent,
  slKey,
} from './socketlatency.layout.gen.ts';

export const OBJECT = new URL('./socketlatency.bpf.o', import.meta.url);

/** The sl_key of each variant of a netns slot: read TCP, read UDP, write TCP (socketlatency.bpf.c sl_hist_fast). */
const SLOT_KEYS = slotKeys(SL_KEY_SIZE, SL_KEY.dir, SL_KEY.l4proto, [
  [0, 6],
  [0, 17],
  [1, 6],
]);

const argsSchema = z.object({
  ...eventArgsShape,
  ...bucketsShape,
  /**
   * tp_btf only: the per-socket state lives in socket-local storage, which raw_tp programs cannot use;
   * there are no raw_tp twins (docs/probes-latency.md). `raw_tp` is accepted (a configuration may set
   * it for every probe) and logged as a warning; the tp_btf programs are used.
   */
  attach: z.enum(['auto', 'raw_tp']).default('auto'),
  /** A wait longer than this raises a `podnet.socket.slow` event, ms. */
  slowThresholdMs: z.number().positive().default(100),
  /** Thresholds of `podnet.socket.{read,write}.slow.count`, ms (KubeSkoop: 1 and 100). */
  counterThresholdsMs: z.tuple([z.number().positive(), z.number().positive()]).default([1, 100]),
  /** Also measure UDP read waits. */
  udp: z.boolean().default(true),
});
export type SocketLatencyArgs = z.infer<typeof argsSchema>;

export const M = {
  readWait: 'podnet.socket.read.wait',
  writeWait: 'podnet.socket.write.wait',
  readSlow: 'podnet.socket.read.slow.count',
  writeSlow: 'podnet.socket.write.slow.count',
} as const;
export const EVENT = 'podnet.socket.slow';
export const EVENT_TYPES = { 1: 'SOCKETLAT_READSLOW', 2: 'SOCKETLAT_SENDSLOW' } as const;

const metrics: MetricDef[] = [
  histogramDef(
    M.readWait,
    'Time data waited in a socket before the application read it: first arrival since the last read (sock:sk_data_ready) to a read that returned data (sock:sock_recv_length).',
    ['network.transport'],
  ),
  histogramDef(
    M.writeWait,
    'Time data written by the application waited before the kernel sent it: start of the write (tcp:tcp_sendmsg_locked) to the first segment carrying it at the device layer (net:net_dev_queue). Includes time blocked on a full send buffer or peer window. TCP.',
    ['network.transport'],
  ),
  slowCounterDef(
    M.readSlow,
    '{read}',
    'Reads whose wait exceeded the threshold (KubeSkoop read1ms / read100ms), counted exactly in the kernel.',
    ['network.transport'],
  ),
  slowCounterDef(
    M.writeSlow,
    '{write}',
    'Writes whose wait exceeded the threshold (KubeSkoop write1ms / write100ms), counted exactly in the kernel.',
    ['network.transport'],
  ),
  ...SELF_METRIC_DEFS,
];

const PROGRAMS = [
  'sl_data_ready',
  'sl_recv_length',
  'sl_sendmsg',
  'sl_dev_queue',
] as const satisfies Program[];
const HIST: MapName = 'sl_hist';

/** Event record (socketlatency.bpf.c struct sl_event, 88 bytes). */
export function decodeSlow(
  view: DataView,
  o: number,
): Omit<ProbeEvent, 'timeUnixNano' | 'netns'> & {
  rawNetns: number;
  waitNs: number;
} {
  const type = pnEventHdr.type(view, o + SL_EVENT.hdr);
  const waitNs = Number(slEvent.wait_ns(view, o));
  const pid = slEvent.pid(view, o);
  const rawNetns = slEvent.raw_netns(view, o);
  const t = readTupleUnmapped(view, o + SL_EVENT.tuple);
  const comm = slEvent.comm(view, o);
  const attributes: Record<string, string | number> = {
    [LATENCY_ATTR]: waitNs / 1e9,
    'network.io.direction': type === 1 ? 'receive' : 'transmit',
  };
  socketAttributes(t, attributes);
  if (pid) attributes['process.pid'] = pid;
  if (comm) attributes['podnet.task.comm'] = comm;
  return {
    name: EVENT,
    type: EVENT_TYPES[type as 1 | 2] ?? `SOCKETLAT_${type}`,
    attributes,
    rawNetns,
    waitNs,
  };
}

export const socketlatencyProbe: ProbeSpec<SocketLatencyArgs> = {
  name: 'socketlatency',
  description:
    'Socket read and write waits per pod as in-kernel log2 histograms (arrival → read, write → sent), KubeSkoop read1ms/read100ms/write1ms/write100ms counters and slow-socket events with tuple and process.',
  source: 'ebpf',
  defaultEnabled: false,
  metrics,
  events: [
    {
      name: EVENT,
      description:
        'A socket read or write waited longer than the threshold (default 100 ms): tuple, process, direction and the wait in seconds.',
      severity: 'WARN',
      attributes: [
        LATENCY_ATTR,
        'network.io.direction',
        'network.type',
        'network.transport',
        'network.local.address',
        'network.local.port',
        'network.peer.address',
        'network.peer.port',
        'network.connection.state',
        'process.pid',
        'podnet.task.comm',
      ],
      types: Object.values(EVENT_TYPES),
      enabled: true,
    },
  ],
  args: argsSchema,
  async availability() {
    return hookAvailability(
      OBJECT,
      PROGRAMS.map((p) => [p]),
    );
  },
  kernel: () =>
    kernelRequirement(
      OBJECT,
      PROGRAMS.map((p) => [p]),
      {},
      [
        'slow reads are timed from sk_data_ready and sock_recv_length (both after 6.1): on 6.1 only the send side (tcp_sendmsg_locked is also after 6.1) — see availability',
      ],
    ),
  async create(ctx, args) {
    const [t0, t1] = args.counterThresholdsMs;
    const rt = EbpfRuntime.open({
      probe: 'socketlatency',
      object: OBJECT,
      ctx,
      args,
      rodata: {
        cfg_slow_ns: msToNs(args.slowThresholdMs),
        cfg_t0_ns: msToNs(t0),
        cfg_t1_ns: msToNs(t1),
        cfg_udp: args.udp ? 1 : 0,
      } satisfies Partial<Record<RodataName, unknown>>,
      counterMaps: [HIST],
      slotted: { [HIST]: { fast: 'sl_hist_fast' satisfies MapName, variants: SLOT_KEYS } },
      // hooks shared with kernellatency (and dns): one dispatch per hook (receiver/bpf/hook-chain.ts)
      chained: {
        sl_data_ready: 'sl_next_data_ready',
        sl_dev_queue: 'sl_next_dev_queue',
      } satisfies Partial<Record<Program, MapName>>,
      decode: (rec) => {
        const { rawNetns, waitNs: _w, ...e } = decodeSlow(rec.view, rec.offset);
        if (rec.header.netns === 0 && rawNetns) {
          (e.attributes as Record<string, number>)['podnet.netns.origin_inode'] = rawNetns;
        }
        return { ...e, netns: rec.header.netns, timeUnixNano: rec.timeUnixNano };
      },
    });
    const range = args.buckets;
    const probe: Probe<SocketLatencyArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        for (const e of histEntries(rt, HIST)) {
          const key = dataView(e.key);
          const read = slKey.dir(key, 0) === 0;
          histPoints(out, e.hist, {
            netns: e.netns,
            attributes: { 'network.transport': transportName(slKey.l4proto(key, 0)) },
            histogram: read ? M.readWait : M.writeWait,
            counter: read ? M.readSlow : M.writeSlow,
            thresholdsMs: [t0, t1],
            range,
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

export { THRESHOLD_ATTR };
