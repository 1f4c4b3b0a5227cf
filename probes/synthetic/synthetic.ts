// A probe that emits configurable test data (a counter, a gauge, a histogram and events) through the same
// interface real probes use. Not in the registry and off by default: tests, benchmarks and demos add it
// with `extraSpecs` (or `podnet run --synthetic`). Source `synthetic`.
import { z } from 'zod';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricPoint, Probe, ProbeContext, ProbeSpec } from '../../receiver/probe/types.ts';

export const syntheticArgs = z.strictObject({
  /** Added to every entity's counter at each collection. */
  counter_step: z.number().int().min(0).default(1),
  /** Value of the gauge. */
  gauge_value: z.number().default(42),
  /** Histogram bucket upper bounds, seconds, ascending. */
  histogram_boundaries: z.array(z.number().positive()).min(1).default([0.001, 0.01, 0.1, 1]),
  /** Events per second, spread over the entities (0 = none). */
  event_rate_per_sec: z.number().min(0).max(1_000_000).default(0),
  /** Event threshold: each synthetic event has a latency; only latencies >= this are emitted. */
  event_threshold_ms: z.number().min(0).default(0),
  /** Also report points for netns 0 (unattributed). */
  unattributed: z.boolean().default(true),
});

export type SyntheticArgs = z.output<typeof syntheticArgs>;

const STACK = [
  'kfree_skb_reason+0x0',
  'nf_hook_slow+0x9c',
  'ip_rcv+0x6f',
  '__netif_receive_skb_one_core+0x84',
];

class SyntheticProbe implements Probe<SyntheticArgs> {
  #args: SyntheticArgs;
  readonly #ctx: ProbeContext;
  readonly #counters = new Map<number, number>();
  readonly #hist = new Map<number, number[]>();
  #timer: NodeJS.Timeout | undefined;
  #carry = 0;
  /** performance.now() of the last tick (or of scheduling): events are owed for the time since. */
  #last = 0;
  #next = 0;
  #seq = 0;
  collections = 0;
  emitted = 0;
  closed = false;

  constructor(ctx: ProbeContext, args: SyntheticArgs) {
    this.#ctx = ctx;
    this.#args = args;
    this.#schedule();
  }

  async collect(entities: readonly Entity[]): Promise<readonly MetricPoint[]> {
    this.collections++;
    const a = this.#args;
    const points: MetricPoint[] = [];
    const netnss = entities.map((e) => e.netnsInode);
    if (a.unattributed) netnss.push(0);
    const seen = new Set(netnss);
    for (const k of this.#counters.keys()) if (!seen.has(k)) this.#counters.delete(k);
    for (const k of this.#hist.keys()) if (!seen.has(k)) this.#hist.delete(k);
    for (const netns of netnss) {
      const c = (this.#counters.get(netns) ?? 0) + a.counter_step;
      this.#counters.set(netns, c);
      points.push({
        metric: 'podnet.synthetic.packet.count',
        netns,
        attributes: { 'network.io.direction': 'receive' },
        value: c,
      });
      points.push({
        metric: 'podnet.synthetic.packet.count',
        netns,
        attributes: { 'network.io.direction': 'transmit' },
        value: 2 * c,
      });
      points.push({ metric: 'podnet.synthetic.queue.length', netns, value: a.gauge_value });
      points.push({ metric: 'podnet.synthetic.disabled.count', netns, value: c });
      const bounds = a.histogram_boundaries;
      let counts = this.#hist.get(netns);
      if (!counts || counts.length !== bounds.length + 1)
        counts = new Array<number>(bounds.length + 1).fill(0);
      // One observation per bucket per collection: easy to assert.
      counts = counts.map((n) => n + 1);
      this.#hist.set(netns, counts);
      const count = counts.reduce((x, y) => x + y, 0);
      const mid = bounds.reduce((x, y) => x + y, 0) / bounds.length;
      points.push({
        metric: 'podnet.synthetic.latency.duration',
        netns,
        value: { boundaries: bounds, counts, sum: count * mid, count },
      });
    }
    points.push({ metric: 'podnet.synthetic.collections', value: this.collections });
    return points;
  }

  status() {
    return {
      state: 'running' as const,
      details: {
        collections: this.collections,
        eventsEmitted: this.emitted,
        eventRatePerSec: this.#args.event_rate_per_sec,
      },
    };
  }

  reconfigure(args: SyntheticArgs): void {
    this.#args = args;
    this.#schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#args.event_rate_per_sec <= 0 || this.closed) return;
    const tickMs = 50;
    this.#last = performance.now();
    this.#timer = setInterval(() => this.#tick(), tickMs);
    this.#timer.unref();
  }

  #tick(): void {
    // Paced by the time that passed, not by the nominal 50 ms: Node reschedules an interval from when its
    // callback starts, so each tick's lateness (a busy event loop, the timer's 1 ms grain) was lost and a
    // loaded process emitted 2–15 % under event_rate_per_sec (benchmarks/suite/events.ts counted that as
    // podnet's). At most 1 s is made up at once (after a stall, not a burst of its whole length).
    const now = performance.now();
    const ms = Math.min(1000, now - this.#last);
    this.#last = now;
    this.#carry += (this.#args.event_rate_per_sec * ms) / 1000;
    const n = Math.floor(this.#carry);
    this.#carry -= n;
    const entities = this.#ctx.entities.entities();
    // One clock read per tick: at high rates a Date.now() and two BigInt conversions per event were a
    // visible part of the generator's own cost, which the event benchmark counts as podnet's.
    const base = BigInt(Date.now()) * 1_000_000n;
    for (let i = 0; i < n; i++) {
      const entity = entities.length > 0 ? entities[this.#next++ % entities.length] : undefined;
      this.#seq++;
      const latencyMs = this.#seq % 200;
      if (latencyMs < this.#args.event_threshold_ms) continue;
      this.emitted++;
      this.#ctx.emit({
        name: 'podnet.synthetic.anomaly',
        type: 'SYNTHETIC_DROP',
        netns: entity?.netnsInode ?? 0,
        timeUnixNano: base + BigInt(this.#seq % 1_000_000),
        attributes: {
          'error.type': 'NETFILTER_DROP',
          'network.transport': 'tcp',
          'source.address': '10.0.0.1',
          'source.port': 40000 + (this.#seq % 1000),
          'destination.address': '10.0.0.2',
          'destination.port': 80,
          'podnet.synthetic.latency_ms': latencyMs,
          'podnet.synthetic.seq': this.#seq,
        },
        stack: STACK,
      });
    }
  }
}

export const syntheticSpec: ProbeSpec<SyntheticArgs> = {
  name: 'synthetic',
  description:
    'Test data through the probe interface: a counter, a gauge, a histogram and events at a configurable rate.',
  source: 'synthetic',
  defaultEnabled: false,
  metrics: [
    {
      name: 'podnet.synthetic.packet.count',
      kind: 'counter',
      unit: '{packet}',
      description:
        'Synthetic cumulative counter: counter_step per collection (receive), twice that (transmit).',
      attributes: ['network.io.direction'],
      enabled: true,
    },
    {
      name: 'podnet.synthetic.queue.length',
      kind: 'gauge',
      unit: '{packet}',
      description: 'Synthetic level: gauge_value.',
      attributes: [],
      enabled: true,
    },
    {
      name: 'podnet.synthetic.latency.duration',
      kind: 'histogram',
      unit: 's',
      description: 'Synthetic distribution: one observation per bucket per collection.',
      attributes: [],
      enabled: true,
    },
    {
      name: 'podnet.synthetic.disabled.count',
      kind: 'counter',
      unit: '{packet}',
      description: 'Synthetic counter that is off by default (tests per-metric enabling).',
      attributes: [],
      enabled: false,
    },
    {
      name: 'podnet.synthetic.collections',
      kind: 'counter',
      unit: '{collection}',
      description: 'Node-scoped synthetic counter: collections so far.',
      attributes: [],
      enabled: true,
      scope: 'node',
    },
  ],
  events: [
    {
      name: 'podnet.synthetic.anomaly',
      description: 'Synthetic packet-drop-like event with a 5-tuple, a drop reason and a kernel stack.',
      severity: 'WARN',
      attributes: [
        'error.type',
        'network.transport',
        'source.address',
        'source.port',
        'destination.address',
        'destination.port',
        'podnet.synthetic.latency_ms',
        'podnet.synthetic.seq',
      ],
      types: ['SYNTHETIC_DROP'],
      enabled: true,
    },
  ],
  args: syntheticArgs,
  async availability() {
    return { available: true };
  },
  async create(ctx, args) {
    return new SyntheticProbe(ctx, args);
  },
};
