// kernellatency: time packets spend in the kernel's protocol stack per pod (netns of the socket), as log2
// histograms measured in the kernel (kernellatency.bpf.c; hooks and limits in docs/probes-latency.md):
//   rx = the packet enters the stack (net:netif_receive_skb) → it is queued on a socket (sock:sk_data_ready);
//   tx = TCP's departure timestamp (skb->tstamp, set at transmit) → the device layer (net:net_dev_queue).
// Slow events RXKERNEL_SLOW / TXKERNEL_SLOW over a threshold (default 10 ms, as KubeSkoop).
import { z } from 'zod';
import { dataView } from '../../receiver/bpf/events.ts';
import { pnEventHdr } from '../../receiver/bpf/pn.layout.gen.ts';
import { packetAttributes, transportName } from '../../receiver/kit/ebpf/decode.ts';
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
  KL_EVENT,
  KL_KEY,
  KL_KEY_SIZE,
  klEvent,
  klKey,
  type MapName,
  type Program,
  type RodataName,
} from './kernellatency.layout.gen.ts';

export const OBJECT = new URL('./kernellatency.bpf.o', import.meta.url);

/** The kl_key of each variant of a netns slot: rx TCP, rx UDP, tx TCP (kernellatency.bpf.c kl_hist_fast). */
const SLOT_KEYS = slotKeys(KL_KEY_SIZE, KL_KEY.dir, KL_KEY.l4proto, [
  [0, 6],
  [0, 17],
  [1, 6],
]);

const argsSchema = z.object({
  ...eventArgsShape,
  ...bucketsShape,
  /** Kernel time longer than this raises a `podnet.kernel.slow` event, ms (KubeSkoop: 10). */
  slowThresholdMs: z.number().positive().default(10),
  /** Thresholds of the `*.slow.count` counters, ms (KubeSkoop rxslow / rxslow100ms). */
  counterThresholdsMs: z.tuple([z.number().positive(), z.number().positive()]).default([10, 100]),
});
export type KernelLatencyArgs = z.infer<typeof argsSchema>;

export const M = {
  rx: 'podnet.kernel.rx.duration',
  tx: 'podnet.kernel.tx.duration',
  rxSlow: 'podnet.kernel.rx.slow.count',
  txSlow: 'podnet.kernel.tx.slow.count',
} as const;
export const EVENT = 'podnet.kernel.slow';
export const EVENT_TYPES = { 1: 'RXKERNEL_SLOW', 2: 'TXKERNEL_SLOW' } as const;

const metrics: MetricDef[] = [
  histogramDef(
    M.rx,
    'Time a received packet spent in the protocol stack: entry (net:netif_receive_skb) to being queued on a socket (sock:sk_data_ready). One packet per receive batch; packets deferred to the socket backlog are not measured.',
    ['network.transport'],
  ),
  histogramDef(
    M.tx,
    "Time a sent TCP segment spent between TCP's transmit (its departure timestamp) and the device layer (net:net_dev_queue): IP output, netfilter, routing, neighbour.",
    ['network.transport'],
  ),
  slowCounterDef(
    M.rxSlow,
    '{packet}',
    'Received packets whose stack time exceeded the threshold (KubeSkoop rxslow / rxslow100ms).',
    ['network.transport'],
  ),
  slowCounterDef(
    M.txSlow,
    '{packet}',
    'Sent packets whose stack time exceeded the threshold (KubeSkoop txslow / txslow100ms).',
    ['network.transport'],
  ),
  ...SELF_METRIC_DEFS,
];

const PROGRAMS = ['kl_rx_enter', 'kl_napi_poll', 'kl_rx_socket', 'kl_tx_device'] as const satisfies Program[];
const HIST: MapName = 'kl_hist';

/** Event record (kernellatency.bpf.c struct kl_event; layout generated from the object). */
export function decodeKernelSlow(
  view: DataView,
  o: number,
): Omit<ProbeEvent, 'timeUnixNano' | 'netns'> & { rawNetns: number } {
  const type = pnEventHdr.type(view, o + KL_EVENT.hdr);
  const lat = Number(klEvent.latency_ns(view, o));
  const ifindex = klEvent.ifindex(view, o);
  const len = klEvent.len(view, o);
  const t = readTupleUnmapped(view, o + KL_EVENT.tuple);
  const rawNetns = klEvent.raw_netns(view, o);
  const attributes: Record<string, string | number> = {
    [LATENCY_ATTR]: lat / 1e9,
    'network.io.direction': type === 1 ? 'receive' : 'transmit',
    'podnet.packet.size': len,
  };
  if (ifindex) attributes['podnet.interface.index'] = ifindex;
  packetAttributes(t, attributes);
  return { name: EVENT, type: EVENT_TYPES[type as 1] ?? `KERNELLAT_${type}`, attributes, rawNetns };
}

export const kernellatencyProbe: ProbeSpec<KernelLatencyArgs> = {
  name: 'kernellatency',
  description:
    'Time packets spend in the kernel protocol stack per pod: receive (stack entry → socket) and TCP transmit (departure → device) as in-kernel log2 histograms, with RXKERNEL_SLOW / TXKERNEL_SLOW events.',
  source: 'ebpf',
  defaultEnabled: false,
  metrics,
  events: [
    {
      name: EVENT,
      description:
        'A packet spent longer than the threshold in the kernel stack on receive (RXKERNEL_SLOW) or transmit (TXKERNEL_SLOW): packet tuple, interface index (rx: the receiving device), size and the latency in seconds.',
      severity: 'WARN',
      attributes: [
        LATENCY_ATTR,
        'network.io.direction',
        'podnet.packet.size',
        'podnet.interface.index',
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
      ['the rx socket stage needs sk_data_ready (after 6.1)'],
    ),
  async create(ctx, args) {
    const t = args.counterThresholdsMs;
    const rt = EbpfRuntime.open({
      probe: 'kernellatency',
      object: OBJECT,
      ctx,
      args,
      rodata: {
        cfg_slow_ns: msToNs(args.slowThresholdMs),
        cfg_t0_ns: msToNs(t[0]),
        cfg_t1_ns: msToNs(t[1]),
      } satisfies Partial<Record<RodataName, unknown>>,
      counterMaps: [HIST],
      slotted: { [HIST]: { fast: 'kl_hist_fast' satisfies MapName, variants: SLOT_KEYS } },
      fallbacks: Object.fromEntries(PROGRAMS.map((p) => [p, `${p}_raw`])),
      // hooks shared with socketlatency (and dns): one dispatch per hook (receiver/bpf/hook-chain.ts)
      chained: {
        kl_rx_socket: 'kl_next_rx_socket',
        kl_tx_device: 'kl_next_tx_device',
      } satisfies Partial<Record<Program, MapName>>,
      decode: (rec) => {
        const { rawNetns, ...e } = decodeKernelSlow(rec.view, rec.offset);
        if (rec.header.netns === 0 && rawNetns) {
          (e.attributes as Record<string, number>)['podnet.netns.origin_inode'] = rawNetns;
        }
        return { ...e, netns: rec.header.netns, timeUnixNano: rec.timeUnixNano };
      },
    });
    const probe: Probe<KernelLatencyArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        for (const e of histEntries(rt, HIST)) {
          const key = dataView(e.key);
          const rx = klKey.dir(key, 0) === 0;
          histPoints(out, e.hist, {
            netns: e.netns,
            attributes: { 'network.transport': transportName(klKey.l4proto(key, 0)) },
            histogram: rx ? M.rx : M.tx,
            counter: rx ? M.rxSlow : M.txSlow,
            thresholdsMs: t,
            range: args.buckets,
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
