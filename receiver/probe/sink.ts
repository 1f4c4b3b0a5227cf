// The column path from a probe to the metric store: instead of a `MetricPoint` object per value, a probe
// writes `(series key, netns, value)` into a `MetricSink` (`Probe.collectInto`). A `SeriesKey` is one
// (metric, point attributes) pair the probe makes once and keeps (per kernel field, per interface and
// direction...); the store resolves it to a slot of the probe once and then fills typed columns
// (receiver/otel/point-buffer.ts), so a collection of 160,000 values at 1,000 netns allocates no object per
// value and the store finds each series by slot, without building a key. `collect()` stays the API of the
// probes that do not write columns, and of tests: a probe that writes columns gets it from
// `pointsOf` (the same points, as objects).
import type { Entity } from '../pods/entity.ts';
import type { Attributes, MetricPoint } from './point.ts';

/** One series of a probe, up to its netns: a metric and its point attributes (frozen, shared). */
export class SeriesKey {
  readonly metric: string;
  readonly attributes: Attributes | undefined;
  /**
   * The slot table (receiver/otel/point-buffer.ts) that resolved this key last, and its slot there: a
   * one-entry cache, so a steady collection resolves each key with one comparison.
   */
  owner: object | undefined = undefined;
  slot = -1;

  constructor(metric: string, attributes?: Attributes) {
    this.metric = metric;
    this.attributes =
      attributes === undefined || Object.isFrozen(attributes) ? attributes : Object.freeze({ ...attributes });
  }
}

/** Where a probe writes one collection (`Probe.collectInto`). */
export interface MetricSink {
  /** A number value of `key` in netns `netns` (0: unattributed), as `{ metric, netns, attributes, value }`. */
  value(key: SeriesKey, netns: number, value: number): void;
  /** Any other point (histograms, node-scoped metrics, attributes made per point). */
  point(point: MetricPoint): void;
  /** Values and points written so far: a mark for `truncate`. */
  readonly length: number;
  /** Drop what was written after `length` (an entity that failed midway adds nothing). */
  truncate(length: number): void;
}

/** A sink that makes the points as objects (what `collect()` returns). */
export class PointArray implements MetricSink {
  readonly points: MetricPoint[] = [];

  value(key: SeriesKey, netns: number, value: number): void {
    this.points.push(
      key.attributes !== undefined
        ? { metric: key.metric, netns, attributes: key.attributes, value }
        : { metric: key.metric, netns, value },
    );
  }

  point(point: MetricPoint): void {
    this.points.push(point);
  }

  get length(): number {
    return this.points.length;
  }

  truncate(length: number): void {
    this.points.length = length;
  }
}

/** `collect()` of a probe that writes columns: its points as objects. */
export async function pointsOf(
  collectInto: (entities: readonly Entity[], sink: MetricSink) => Promise<void>,
  entities: readonly Entity[],
): Promise<readonly MetricPoint[]> {
  const sink = new PointArray();
  await collectInto(entities, sink);
  return sink.points;
}
