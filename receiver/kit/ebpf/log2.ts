// Kernel log2 latency histograms (probes/include/pn_hist.bpf.h) → OTel explicit-bucket histograms in
// seconds. Shared by the latency probes (socketlatency, softirq, netiftxlat, kernellatency).
//
// Kernel side: slot i counts durations in [2^i, 2^(i+1)) ns (slot 0 also holds 0, the last slot everything
// longer), plus the exact sum (ns), count and two exact threshold counters. Here: boundaries are powers of
// two in ns converted to seconds, 2^lo … 2^hi ns (default 2^10 ns ≈ 1.02 µs … 2^35 ns ≈ 34.4 s); slots
// below fold into the first bucket, slots above into the overflow bucket. A log2 slot [2^i, 2^(i+1)) maps
// to the OTel bucket (2^i, 2^(i+1)] — exact except for a duration of exactly 2^i ns, which OTel would
// place one bucket lower.
import type { HistogramValue, MetricDef } from '../../probe/types.ts';

export const HIST_SLOTS = 40;
/** u64 fields of struct pn_hist: slots, sum_ns, count, over[0], over[1]. */
export const HIST_FIELDS = HIST_SLOTS + 4;
export const HIST_BYTES = HIST_FIELDS * 8;

export interface Log2Hist {
  /** Count per log2 slot (slot i = [2^i, 2^(i+1)) ns). */
  readonly slots: readonly number[];
  readonly sumNs: number;
  readonly count: number;
  /** Exact count over the probe's first / second threshold. */
  readonly over: readonly [number, number];
}

export interface BucketRange {
  /** Exponent of the first boundary (2^lo ns). Default 10 (≈ 1 µs). */
  readonly lo?: number;
  /** Exponent of the last boundary (2^hi ns). Default 35 (≈ 34 s). */
  readonly hi?: number;
}

/** A pn_hist from its u64 fields (e.g. `EbpfRuntime.counterEntries` values, already summed over CPUs). */
export function histFromFields(values: readonly number[], offset = 0): Log2Hist {
  const slots = new Array<number>(HIST_SLOTS);
  for (let i = 0; i < HIST_SLOTS; i++) slots[i] = values[offset + i] ?? 0;
  return {
    slots,
    sumNs: values[offset + HIST_SLOTS] ?? 0,
    count: values[offset + HIST_SLOTS + 1] ?? 0,
    over: [values[offset + HIST_SLOTS + 2] ?? 0, values[offset + HIST_SLOTS + 3] ?? 0],
  };
}

/** A pn_hist read from raw bytes (little endian) at `offset` (one CPU's value of a per-CPU map). */
export function histFromBytes(buf: Uint8Array, offset = 0): Log2Hist {
  const dv = new DataView(buf.buffer, buf.byteOffset + offset, HIST_BYTES);
  const f = new Array<number>(HIST_FIELDS);
  for (let i = 0; i < HIST_FIELDS; i++) f[i] = Number(dv.getBigUint64(i * 8, true));
  return histFromFields(f);
}

/** Sum of histograms (e.g. over CPUs or keys). */
export function addHists(a: Log2Hist, b: Log2Hist): Log2Hist {
  return {
    slots: a.slots.map((v, i) => v + (b.slots[i] ?? 0)),
    sumNs: a.sumNs + b.sumNs,
    count: a.count + b.count,
    over: [a.over[0] + b.over[0], a.over[1] + b.over[1]],
  };
}

const boundaryCache = new Map<string, readonly number[]>();

/** Bucket upper bounds in seconds: 2^lo … 2^hi ns. */
export function log2Boundaries(range: BucketRange = {}): readonly number[] {
  const lo = range.lo ?? 10;
  const hi = range.hi ?? 35;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 1 && hi > lo && hi <= HIST_SLOTS)) {
    throw new RangeError(`log2 bucket range ${lo}..${hi} must satisfy 1 <= lo < hi <= ${HIST_SLOTS}`);
  }
  const key = `${lo}:${hi}`;
  let b = boundaryCache.get(key);
  if (!b) {
    const out: number[] = [];
    for (let e = lo; e <= hi; e++) out.push(2 ** e / 1e9);
    b = Object.freeze(out);
    boundaryCache.set(key, b);
  }
  return b;
}

/** The OTel histogram value (seconds) of a kernel log2 histogram. */
export function toHistogramValue(h: Log2Hist, range: BucketRange = {}): HistogramValue {
  const lo = range.lo ?? 10;
  const boundaries = log2Boundaries(range);
  const counts = new Array<number>(boundaries.length + 1).fill(0);
  for (let i = 0; i < HIST_SLOTS; i++) {
    const c = h.slots[i] ?? 0;
    if (!c) continue;
    // slot i's upper bound is 2^(i+1) ns = boundaries[i + 1 - lo]
    const k = Math.min(Math.max(i + 1 - lo, 0), boundaries.length);
    counts[k] = (counts[k] ?? 0) + c;
  }
  return { boundaries, counts, sum: h.sumNs / 1e9, count: h.count };
}

/** Count of durations whose slot lies entirely at or above `ns` (a lower bound of "≥ ns"). */
export function countAtLeast(h: Log2Hist, ns: number): number {
  let n = 0;
  for (let i = 0; i < HIST_SLOTS; i++) if (2 ** i >= ns) n += h.slots[i] ?? 0;
  return n;
}

/** MetricDef of a latency histogram in seconds. */
export function histogramDef(
  name: string,
  description: string,
  attributes: readonly string[] = [],
): MetricDef {
  return { name, kind: 'histogram', unit: 's', description, attributes, enabled: true };
}
