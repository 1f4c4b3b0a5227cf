// The eBPF runtime's self-telemetry: the pn_stats counter indexes the kernel side writes and the metric
// names and definitions they are exported under. Its own file: probe metric lists and tests need the
// names without loading the runtime. runtime.ts re-exports them.
import type { MetricDef } from '../../probe/types.ts';

/** pn_stats indexes (probes/include/pn_event.h enum pn_stat). */
export const PN_STAT = { ringLost: 0, suppressed: 1, stackFailed: 2, counterFull: 3 } as const;

export const SELF_METRIC = {
  lost: 'podnet.ebpf.events.lost',
  suppressed: 'podnet.ebpf.events.suppressed',
  read: 'podnet.ebpf.events.read',
  stackFailures: 'podnet.ebpf.stack.failures',
  counterFull: 'podnet.ebpf.counter.full',
} as const;

const selfDef = (name: string, unit: string, description: string): MetricDef => ({
  name,
  kind: 'counter',
  unit,
  description,
  attributes: ['podnet.probe.name'],
  enabled: true,
  scope: 'node',
});

/** Self-telemetry metric definitions; add them to each eBPF probe's `metrics`. */
export const SELF_METRIC_DEFS: readonly MetricDef[] = [
  selfDef(
    SELF_METRIC.lost,
    '{event}',
    'Events lost in the kernel because the ring buffer was full (counted at bpf_ringbuf_reserve).',
  ),
  selfDef(
    SELF_METRIC.suppressed,
    '{event}',
    'Events not sent because of the per-(netns, type) rate limit in the kernel; the counters still count them.',
  ),
  selfDef(SELF_METRIC.read, '{event}', 'Event records read from the ring buffer by the receiver.'),
  selfDef(
    SELF_METRIC.stackFailures,
    '{event}',
    'Events sent without a stack because bpf_get_stackid failed (stack map full, ...).',
  ),
  selfDef(
    SELF_METRIC.counterFull,
    '{occurrence}',
    'Occurrences not counted because a counter map was full (should stay 0).',
  ),
];
