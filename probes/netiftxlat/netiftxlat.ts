// netiftxlat: transmit latency at the device layer per pod (netns of the transmitting device), as log2
// histograms measured in the kernel (netiftxlat.bpf.c):
//   qdisc wait  = qdisc:qdisc_enqueue → net:net_dev_start_xmit (time in the qdisc: shaping, backlog;
//                 0 for packets that did not wait in a qdisc: noqueue devices, bypass of an empty qdisc);
//   driver time = net:net_dev_start_xmit → net:net_dev_xmit (the driver's ndo_start_xmit).
// Slow events NETIFTXLAT_QDISC / NETIFTXLAT_XMIT over a threshold (default 100 ms, as KubeSkoop's
// qdiscslow100ms / netdevslow100ms).
import { z } from 'zod';
import { pnEventHdr } from '../../receiver/bpf/pn.layout.gen.ts';
import { packetAttributes, readTuple } from '../../receiver/kit/ebpf/decode.ts';
import { kernelRequirement } from '../../receiver/kit/ebpf/kernels.ts';
import {
  bucketsShape,
  histPoints,
  LATENCY_ATTR,
  msToNs,
  slowCounterDef,
} from '../../receiver/kit/ebpf/latency.ts';
import { histFromFields, histogramDef, type Log2Hist } from '../../receiver/kit/ebpf/log2.ts';
import {
  EbpfRuntime,
  eventArgsShape,
  hookAvailability,
  SELF_METRIC_DEFS,
} from '../../receiver/kit/ebpf/runtime.ts';
import type { MetricDef, MetricPoint, Probe, ProbeEvent, ProbeSpec } from '../../receiver/probe/types.ts';
import {
  type MapName,
  NT_EVENT,
  NT_VAL,
  ntEvent,
  type Program,
  type RodataName,
} from './netiftxlat.layout.gen.ts';

export const OBJECT = new URL('./netiftxlat.bpf.o', import.meta.url);

const argsSchema = z.object({
  ...eventArgsShape,
  ...bucketsShape,
  /** A qdisc wait or driver time longer than this raises a `podnet.netif.tx.slow` event, ms. */
  slowThresholdMs: z.number().positive().default(100),
  /** Thresholds of the `*.slow.count` counters, ms. */
  counterThresholdsMs: z.tuple([z.number().positive(), z.number().positive()]).default([1, 100]),
  /** Packets tracked between enqueue and dequeue on devices with a qdisc (LRU beyond this). */
  maxQueued: z.number().int().min(1024).default(65536),
});
export type NetifTxLatArgs = z.infer<typeof argsSchema>;

export const M = {
  qdiscWait: 'podnet.netif.tx.qdisc.wait',
  driverTime: 'podnet.netif.tx.driver.duration',
  qdiscSlow: 'podnet.netif.tx.qdisc.slow.count',
  driverSlow: 'podnet.netif.tx.driver.slow.count',
} as const;
export const EVENT = 'podnet.netif.tx.slow';
export const EVENT_TYPES = { 1: 'NETIFTXLAT_QDISC', 2: 'NETIFTXLAT_XMIT' } as const;

const metrics: MetricDef[] = [
  histogramDef(
    M.qdiscWait,
    'Time a packet spent in the transmit queueing discipline of an interface of the pod: qdisc:qdisc_enqueue → net:net_dev_start_xmit. A packet that did not wait in a qdisc (interfaces without one — noqueue — or the bypass of an empty qdisc) counts as 0.',
  ),
  histogramDef(
    M.driverTime,
    "Time the driver's transmit function took for a packet: net:net_dev_start_xmit → net:net_dev_xmit.",
  ),
  slowCounterDef(
    M.qdiscSlow,
    '{packet}',
    'Packets whose qdisc wait exceeded the threshold (KubeSkoop qdiscslow100ms).',
    [],
  ),
  slowCounterDef(
    M.driverSlow,
    '{packet}',
    'Packets whose driver transmit time exceeded the threshold (KubeSkoop netdevslow100ms).',
    [],
  ),
  ...SELF_METRIC_DEFS,
];

const PROGRAMS = ['nt_enqueue', 'nt_start_xmit', 'nt_xmit'] as const satisfies Program[];
const HIST: MapName = 'nt_hist';

/** Event record (netiftxlat.bpf.c struct nt_event, 80 bytes). */
export function decodeTxSlow(
  view: DataView,
  o: number,
): Omit<ProbeEvent, 'timeUnixNano' | 'netns'> & { rawNetns: number } {
  const type = pnEventHdr.type(view, o + NT_EVENT.hdr);
  const lat = Number(ntEvent.latency_ns(view, o));
  const ifindex = ntEvent.ifindex(view, o);
  const len = ntEvent.len(view, o);
  const t = readTuple(view, o + NT_EVENT.tuple);
  const rawNetns = ntEvent.raw_netns(view, o);
  const attributes: Record<string, string | number> = {
    [LATENCY_ATTR]: lat / 1e9,
    'podnet.interface.index': ifindex,
    'podnet.packet.size': len,
  };
  packetAttributes(t, attributes);
  return { name: EVENT, type: EVENT_TYPES[type as 1] ?? `NETIFTXLAT_${type}`, attributes, rawNetns };
}

/**
 * The kernel writes only qdisc waits above 0 (netiftxlat.bpf.c nt_xmit); every packet is recorded in the
 * driver histogram at the same hook, so the packets that did not wait in a qdisc are the difference.
 */
export function withZeroWaits(qdisc: Log2Hist, packets: number): Log2Hist {
  const zero = packets - qdisc.count;
  if (zero <= 0) return qdisc;
  return { ...qdisc, slots: qdisc.slots.map((v, i) => (i === 0 ? v + zero : v)), count: qdisc.count + zero };
}

export const netiftxlatProbe: ProbeSpec<NetifTxLatArgs> = {
  name: 'netiftxlat',
  description:
    'Transmit latency at the device layer per pod: qdisc wait (qdisc_enqueue → net_dev_start_xmit, 0 without a qdisc) and driver time (start_xmit → net_dev_xmit) as in-kernel log2 histograms, with slow-transmit events.',
  source: 'ebpf',
  defaultEnabled: false,
  metrics,
  events: [
    {
      name: EVENT,
      description:
        'A packet waited in a qdisc (NETIFTXLAT_QDISC) or in the driver (NETIFTXLAT_XMIT) longer than the threshold: interface index, packet tuple (qdisc only: after the driver returned the packet may be gone), size and the latency in seconds.',
      severity: 'WARN',
      attributes: [
        LATENCY_ATTR,
        'podnet.interface.index',
        'podnet.packet.size',
        'network.type',
        'network.transport',
        'source.address',
        'source.port',
        'destination.address',
        'destination.port',
      ],
      types: Object.values(EVENT_TYPES),
      enabled: true,
    },
  ],
  args: argsSchema,
  async availability() {
    return hookAvailability(
      OBJECT,
      PROGRAMS.map((p) => [p, `${p}_raw`]),
    );
  },
  kernel: () =>
    kernelRequirement(
      OBJECT,
      PROGRAMS.map((p) => [p, `${p}_raw`]),
      {},
      [],
    ),
  async create(ctx, args) {
    const t = args.counterThresholdsMs;
    const rt = EbpfRuntime.open({
      probe: 'netiftxlat',
      object: OBJECT,
      ctx,
      args,
      rodata: {
        cfg_slow_ns: msToNs(args.slowThresholdMs),
        cfg_t0_ns: msToNs(t[0]),
        cfg_t1_ns: msToNs(t[1]),
      } satisfies Partial<Record<RodataName, unknown>>,
      maxEntries: { nt_queued: args.maxQueued },
      counterMaps: [HIST],
      // netiftxlat.bpf.c nt_hist_fast: one value (the netns key alone) per slot
      slotted: { [HIST]: { fast: 'nt_hist_fast' satisfies MapName, variants: [Buffer.alloc(4)] } },
      fallbacks: Object.fromEntries(PROGRAMS.map((p) => [p, `${p}_raw`])),
      decode: (rec) => {
        const { rawNetns, ...e } = decodeTxSlow(rec.view, rec.offset);
        if (rec.header.netns === 0 && rawNetns) {
          (e.attributes as Record<string, number>)['podnet.netns.origin_inode'] = rawNetns;
        }
        return { ...e, netns: rec.header.netns, timeUnixNano: rec.timeUnixNano };
      },
    });
    const probe: Probe<NetifTxLatArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        // one value per netns: the qdisc histogram's u64 fields, then the driver histogram's
        for (const e of rt.counterEntries(HIST)) {
          const common = { netns: e.netns, attributes: {}, thresholdsMs: t, range: args.buckets };
          const driver = histFromFields(e.values, NT_VAL.driver / 8);
          histPoints(out, withZeroWaits(histFromFields(e.values, NT_VAL.qdisc / 8), driver.count), {
            ...common,
            histogram: M.qdiscWait,
            counter: M.qdiscSlow,
          });
          histPoints(out, driver, {
            ...common,
            histogram: M.driverTime,
            counter: M.driverSlow,
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
