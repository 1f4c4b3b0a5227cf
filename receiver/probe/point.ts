// What a probe reports per value: a metric point (the object form; receiver/probe/sink.ts is the column
// form). Re-exported by ./types.ts, the probe API; its own file so that sink.ts and types.ts do not import
// each other.

export type AttributeValue = string | number | boolean | readonly string[];
export type Attributes = Readonly<Record<string, AttributeValue>>;

/** Explicit-bucket histogram; the probe converts kernel log2 buckets into the metric's unit. */
export interface HistogramValue {
  /** Upper bounds, ascending, in the metric's unit; `counts` has `boundaries.length + 1` entries. */
  readonly boundaries: readonly number[];
  readonly counts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export interface MetricPoint {
  readonly metric: string;
  /**
   * Netns inode the value belongs to. The pipeline resolves it to an entity (pod keys, kind, name).
   * 0 = counted in the kernel but belonging to no watched netns ("unattributed"). Omitted for
   * `scope: 'node'` metrics.
   */
  readonly netns?: number;
  readonly attributes?: Attributes;
  /** Counters: the cumulative value as the kernel reports it. Gauges: the current level. */
  readonly value: number | HistogramValue;
}
