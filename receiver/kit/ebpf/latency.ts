// Pieces the latency probes share on top of the eBPF kit (runtime.ts): threshold labels, the "slow"
// counter defs, the latency attribute on events, and reading a per-CPU hash of pn_hist keyed by (netns, ...).
import { z } from 'zod';
import { PN_TUPLE } from '../../bpf/pn.layout.gen.ts';
import type { Attributes, MetricDef, MetricPoint } from '../../probe/types.ts';
import { readTuple, type Tuple } from './decode.ts';
import { type BucketRange, histFromFields, type Log2Hist, toHistogramValue } from './log2.ts';
import type { EbpfRuntime } from './runtime.ts';

/** Event attribute: the measured latency, seconds. */
export const LATENCY_ATTR = 'podnet.latency.duration';
/** Counter attribute: the threshold a latency exceeded (`1ms`, `100ms`). */
export const THRESHOLD_ATTR = 'podnet.latency.threshold';

/** `1ms`, `100ms`, `2.5ms`, `1s`. */
export function thresholdLabel(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export const msToNs = (ms: number): bigint => BigInt(Math.round(ms * 1e6));

/** Log2 bucket range of the exported histograms (exponents of 2 ns). */
export const bucketsShape = {
  /** Histogram bucket bounds are 2^lo … 2^hi ns (default 2^10 ≈ 1 µs … 2^35 ≈ 34 s). */
  buckets: z
    .object({
      lo: z.number().int().min(1).max(39).default(10),
      hi: z.number().int().min(2).max(40).default(35),
    })
    .refine((b) => b.lo < b.hi, 'lo must be below hi')
    .default({ lo: 10, hi: 35 }),
};

export function slowCounterDef(
  name: string,
  unit: string,
  description: string,
  attributes: readonly string[],
): MetricDef {
  return {
    name,
    kind: 'counter',
    unit,
    description,
    attributes: [...attributes, THRESHOLD_ATTR],
    enabled: true,
  };
}

export interface HistEntry {
  readonly key: Buffer;
  readonly netns: number;
  readonly hist: Log2Hist;
}

/** Entries of a per-CPU hash of pn_hist whose key starts with a u32 netns, summed over CPUs. */
/**
 * The keys a fast twin's variants stand for (probes/include/pn_slot.bpf.h): a `size`-byte key with the
 * netns 0, `dir` at `dirAt` and the transport at `protoAt`, one per [dir, transport] in kernel order.
 */
export function slotKeys(
  size: number,
  dirAt: number,
  protoAt: number,
  variants: readonly (readonly [number, number])[],
): Buffer[] {
  return variants.map(([dir, proto]) => {
    const k = Buffer.alloc(size);
    k.writeUInt8(dir, dirAt);
    k.writeUInt8(proto, protoAt);
    return k;
  });
}

export function histEntries(rt: EbpfRuntime, map: string): HistEntry[] {
  return rt.counterEntries(map).map((e) => ({ key: e.key, netns: e.netns, hist: histFromFields(e.values) }));
}

/** Histogram point plus the two threshold counters of one kernel histogram. */
export function histPoints(
  out: MetricPoint[],
  h: Log2Hist,
  o: {
    readonly netns?: number;
    readonly attributes: Attributes;
    readonly histogram: string;
    readonly counter: string;
    readonly thresholdsMs: readonly [number, number];
    readonly range: BucketRange;
  },
): void {
  const base = o.netns === undefined ? {} : { netns: o.netns };
  out.push({ ...base, metric: o.histogram, attributes: o.attributes, value: toHistogramValue(h, o.range) });
  for (let i = 0; i < 2; i++) {
    out.push({
      ...base,
      metric: o.counter,
      attributes: { ...o.attributes, [THRESHOLD_ATTR]: thresholdLabel(o.thresholdsMs[i]!) },
      value: h.over[i]!,
    });
  }
}

/**
 * A `struct pn_tuple` at `offset`, with IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack
 * socket shows for IPv4 peers) turned into plain IPv4: the connection is IPv4 on the wire.
 */
export function readTupleUnmapped(view: DataView, offset: number): Tuple {
  const t = readTuple(view, offset);
  if (t.family !== 10) return t;
  const mapped = (o: number) => {
    for (let i = 0; i < 10; i++) if (view.getUint8(o + i) !== 0) return false;
    return view.getUint8(o + 10) === 0xff && view.getUint8(o + 11) === 0xff;
  };
  const s = offset + PN_TUPLE.saddr;
  const d = offset + PN_TUPLE.daddr;
  if (!mapped(s) || !mapped(d)) return t;
  const v4 = (o: number) => [12, 13, 14, 15].map((i) => view.getUint8(o + i)).join('.');
  return { ...t, family: 2, saddr: v4(s), daddr: v4(d) };
}
