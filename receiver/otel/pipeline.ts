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
import { EventPipeline } from './event-pipeline.ts';
import {
  CountingMetricExporter,
  createMetricExporter,
  type LogsExportSettings,
  type MetricsExportSettings,
} from './exporters.ts';
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
  private readonly _log: Logger;
  private _meterProvider: MeterProvider | undefined;
  private _eventExport: EventExport | undefined;
  private _prometheus: PrometheusExporter | undefined;
  private _settingsKey = '';
  private _lastMetricsError = '';

  constructor(options: PipelineOptions) {
    this._log = options.log;
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
    return this._prometheus;
  }

  queueSize(): number {
    return this._eventExport?.held() ?? 0;
  }

  /** Build (or rebuild, when the settings changed) the providers and exporters. */
  async applyExports(settings: ExportSettings): Promise<void> {
    const key = JSON.stringify({
      resource: settings.resource.attributes,
      prometheus: settings.prometheus,
      metrics: settings.metrics,
      logs: settings.logs,
    });
    if (key === this._settingsKey) return;
    await this._shutdownProviders();
    this._settingsKey = key;
    const readers: MetricReader[] = [];
    if (settings.prometheus) {
      this._prometheus = new PrometheusExporter({ preventServerStart: true, metricProducers: [this.store] });
      readers.push(this._prometheus);
    }
    if (settings.metrics) {
      const m = settings.metrics;
      const exporter = new CountingMetricExporter(createMetricExporter(m), (ok, error) => {
        if (ok) {
          this._lastMetricsError = '';
          return;
        }
        this.self.exportFailures.metrics++;
        const msg = String(error?.message ?? error);
        if (msg !== this._lastMetricsError) this._log.warn({ err: msg }, 'OTLP metrics export failed');
        this._lastMetricsError = msg;
      });
      readers.push(
        new PeriodicExportingMetricReader({
          exporter,
          exportIntervalMillis: m.intervalMs,
          exportTimeoutMillis: Math.min(m.timeoutMs, m.intervalMs),
          metricProducers: [m.temporality === 'delta' ? new DeltaProducer(this.store) : this.store],
        }),
      );
    }
    this._meterProvider = new MeterProvider({ resource: settings.resource, readers });
    if (settings.logs) {
      // The LoggerProvider, its bounded batch queue and the OTLP exporter run in a worker thread.
      this._eventExport = new EventExport({
        settings: settings.logs,
        resource: settings.resource,
        self: this.self,
        log: this._log,
      });
      this.events.setExport(this._eventExport);
    } else {
      this.events.setExport(undefined);
    }
  }

  /**
   * Export what is queued: logs first, then metrics, so the exported podnet.event.count already counts the
   * events this flush sent (flushed together, the metrics were read before the logs were acknowledged).
   */
  async forceFlush(): Promise<void> {
    await this._eventExport?.forceFlush().catch(() => undefined);
    await this._meterProvider?.forceFlush().catch(() => undefined);
  }

  async shutdown(): Promise<void> {
    await this._shutdownProviders();
    this._settingsKey = '';
  }

  private async _shutdownProviders(): Promise<void> {
    const mp = this._meterProvider;
    const lp = this._eventExport;
    this._meterProvider = undefined;
    this._eventExport = undefined;
    this._prometheus = undefined;
    this.events.setExport(undefined);
    // Logs first: the meter's final export then counts every event the logger's final export sent.
    const results = [
      ...(await Promise.allSettled([lp?.shutdown()])),
      ...(await Promise.allSettled([mp?.shutdown()])),
    ];
    for (const r of results)
      if (r.status === 'rejected') this._log.warn({ err: String(r.reason) }, 'exporter shutdown failed');
  }
}
