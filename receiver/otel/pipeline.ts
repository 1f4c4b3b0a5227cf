// The signal pipeline: one MetricStore (probe data, read by every metric reader) and one EventPipeline,
// feeding a MeterProvider (Prometheus reader + periodic OTLP reader) and a LoggerProvider (bounded batch
// queue → OTLP, in the event export worker: log-export.ts). Exporter settings can change at runtime (hot reload): the providers are rebuilt, the
// store and the event pipeline stay.
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Resource } from '@opentelemetry/resources';
import { MeterProvider, type MetricReader, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { Logger } from '../log/logger.ts';
import type { EntitySource } from '../pods/entity.ts';
import { DeltaProducer } from './delta.ts';
import { EntityResources } from './entity-resources.ts';
import { EventPipeline } from './event-pipeline.ts';
import { CountingMetricExporter, type LogsExportSettings, type MetricsExportSettings } from './exporters.ts';
import { EventExport } from './log-export.ts';
import { MetricStore } from './metric-store.ts';
import { SelfTelemetry } from './self-telemetry.ts';

export interface ExportSettings {
  readonly resource: Resource;
  readonly prometheus: boolean;
  readonly metrics?: MetricsExportSettings | undefined;
  readonly logs?: LogsExportSettings | undefined;
}

export interface PipelineOptions {
  readonly entities: EntitySource;
  readonly log: Logger;
  readonly labelAllowlist?: readonly string[];
  readonly cardinalityLimit?: number;
  readonly recentEvents?: number;
}

export class Pipeline {
  readonly store: MetricStore;
  readonly events: EventPipeline;
  readonly self: SelfTelemetry;
  readonly #log: Logger;
  #meterProvider: MeterProvider | undefined;
  #eventExport: EventExport | undefined;
  #prometheus: PrometheusExporter | undefined;
  #settingsKey = '';
  #lastMetricsError = '';

  constructor(options: PipelineOptions) {
    this.#log = options.log;
    this.self = new SelfTelemetry();
    this.store = new MetricStore({
      entities: options.entities,
      log: options.log,
      ...(options.labelAllowlist ? { labelAllowlist: options.labelAllowlist } : {}),
      ...(options.cardinalityLimit !== undefined ? { cardinalityLimit: options.cardinalityLimit } : {}),
    });
    this.events = new EventPipeline({
      entities: options.entities,
      self: this.self,
      log: options.log,
      ...(options.recentEvents !== undefined ? { recent: options.recentEvents } : {}),
    });
    this.store.addSource(() => this.self.metrics());
  }

  /** The Prometheus reader (text exposition served by the local server), when enabled. */
  get prometheus(): PrometheusExporter | undefined {
    return this.#prometheus;
  }

  /** The OTLP log export while it is on (tests reach its worker through it). */
  get eventExport(): EventExport | undefined {
    return this.#eventExport;
  }

  queueSize(): number {
    return this.#eventExport?.held() ?? 0;
  }

  /** Build (or rebuild, when the settings changed) the providers and exporters. */
  async applyExports(settings: ExportSettings): Promise<void> {
    const key = JSON.stringify({
      resource: settings.resource.attributes,
      prometheus: settings.prometheus,
      metrics: settings.metrics,
      logs: settings.logs,
    });
    if (key === this.#settingsKey) return;
    await this.#shutdownProviders();
    this.#settingsKey = key;
    const readers: MetricReader[] = [];
    if (settings.prometheus) {
      this.#prometheus = new PrometheusExporter({ preventServerStart: true, metricProducers: [this.store] });
      readers.push(this.#prometheus);
    }
    if (settings.metrics) {
      const m = settings.metrics;
      const exporter = new CountingMetricExporter(
        // Imported here: the SDK transports (gRPC, protobufjs, otlp-transformer) load only with an OTLP exporter.
        await (await import('./otlp-metric-exporter.ts')).createMetricExporter(m),
        (ok, error) => {
          if (ok) {
            this.#lastMetricsError = '';
            return;
          }
          this.self.exportFailures.metrics++;
          const msg = String(error?.message ?? error);
          if (msg !== this.#lastMetricsError)
            this.#log.warn({ err: error ?? msg }, 'OTLP metrics export failed');
          this.#lastMetricsError = msg;
        },
        // One Resource per entity (pod, host, netns); podnet's own metrics on the agent's.
        { entities: new EntityResources(settings.resource) },
      );
      readers.push(
        new PeriodicExportingMetricReader({
          exporter,
          exportIntervalMillis: m.intervalMs,
          exportTimeoutMillis: Math.min(m.timeoutMs, m.intervalMs),
          metricProducers: [m.temporality === 'delta' ? new DeltaProducer(this.store) : this.store],
        }),
      );
    }
    this.#meterProvider = new MeterProvider({ resource: settings.resource, readers });
    if (settings.logs) {
      // The LoggerProvider, its bounded batch queue and the OTLP exporter run in a worker thread.
      this.#eventExport = new EventExport({
        settings: settings.logs,
        resource: settings.resource,
        self: this.self,
        log: this.#log,
      });
      this.events.setExport(this.#eventExport);
    } else {
      this.events.setExport(undefined);
    }
  }

  /**
   * Export what is queued: logs first, then metrics, so the exported podnet.event.count already counts the
   * events this flush sent (flushed together, the metrics were read before the logs were acknowledged).
   */
  async forceFlush(): Promise<void> {
    await this.#eventExport?.forceFlush().catch(() => undefined);
    await this.#meterProvider?.forceFlush().catch(() => undefined);
  }

  async shutdown(): Promise<void> {
    await this.#shutdownProviders();
    this.#settingsKey = '';
  }

  async #shutdownProviders(): Promise<void> {
    const mp = this.#meterProvider;
    const lp = this.#eventExport;
    this.#meterProvider = undefined;
    this.#eventExport = undefined;
    this.#prometheus = undefined;
    this.events.setExport(undefined);
    // Logs first: the meter's final export then counts every event the logger's final export sent.
    const results = [
      ...(await Promise.allSettled([lp?.shutdown()])),
      ...(await Promise.allSettled([mp?.shutdown()])),
    ];
    for (const r of results)
      if (r.status === 'rejected') this.#log.warn({ err: r.reason }, 'exporter shutdown failed');
  }
}
