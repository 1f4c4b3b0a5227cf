// softnet: the host's per-CPU packet-processing counters from `/proc/net/softnet_stat` (the same
// host-wide table in every netns, hence `scope: 'node'`): packets processed, packets dropped because
// the CPU's input backlog was full (`net.core.netdev_max_backlog`), and time squeezes (net_rx_action
// ran out of budget or time with work left). Summed over CPUs by default, per CPU with `perCpu: true`
// (attribute `cpu.logical_number`). The kernel keeps these as u32 per CPU; the probe unwraps them
// (`SoftnetUnwrap`), so the exported counters do not fall back at 2^32.

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { createProcfsProbe, metricFilter } from '../../receiver/kit/procfs.ts';
import type { Attributes, MetricDef, MetricPoint, ProbeSpec } from '../../receiver/probe/types.ts';
import { procfsAvailability } from '../../receiver/procfs/read.ts';
import type { SoftnetRow } from './parse.ts';
import { parseSoftnet } from './parse.ts';

const CPU = ['cpu.logical_number'] as const;

export const SOFTNET_METRICS: readonly MetricDef[] = [
  {
    name: 'podnet.softnet.processed',
    kind: 'counter',
    unit: '{packet}',
    description:
      'Packets processed by the NET_RX softirq (softnet_stat column 1), summed over CPUs or per CPU.',
    attributes: CPU,
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.softnet.dropped',
    kind: 'counter',
    unit: '{packet}',
    description: 'Packets dropped because the per-CPU input backlog was full (netdev_max_backlog; column 2).',
    attributes: CPU,
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.softnet.time_squeeze',
    kind: 'counter',
    unit: '{event}',
    description: 'Times net_rx_action stopped with work left, out of budget or time (column 3).',
    attributes: CPU,
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.softnet.received_rps',
    kind: 'counter',
    unit: '{event}',
    description: 'RPS/RFS inter-processor interrupts received by the CPU (column 10).',
    attributes: CPU,
    enabled: false,
    scope: 'node',
  },
  {
    name: 'podnet.softnet.flow_limit',
    kind: 'counter',
    unit: '{packet}',
    description: 'Packets dropped by the RPS flow limit (column 11).',
    attributes: CPU,
    enabled: false,
    scope: 'node',
  },
  {
    name: 'podnet.softnet.backlog',
    kind: 'gauge',
    unit: '{packet}',
    description: 'Packets waiting in the CPU input and process queues (column 12).',
    attributes: CPU,
    enabled: false,
    scope: 'node',
  },
];

const FIELDS: readonly (readonly [string, keyof SoftnetRow])[] = [
  ['podnet.softnet.processed', 'processed'],
  ['podnet.softnet.dropped', 'dropped'],
  ['podnet.softnet.time_squeeze', 'timeSqueeze'],
  ['podnet.softnet.received_rps', 'receivedRps'],
  ['podnet.softnet.flow_limit', 'flowLimitCount'],
  ['podnet.softnet.backlog', 'backlogLen'],
];

export const softnetArgs = z
  .object({
    /** One series per CPU (attribute `cpu.logical_number`) instead of the sum over CPUs. */
    perCpu: z.boolean().default(false),
    /** Metric names to produce (the pipeline may pass its enabled set); default: all declared. */
    metrics: z.array(z.string()).optional(),
  })
  .strict();
export type SoftnetArgs = z.infer<typeof softnetArgs>;

const cpuAttrs: Attributes[] = [];
function attrsFor(cpu: number): Attributes {
  let a = cpuAttrs[cpu];
  if (!a) {
    a = Object.freeze({ 'cpu.logical_number': cpu });
    if (cpu < 65536) cpuAttrs[cpu] = a;
  }
  return a;
}

const U32 = 2 ** 32;

/**
 * The kernel's per-CPU softnet counters are u32 and wrap (a busy CPU processing 1 Mpps wraps in ~72
 * minutes). Tracking the last raw value per CPU and field turns them into monotonic 64-bit-like values,
 * provided a CPU sees fewer than 2^32 events between two collections.
 */
export class SoftnetUnwrap {
  readonly #state = new Map<number, { last: number; wraps: number }>();

  value(cpu: number, field: number, raw: number): number {
    const k = cpu * 8 + field;
    const st = this.#state.get(k);
    if (!st) {
      this.#state.set(k, { last: raw, wraps: 0 });
      return raw;
    }
    if (raw < st.last) st.wraps++;
    st.last = raw;
    return st.wraps * U32 + raw;
  }
}

export function softnetPoints(
  text: string,
  perCpu: boolean,
  wanted: (m: string) => boolean,
  out: MetricPoint[],
  unwrap?: SoftnetUnwrap,
): void {
  const rows = parseSoftnet(text, 'net/softnet_stat');
  for (let f = 0; f < FIELDS.length; f++) {
    const [metric, key] = FIELDS[f]!;
    if (!wanted(metric)) continue;
    const counter = key !== 'backlogLen';
    const v = (r: SoftnetRow): number => (unwrap && counter ? unwrap.value(r.cpu, f, r[key]) : r[key]);
    if (perCpu) {
      for (const r of rows) out.push({ metric, attributes: attrsFor(r.cpu), value: v(r) });
    } else {
      let sum = 0;
      for (const r of rows) sum += v(r);
      out.push({ metric, value: sum });
    }
  }
}

export const softnetProbe: ProbeSpec<SoftnetArgs> = {
  name: 'softnet',
  description:
    'Host NET_RX softirq counters from /proc/net/softnet_stat: processed, dropped (backlog full), time_squeeze; summed or per CPU.',
  source: 'procfs',
  defaultEnabled: true,
  metrics: SOFTNET_METRICS,
  events: [],
  args: softnetArgs,
  async availability() {
    return procfsAvailability(['net/softnet_stat']);
  },
  async create(ctx, args) {
    let current = args;
    let wanted = metricFilter(SOFTNET_METRICS, args.metrics, ctx);
    const unwrap = new SoftnetUnwrap();
    return createProcfsProbe<SoftnetArgs>({
      reconfigure: (a) => {
        current = a;
        wanted = metricFilter(SOFTNET_METRICS, a.metrics, ctx);
      },
      log: ctx.log.child({ probe: 'softnet' }),
      concurrency: 1,
      collectNode: (out) =>
        softnetPoints(
          readFileSync('/proc/thread-self/net/softnet_stat', 'latin1'),
          current.perCpu,
          wanted,
          out,
          unwrap,
        ),
    });
  },
};
