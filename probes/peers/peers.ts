// peers (off by default: the one switch for per-peer counters): resets, retransmits and drops per (pod,
// peer Service or workload), answering "which destination is this pod failing to reach". Counted from the
// events as they reach the pipeline, after peer resolution (receiver/peers/counters.ts): the kernel's
// per-(netns, type) event rate limit applies, so a burst above it is undercounted here while the probes'
// own counters (podnet.tcp.reset.count, ...) stay exact; set the probes' `rateLimit: 0` for exact
// per-peer counts. Keys per metric are bounded by `cardinality_limit`; the rest is counted in
// podnet.peer.overflow.
import { z } from 'zod';
import { ATTR_PODNET_METRIC_NAME } from '../../receiver/otel/semconv.ts';
import { PEER_COUNTED, PEER_COUNTER_ATTRIBUTES } from '../../receiver/peers/counters.ts';
import type { MetricDef, MetricPoint, Probe, ProbeSpec } from '../../receiver/probe/types.ts';

const argsSchema = z.object({});
export type PeersArgs = z.infer<typeof argsSchema>;

const what: Record<string, string> = {
  'podnet.tcp.reset': 'TCP resets (podnet.tcp.reset events)',
  'podnet.tcp.retransmit': 'TCP retransmits (podnet.tcp.retransmit events)',
  'podnet.packet.drop': 'kernel packet drops (podnet.packet.drop events)',
};
export const OVERFLOW = 'podnet.peer.overflow';

const metrics: MetricDef[] = [
  ...Object.entries(PEER_COUNTED).map(
    ([ev, name]): MetricDef => ({
      name,
      kind: 'counter',
      unit: '{event}',
      description: `${what[ev]} of the pod per peer: its Service when it has one, else its workload (pods), node or netns. Counts events after the kernel rate limit.`,
      attributes: [...PEER_COUNTER_ATTRIBUTES],
      enabled: true,
    }),
  ),
  {
    name: OVERFLOW,
    kind: 'counter',
    unit: '{event}',
    description: 'Events not counted per peer because the metric had cardinality_limit peer keys already.',
    attributes: [ATTR_PODNET_METRIC_NAME],
    enabled: true,
    scope: 'node',
  },
];

export const peersProbe: ProbeSpec<PeersArgs> = {
  name: 'peers',
  description:
    'Per-peer counters (opt-in): resets, retransmits and drops per pod and peer Service or workload, from the events.',
  source: 'events',
  defaultEnabled: false,
  metrics,
  events: [],
  args: argsSchema,
  async availability() {
    return { available: true };
  },
  async create(ctx) {
    if (!ctx.peers) throw new Error('peer resolution is off (peers.enabled: false)');
    const counting = ctx.peers.startCounting();
    let closed = false;
    const probe: Probe<PeersArgs> = {
      async collect(entities) {
        counting.prune(new Set(entities.map((e) => e.netnsInode)));
        const out: MetricPoint[] = counting.points();
        for (const [metric, n] of counting.overflow)
          out.push({ metric: OVERFLOW, attributes: { [ATTR_PODNET_METRIC_NAME]: metric }, value: n });
        return out;
      },
      status() {
        return closed ? { state: 'stopped' } : { state: 'running' };
      },
      async close() {
        closed = true;
        counting.stop();
      },
    };
    return probe;
  },
};
