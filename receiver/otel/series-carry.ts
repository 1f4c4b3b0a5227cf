// Carry-over of counters and histograms across the re-creation of a probe (a reload that changed its
// arguments): the replaced instance's cumulative values are kept and added to what the new instance
// reports, so they do not restart at 0. Its own file so metric-store.ts keeps only the collection logic.
import type { HrTime } from '@opentelemetry/api';
import type { HistogramValue } from '../probe/types.ts';
import { isHistogram, keyedSeries, type ProbeSeries, type SeriesState, setCarry } from './series-state.ts';

/** Collections during which a re-created probe's series take up its predecessor's values. */
const CARRY_COLLECTIONS = 30;

/** `v` plus a replaced instance's `carry`; histograms add bucket-wise when their bounds agree. */
export function withCarry(
  v: number | HistogramValue,
  carry: number | HistogramValue,
): number | HistogramValue {
  if (!isHistogram(v)) return isHistogram(carry) ? v : v + carry;
  if (!isHistogram(carry)) return v;
  const b = v.boundaries;
  if (b.length !== carry.boundaries.length || b.some((x, i) => x !== carry.boundaries[i])) return v;
  return {
    boundaries: b,
    counts: v.counts.map((c, i) => c + (carry.counts[i] ?? 0)),
    sum: v.sum + carry.sum,
    count: v.count + carry.count,
  };
}

/**
 * A new series `s` of the probe (`key`: metric name NUL attributes key in `netns`) takes up what the
 * replaced instance had counted, unless the new value is below it (then it starts anew).
 */
export function takeUpCarried(
  ps: ProbeSeries,
  netns: number,
  key: string,
  s: SeriesState,
  pointValue: number | HistogramValue,
): void {
  const c = ps.carried?.get(netns)?.get(key);
  if (!c) return;
  ps.carried?.get(netns)?.delete(key);
  const value = withCarry(pointValue, c.value);
  const scalar = isHistogram(value) ? value.count : value;
  if (scalar >= (isHistogram(c.value) ? c.value.count : c.value)) {
    setCarry(s, c.value);
    ps.carrying = true;
    s.value = value;
    s.startTime = c.startTime;
  }
}

/**
 * Keeps the probe's counters and histograms for its next instance (see MetricStore.carryOverProbe) and
 * clears its series, which the new instance builds afresh.
 */
export function carryOver(ps: ProbeSeries): void {
  const carried =
    ps.carried ?? new Map<number, Map<string, { value: number | HistogramValue; startTime: HrTime }>>();
  const keep = (netns: number, key: string, s: SeriesState) => {
    if (s.def.kind !== 'counter' && s.def.kind !== 'histogram') return;
    let m = carried.get(netns);
    if (!m) {
      m = new Map();
      carried.set(netns, m);
    }
    m.set(`${s.def.name}\u0000${key}`, { value: s.value, startTime: s.startTime });
  };
  for (const [netns, ns] of ps.byNetns) {
    const keyed = keyedSeries(ns);
    for (const s of keyed.plain.values()) keep(netns, '', s);
    for (const m of keyed.withAttributes.values()) for (const [key, s] of m) keep(netns, key, s);
  }
  // The new instance builds its series afresh (taking up these values); the old ones stay exported
  // (`latest`) until its first collection.
  ps.byNetns.clear();
  ps.carried = carried;
  ps.carriedUntil = ps.gen + CARRY_COLLECTIONS;
}
