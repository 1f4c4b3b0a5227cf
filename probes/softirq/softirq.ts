// softirq: per CPU and vector, the delay from raising a softirq to its handler starting (irq:softirq_raise
// → irq:softirq_entry) and the handler's run time (softirq_entry → softirq_exit), as log2 histograms kept
// per CPU in the kernel (softirq.bpf.c). Node-level signals (scope `node`): softirqs belong to a CPU, not
// to a pod. `podnet.softirq.slow` events (KubeSkoop SOFTIRQ_SCHED_SLOW / SOFTIRQ_SCHED_100MS /
// SOFTIRQ_EXCUTE_SLOW / SOFTIRQ_EXCUTE_100MS) carry the CPU and the task that was running.
import { z } from 'zod';
import { possibleCpus } from '../../receiver/bpf/maps.ts';
import { pnEventHdr } from '../../receiver/bpf/pn.layout.gen.ts';
import { kernelRequirement } from '../../receiver/kit/ebpf/kernels.ts';
import {
  bucketsShape,
  histPoints,
  LATENCY_ATTR,
  msToNs,
  THRESHOLD_ATTR,
} from '../../receiver/kit/ebpf/latency.ts';
import { addHists, HIST_BYTES, histFromBytes, histogramDef } from '../../receiver/kit/ebpf/log2.ts';
import {
  EbpfRuntime,
  eventArgsShape,
  hookAvailability,
  SELF_METRIC_DEFS,
} from '../../receiver/kit/ebpf/runtime.ts';
import type { MetricDef, MetricPoint, Probe, ProbeEvent, ProbeSpec } from '../../receiver/probe/types.ts';
import { type MapName, type Program, type RodataName, SI_EVENT, siEvent } from './softirq.layout.gen.ts';

export const OBJECT = new URL('./softirq.bpf.o', import.meta.url);

/** Kernel softirq vector names, by number (include/linux/interrupt.h). */
export const VECTORS = [
  'hi',
  'timer',
  'net_tx',
  'net_rx',
  'block',
  'irq_poll',
  'tasklet',
  'sched',
  'hrtimer',
  'rcu',
] as const;
export type Vector = (typeof VECTORS)[number];

const argsSchema = z.object({
  ...eventArgsShape,
  ...bucketsShape,
  /** Vectors to measure (KubeSkoop `softirq-types`), or `all`. */
  vectors: z.union([z.literal('all'), z.array(z.enum(VECTORS)).min(1)]).default(['net_rx', 'net_tx']),
  /** `*_SLOW` events and the first counter threshold, ms (KubeSkoop: 10). */
  slowThresholdMs: z.number().positive().default(10),
  /** `*_100MS` events and the second counter threshold, ms. */
  slow100ThresholdMs: z.number().positive().default(100),
  /** One series per CPU (attribute `cpu.logical_number`); false sums the CPUs. */
  perCpu: z.boolean().default(true),
});
export type SoftirqArgs = z.infer<typeof argsSchema>;

export const M = {
  delay: 'podnet.softirq.delay',
  duration: 'podnet.softirq.duration',
  delaySlow: 'podnet.softirq.delay.slow.count',
  durationSlow: 'podnet.softirq.duration.slow.count',
} as const;
export const EVENT = 'podnet.softirq.slow';
export const EVENT_TYPES = {
  1: 'SOFTIRQ_SCHED_SLOW',
  2: 'SOFTIRQ_SCHED_100MS',
  3: 'SOFTIRQ_EXCUTE_SLOW',
  4: 'SOFTIRQ_EXCUTE_100MS',
} as const;

const ATTRS = ['podnet.softirq.vector', 'cpu.logical_number'];
const node = (d: MetricDef): MetricDef => ({ ...d, scope: 'node' });
const metrics: MetricDef[] = [
  node(
    histogramDef(
      M.delay,
      'Delay from raising a softirq (irq:softirq_raise, first raise while pending) to its handler starting (irq:softirq_entry), per CPU and vector.',
      ATTRS,
    ),
  ),
  node(
    histogramDef(
      M.duration,
      'Run time of a softirq handler (irq:softirq_entry → irq:softirq_exit), per CPU and vector.',
      ATTRS,
    ),
  ),
  node({
    name: M.delaySlow,
    kind: 'counter',
    unit: '{softirq}',
    description:
      'Softirqs whose raise-to-entry delay exceeded the threshold (KubeSkoop schedslow 10 ms / schedslow100ms).',
    attributes: [...ATTRS, THRESHOLD_ATTR],
    enabled: true,
  }),
  node({
    name: M.durationSlow,
    kind: 'counter',
    unit: '{softirq}',
    description:
      'Softirq handlers that ran longer than the threshold (KubeSkoop excuteslow 10 ms / excuteslow100ms).',
    attributes: [...ATTRS, THRESHOLD_ATTR],
    enabled: true,
  }),
  ...SELF_METRIC_DEFS,
];

const PROGRAMS = ['si_raise', 'si_entry', 'si_exit'] as const satisfies Program[];
const HIST: MapName = 'si_hist';

export function vectorMask(v: SoftirqArgs['vectors']): number {
  if (v === 'all') return (1 << VECTORS.length) - 1;
  let m = 0;
  for (const name of v) m |= 1 << VECTORS.indexOf(name);
  return m;
}

/** Event record (softirq.bpf.c struct si_event, 56 bytes). */
export function decodeSoftirq(view: DataView, o: number): Omit<ProbeEvent, 'timeUnixNano' | 'netns'> {
  const type = pnEventHdr.type(view, o + SI_EVENT.hdr);
  const lat = Number(siEvent.latency_ns(view, o));
  const cpu = siEvent.cpu(view, o);
  const vec = siEvent.vec(view, o);
  const pid = siEvent.pid(view, o);
  const tid = siEvent.tid(view, o);
  const comm = siEvent.comm(view, o);
  const attributes: Record<string, string | number> = {
    [LATENCY_ATTR]: lat / 1e9,
    'cpu.logical_number': cpu,
    'podnet.softirq.vector': VECTORS[vec] ?? `vec_${vec}`,
    'podnet.task.comm': comm,
    'process.pid': pid,
    'thread.id': tid,
  };
  return { name: EVENT, type: EVENT_TYPES[type as 1] ?? `SOFTIRQ_${type}`, attributes };
}

export const softirqProbe: ProbeSpec<SoftirqArgs> = {
  name: 'softirq',
  description:
    'Softirq raise-to-entry delay and run time per CPU and vector (net_rx, net_tx by default) as in-kernel log2 histograms, with slow-softirq events naming the CPU and the interrupted task.',
  source: 'ebpf',
  defaultEnabled: false,
  metrics,
  events: [
    {
      name: EVENT,
      description:
        'A softirq started too late after being raised (SOFTIRQ_SCHED_*) or ran too long (SOFTIRQ_EXCUTE_*): CPU, vector, the running task and the latency in seconds. Node-level (netns 0).',
      severity: 'WARN',
      attributes: [
        LATENCY_ATTR,
        'cpu.logical_number',
        'podnet.softirq.vector',
        'podnet.task.comm',
        'process.pid',
        'thread.id',
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
    const mask = vectorMask(args.vectors);
    const t: [number, number] = [args.slowThresholdMs, args.slow100ThresholdMs];
    const rt = EbpfRuntime.open({
      probe: 'softirq',
      object: OBJECT,
      ctx,
      args,
      watchAll: true,
      rodata: {
        cfg_vec_mask: mask,
        cfg_slow_ns: msToNs(t[0]),
        cfg_slow100_ns: msToNs(t[1]),
      } satisfies Partial<Record<RodataName, unknown>>,
      fallbacks: {
        si_raise: 'si_raise_raw',
        si_entry: 'si_entry_raw',
        si_exit: 'si_exit_raw',
      } satisfies Partial<Record<Program, Program>>,
      decode: (rec) => ({ ...decodeSoftirq(rec.view, rec.offset), netns: 0, timeUnixNano: rec.timeUnixNano }),
    });
    const map = rt.coll.map(HIST);
    const cpus = possibleCpus();
    const stride = Math.ceil(HIST_BYTES / 8) * 8;
    const range = args.buckets;
    const probe: Probe<SoftirqArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        for (const e of map.entries()) {
          const idx = e.key.readUInt32LE(0);
          const vec = idx >> 1;
          if (!(mask & (1 << vec))) continue;
          const phase = idx & 1;
          const vector = VECTORS[vec] ?? `vec_${vec}`;
          const o = {
            histogram: phase === 0 ? M.delay : M.duration,
            counter: phase === 0 ? M.delaySlow : M.durationSlow,
            thresholdsMs: t,
            range,
          };
          if (args.perCpu) {
            for (let c = 0; c < cpus; c++) {
              const h = histFromBytes(e.value, c * stride);
              histPoints(out, h, {
                ...o,
                attributes: { 'podnet.softirq.vector': vector, 'cpu.logical_number': c },
              });
            }
          } else {
            let h = histFromBytes(e.value, 0);
            for (let c = 1; c < cpus; c++) h = addHists(h, histFromBytes(e.value, c * stride));
            histPoints(out, h, { ...o, attributes: { 'podnet.softirq.vector': vector } });
          }
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
