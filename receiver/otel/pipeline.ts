// The signal pipeline: one MetricStore (probe data, read by every metric reader) and one EventPipeline,
// feeding a MeterProvider (Prometheus reader + periodic OTLP reader) and a LoggerProvider (bounded batch
// queue → OTLP). Exporter settings can change at runtime (hot reload): the providers are rebuilt, the
// store and the event pipeline stay.
import {
  type MeterProvider as ApiMeterProvider,
  type Counter,
  createNoopMeter,
  type Meter,
  type ObservableResult,
  type ObservableUpDownCounter,
} from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Resource } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, type MetricReader, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { Logger } from '../log/logger.ts';
import type { EntitySource } from '../pods/entity.ts';
import { DeltaProducer } from './delta.ts';
import { EventPipeline } from './events.ts';
import {
  CountingLogExporter,
  CountingMetricExporter,
  createLogExporter,
  createMetricExporter,
  type OtlpSignalSettings,
} from './exporters.ts';
import { MetricStore } from './metric-store.ts';
import { SelfTelemetry } from './self-telemetry.ts';
import { PODNET_VERSION } from './version.ts';

export interface MetricsExportSettings extends OtlpSignalSettings {
  readonly intervalMs: number;
  /** Monotonic sums and histograms as cumulative (default) or delta since the previous export. */
  readonly temporality?: 'cumulative' | 'delta';
}

export interface LogsExportSettings extends OtlpSignalSettings {
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMs: number;
}

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

/**
 * A MeterProvider handed to the SDK's BatchLogRecordProcessor as `selfObsMeterProvider`: it forwards to
 * the real provider and reads the processor's own counts (dropped because the queue was full, current
 * queue size) so podnet can count and show them.
 */
class QueueObserver implements ApiMeterProvider {
  private readonly _onDrop: (n: number) => void;
  private _queueCallbacks: Array<(r: ObservableResult) => void> = [];

  constructor(onDrop: (n: number) => void) {
    this._onDrop = onDrop;
  }

  queueSize(): number {
    let size = 0;
    const result = { observe: (v: number) => (size += v) } as ObservableResult;
    for (const cb of this._queueCallbacks) cb(result);
    return size;
  }

  getMeter(): Meter {
    const noop = createNoopMeter();
    const meter = Object.create(noop) as Meter;
    meter.createCounter = (name, opts) => {
      const real = noop.createCounter(name, opts);
      const counter: Counter = {
        add: (value, attrs) => {
          if (attrs?.['error.type'] === 'queue_full') this._onDrop(value);
          real.add(value, attrs);
        },
      };
      return counter;
    };
    meter.createObservableUpDownCounter = (name, opts) => {
      const real = noop.createObservableUpDownCounter(name, opts);
      const obs: ObservableUpDownCounter = {
        addCallback: (cb) => {
          if (name.endsWith('queue.size')) this._queueCallbacks.push(cb as (r: ObservableResult) => void);
          real.addCallback(cb);
        },
        removeCallback: (cb) => {
          this._queueCallbacks = this._queueCallbacks.filter((c) => c !== cb);
          real.removeCallback(cb);
        },
      };
      return obs;
    };
    return meter;
  }
}

export class Pipeline {
  readonly store: MetricStore;
  readonly events: EventPipeline;
  readonly self: SelfTelemetry;
  private readonly _log: Logger;
  private _meterProvider: MeterProvider | undefined;
  private _loggerProvider: LoggerProvider | undefined;
  private _prometheus: PrometheusExporter | undefined;
  private _queue: QueueObserver | undefined;
  private _settingsKey = '';
  private _lastMetricsError = '';
  private _lastLogsError = '';

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
    return this._queue?.queueSize() ?? 0;
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
      const l = settings.logs;
      this._queue = new QueueObserver((n) => this.self.countEvents('lost_queue_full', n));
      const exporter = new CountingLogExporter(createLogExporter(l), (ok, n, error) => {
        if (ok) {
          this.self.countEvents('sent', n);
          this._lastLogsError = '';
          return;
        }
        this.self.countEvents('lost_export_failed', n);
        this.self.exportFailures.logs++;
        const msg = String(error?.message ?? error);
        if (msg !== this._lastLogsError) this._log.warn({ err: msg }, 'OTLP logs export failed');
        this._lastLogsError = msg;
      });
      this._loggerProvider = new LoggerProvider({
        resource: settings.resource,
        processors: [
          new BatchLogRecordProcessor({
            exporter,
            maxQueueSize: l.maxQueueSize,
            maxExportBatchSize: Math.min(l.maxExportBatchSize, l.maxQueueSize),
            scheduledDelayMillis: l.scheduledDelayMs,
            exportTimeoutMillis: l.timeoutMs,
            selfObsMeterProvider: this._queue,
          }),
        ],
      });
      this.events.setLogger(this._loggerProvider.getLogger('podnet', PODNET_VERSION));
    } else {
      this.events.setLogger(undefined);
    }
  }

  /**
   * Export what is queued: logs first, then metrics, so the exported podnet.event.count already counts the
   * events this flush sent (flushed together, the metrics were read before the logs were acknowledged).
   */
  async forceFlush(): Promise<void> {
    await this._loggerProvider?.forceFlush().catch(() => undefined);
    await this._meterProvider?.forceFlush().catch(() => undefined);
  }

  async shutdown(): Promise<void> {
    await this._shutdownProviders();
    this._settingsKey = '';
  }

  private async _shutdownProviders(): Promise<void> {
    const mp = this._meterProvider;
    const lp = this._loggerProvider;
    this._meterProvider = undefined;
    this._loggerProvider = undefined;
    this._prometheus = undefined;
    this._queue = undefined;
    this.events.setLogger(undefined);
    // Logs first: the meter's final export then counts every event the logger's final export sent.
    const results = [
      ...(await Promise.allSettled([lp?.shutdown()])),
      ...(await Promise.allSettled([mp?.shutdown()])),
    ];
    for (const r of results)
      if (r.status === 'rejected') this._log.warn({ err: String(r.reason) }, 'exporter shutdown failed');
  }
}
