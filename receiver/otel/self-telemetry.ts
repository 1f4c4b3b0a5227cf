// podnet's own health as metrics, built like probe data (MetricStore source) so states that end (a probe
// that stopped) do not linger as stale series.
import type { HrTime } from '@opentelemetry/api';
import type { MetricData } from '@opentelemetry/sdk-metrics';
import type { HistogramValue, MetricDef, ProbeState } from '../probe/types.ts';
import { toMetricData } from './metric-data.ts';
import {
  ATTR_PODNET_CAPTURE_OUTCOME,
  ATTR_PODNET_EVENT_OUTCOME,
  ATTR_PODNET_EXPORT_SIGNAL,
  ATTR_PODNET_METRIC_NAME,
  ATTR_PODNET_PROBE_NAME,
  ATTR_PODNET_PROBE_STATE,
} from './semconv.ts';
import { hrTimeFromMs, type MetricSeries } from './series-state.ts';

/** What happened to events handed to the pipeline by probes. */
export type EventOutcome =
  /** exported by the OTLP log exporter */
  | 'sent'
  /** disabled in the config, or not declared by the probe */
  | 'suppressed'
  /** the bounded queue in front of the OTLP exporter was full */
  | 'lost_queue_full'
  /** the export of the batch holding it failed (endpoint down, timeout) */
  | 'lost_export_failed';

/** Outcome attribute of podnet.capture.count (receiver/capture/service.ts counts them). */

const DURATION_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const SELF_METRICS: readonly MetricDef[] = [
  {
    name: 'podnet.probe.collection.duration',
    kind: 'histogram',
    unit: 's',
    description: 'Time one collection of a probe took.',
    attributes: [ATTR_PODNET_PROBE_NAME],
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.probe.collection.errors',
    kind: 'counter',
    unit: '{error}',
    description:
      'Collections of a probe that failed (the previous points stay exported until the next success).',
    attributes: [ATTR_PODNET_PROBE_NAME],
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.probe.state',
    kind: 'gauge',
    // An annotation, not `1`: a gauge of unit 1 is a ratio to the Prometheus translation (`_ratio`).
    unit: '{state}',
    description:
      'Always 1; `podnet.probe.state` carries the state (running, degraded, unavailable, stopped).',
    attributes: [ATTR_PODNET_PROBE_NAME, ATTR_PODNET_PROBE_STATE],
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.event.count',
    kind: 'counter',
    unit: '{event}',
    description:
      'Events handed to the pipeline by probes, by outcome: sent, suppressed, lost_queue_full, lost_export_failed.',
    attributes: [ATTR_PODNET_EVENT_OUTCOME],
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.event.queue.size',
    kind: 'gauge',
    unit: '{event}',
    description: 'Events waiting in the bounded queue in front of the OTLP log exporter.',
    attributes: [],
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.export.failure.count',
    kind: 'counter',
    unit: '{failure}',
    description: 'Failed OTLP export requests, by signal (metrics, logs).',
    attributes: [ATTR_PODNET_EXPORT_SIGNAL],
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.metric.series.overflow.count',
    kind: 'counter',
    unit: '{point}',
    description: 'Points dropped because their metric reached the configured cardinality limit.',
    attributes: [ATTR_PODNET_METRIC_NAME],
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.metric.series',
    kind: 'gauge',
    unit: '{series}',
    description: 'Series exported from the latest collection of every probe.',
    attributes: [],
    enabled: true,
    scope: 'node',
  },
  {
    name: 'podnet.capture.count',
    kind: 'counter',
    unit: '{capture}',
    description:
      'Packet captures, by outcome: on_demand (GET /capture started), refused (limit or no token), triggered (a rule started one), skipped (a rule fired at a limit), failed (could not start).',
    attributes: [ATTR_PODNET_CAPTURE_OUTCOME],
    enabled: true,
    scope: 'node',
  },
];

const DEF = new Map(SELF_METRICS.map((d) => [d.name, d]));

/**
 * One frozen attribute object per distinct label set, reused from scrape to scrape: the /metrics render
 * keeps the label text of a frozen object (prometheus-text.ts) instead of rebuilding it for every series
 * of every scrape. The label sets are few (probe names × states, fixed outcomes).
 */
const attrCache = new Map<string, Readonly<Record<string, string>>>();
function attrs(...kv: string[]): Readonly<Record<string, string>> {
  const key = kv.join('\0');
  let a = attrCache.get(key);
  if (a === undefined) {
    const o: Record<string, string> = {};
    for (let i = 0; i + 1 < kv.length; i += 2) o[kv[i]!] = kv[i + 1]!;
    a = Object.freeze(o);
    if (attrCache.size < 10_000) attrCache.set(key, a);
  }
  return a;
}
const NO_ATTRS = Object.freeze({});

class Hist {
  readonly counts = new Array<number>(DURATION_BOUNDS.length + 1).fill(0);
  sum = 0;
  count = 0;
  record(v: number): void {
    let i = 0;
    while (i < DURATION_BOUNDS.length && v > DURATION_BOUNDS[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
  value(): HistogramValue {
    return { boundaries: DURATION_BOUNDS, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}

export interface SelfTelemetrySources {
  probeStates(): Array<{ name: string; state: ProbeState }>;
  queueSize(): number;
  seriesCount(): number;
  overflow(): ReadonlyMap<string, number>;
  /** Capture counts by outcome, when captures are wired in. */
  captures?(): Readonly<Record<string, number>>;
}

export class SelfTelemetry {
  readonly events: Record<EventOutcome, number> = {
    sent: 0,
    suppressed: 0,
    lost_queue_full: 0,
    lost_export_failed: 0,
  };
  readonly exportFailures = { metrics: 0, logs: 0 };
  readonly #durations = new Map<string, Hist>();
  readonly #errors = new Map<string, number>();
  readonly #start: HrTime = hrTimeFromMs(Date.now());
  #sources: SelfTelemetrySources | undefined;

  setSources(s: SelfTelemetrySources): void {
    this.#sources = s;
  }

  recordCollection(probe: string, seconds: number, ok: boolean): void {
    let h = this.#durations.get(probe);
    if (!h) {
      h = new Hist();
      this.#durations.set(probe, h);
    }
    h.record(seconds);
    if (!ok) this.#errors.set(probe, (this.#errors.get(probe) ?? 0) + 1);
  }

  collectionErrors(probe: string): number {
    return this.#errors.get(probe) ?? 0;
  }

  countEvents(outcome: EventOutcome, n = 1): void {
    this.events[outcome] += n;
  }

  metrics(): MetricData[] {
    const now = hrTimeFromMs(Date.now());
    const s = (
      name: string,
      attributes: Readonly<Record<string, string>>,
      value: number | HistogramValue,
    ): MetricSeries => ({
      def: DEF.get(name)!,
      attributes,
      value,
      startTime: this.#start,
      time: now,
    });
    const groups: MetricSeries[][] = [];
    groups.push(
      [...this.#durations].map(([p, h]) =>
        s('podnet.probe.collection.duration', attrs(ATTR_PODNET_PROBE_NAME, p), h.value()),
      ),
    );
    groups.push(
      [...this.#errors].map(([p, n]) =>
        s('podnet.probe.collection.errors', attrs(ATTR_PODNET_PROBE_NAME, p), n),
      ),
    );
    const src = this.#sources;
    if (src) {
      groups.push(
        src
          .probeStates()
          .map((p) =>
            s(
              'podnet.probe.state',
              attrs(ATTR_PODNET_PROBE_NAME, p.name, ATTR_PODNET_PROBE_STATE, p.state),
              1,
            ),
          ),
      );
      groups.push([s('podnet.event.queue.size', NO_ATTRS, src.queueSize())]);
      groups.push([s('podnet.metric.series', NO_ATTRS, src.seriesCount())]);
      groups.push(
        [...src.overflow()].map(([m, n]) =>
          s('podnet.metric.series.overflow.count', attrs(ATTR_PODNET_METRIC_NAME, m), n),
        ),
      );
      const captures = src.captures?.() ?? {};
      groups.push(
        Object.entries(captures).map(([o, n]) =>
          s('podnet.capture.count', attrs(ATTR_PODNET_CAPTURE_OUTCOME, o), n),
        ),
      );
    }
    groups.push(
      (Object.keys(this.events) as EventOutcome[]).map((o) =>
        s('podnet.event.count', attrs(ATTR_PODNET_EVENT_OUTCOME, o), this.events[o]),
      ),
    );
    groups.push(
      (['metrics', 'logs'] as const).map((sig) =>
        s('podnet.export.failure.count', attrs(ATTR_PODNET_EXPORT_SIGNAL, sig), this.exportFailures[sig]),
      ),
    );
    return groups.filter((g) => g.length > 0).map((g) => toMetricData(g[0]!.def, g));
  }
}
