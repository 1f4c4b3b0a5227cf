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
  private _args: SyntheticArgs;
  private readonly _ctx: ProbeContext;
  private readonly _counters = new Map<number, number>();
  private readonly _hist = new Map<number, number[]>();
  private _timer: NodeJS.Timeout | undefined;
  private _carry = 0;
  private _next = 0;
  private _seq = 0;
  collections = 0;
  emitted = 0;
  closed = false;

  constructor(ctx: ProbeContext, args: SyntheticArgs) {
    this._ctx = ctx;
    this._args = args;
    this._schedule();
  }

  async collect(entities: readonly Entity[]): Promise<readonly MetricPoint[]> {
    this.collections++;
    const a = this._args;
    const points: MetricPoint[] = [];
    const netnss = entities.map((e) => e.netnsInode);
    if (a.unattributed) netnss.push(0);
    const seen = new Set(netnss);
    for (const k of this._counters.keys()) if (!seen.has(k)) this._counters.delete(k);
    for (const k of this._hist.keys()) if (!seen.has(k)) this._hist.delete(k);
    for (const netns of netnss) {
      const c = (this._counters.get(netns) ?? 0) + a.counter_step;
      this._counters.set(netns, c);
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
      let counts = this._hist.get(netns);
      if (!counts || counts.length !== bounds.length + 1)
        counts = new Array<number>(bounds.length + 1).fill(0);
      // One observation per bucket per collection: easy to assert.
      counts = counts.map((n) => n + 1);
      this._hist.set(netns, counts);
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
        eventRatePerSec: this._args.event_rate_per_sec,
      },
    };
  }

  reconfigure(args: SyntheticArgs): void {
    this._args = args;
    this._schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this._timer) clearInterval(this._timer);
    this._timer = undefined;
  }

  private _schedule(): void {
    if (this._timer) clearInterval(this._timer);
    this._timer = undefined;
    if (this._args.event_rate_per_sec <= 0 || this.closed) return;
    const tickMs = 50;
    this._timer = setInterval(() => this._tick(tickMs), tickMs);
    this._timer.unref();
  }

  private _tick(ms: number): void {
    this._carry += (this._args.event_rate_per_sec * ms) / 1000;
    const n = Math.floor(this._carry);
    this._carry -= n;
    const entities = this._ctx.entities.entities();
    // One clock read per tick: at high rates a Date.now() and two BigInt conversions per event were a
    // visible part of the generator's own cost, which the event benchmark counts as podnet's.
    const base = BigInt(Date.now()) * 1_000_000n;
    for (let i = 0; i < n; i++) {
      const entity = entities.length > 0 ? entities[this._next++ % entities.length] : undefined;
      this._seq++;
      const latencyMs = this._seq % 200;
      if (latencyMs < this._args.event_threshold_ms) continue;
      this.emitted++;
      this._ctx.emit({
        name: 'podnet.synthetic.anomaly',
        type: 'SYNTHETIC_DROP',
        netns: entity?.netnsInode ?? 0,
        timeUnixNano: base + BigInt(this._seq % 1_000_000),
        attributes: {
          'error.type': 'NETFILTER_DROP',
          'network.transport': 'tcp',
          'source.address': '10.0.0.1',
          'source.port': 40000 + (this._seq % 1000),
          'destination.address': '10.0.0.2',
          'destination.port': 80,
          'podnet.synthetic.latency_ms': latencyMs,
          'podnet.synthetic.seq': this._seq,
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
