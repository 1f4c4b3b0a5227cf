// softnet: the host's per-CPU packet-processing counters from `/proc/net/softnet_stat` (the same
// host-wide table in every netns, hence `scope: 'node'`): packets processed, packets dropped because
// the CPU's input backlog was full (`net.core.netdev_max_backlog`), and time squeezes (net_rx_action
// ran out of budget or time with work left). Summed over CPUs by default, per CPU with `perCpu: true`
// (attribute `cpu.logical_number`). The kernel keeps these as u32 per CPU: they wrap at 2^32.

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Attributes, MetricDef, MetricPoint, ProbeSpec } from '../../receiver/probe/types.ts';
import type { SoftnetRow } from '../../receiver/procfs/parse.ts';
import { parseSoftnet } from '../../receiver/procfs/parse.ts';
import { createProcfsProbe, metricFilter } from '../../receiver/procfs/probe-kit.ts';
import { procfsAvailability } from '../../receiver/procfs/read.ts';

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

export function softnetPoints(
  text: string,
  perCpu: boolean,
  wanted: (m: string) => boolean,
  out: MetricPoint[],
): void {
  const rows = parseSoftnet(text, 'net/softnet_stat');
  for (const [metric, key] of FIELDS) {
    if (!wanted(metric)) continue;
    if (perCpu) {
      for (const r of rows) out.push({ metric, attributes: attrsFor(r.cpu), value: r[key] });
    } else {
      let sum = 0;
      for (const r of rows) sum += r[key];
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
    let wanted = metricFilter(SOFTNET_METRICS, args.metrics);
    return createProcfsProbe<SoftnetArgs>({
      reconfigure: (a) => {
        current = a;
        wanted = metricFilter(SOFTNET_METRICS, a.metrics);
      },
      log: ctx.log.child({ probe: 'softnet' }),
      concurrency: 1,
      collectNode: (out) =>
        softnetPoints(
          readFileSync('/proc/thread-self/net/softnet_stat', 'latin1'),
          current.perCpu,
          wanted,
          out,
        ),
    });
  },
};
