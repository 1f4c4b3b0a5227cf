// The receiver: config → entity source → probes (create / collect every collection_interval /
// reconfigure / close) → pipeline (metric store, events, exporters) → local server. Hot reload applies a new
// config without a restart; a config that fails validation is logged and the running one is kept.
//
//   const agent = await Agent.start({ configPath, extraSpecs: [syntheticSpec], entitySource });
//   ...; await agent.stop();
import { createWriteStream, type WriteStream } from 'node:fs';
import { type AnyProbeSpec, probeSpecs } from '../../probes/registry.ts';
import {
  ConfigError,
  EMBEDDED_SOURCE,
  loadConfigFile,
  type ResolvedConfig,
  resolveConfigText,
} from '../config/load.ts';
import { type ConfigWatcher, watchConfigFile } from '../config/watch.ts';
import { childLogger, type Logger } from '../log/logger.ts';
import type { EventRecord } from '../otel/event-pipeline.ts';
import { applyHeapSettings } from '../otel/heap.ts';
import { type ExportSettings, Pipeline } from '../otel/pipeline.ts';
import { serializePrometheus } from '../otel/prometheus-text.ts';
import { buildResource, nodeNameFrom } from '../otel/resource.ts';
import { PODNET_VERSION } from '../otel/version.ts';
import type { EntitySource } from '../pods/entity.ts';
import { EntityRegistry, registryOptionsFromConfig } from '../pods/index.ts';
import type { Probe, ProbeContext, ProbeState } from '../probe/types.ts';
import { withEnabledMetrics } from '../procfs/probe-kit.ts';
import { LocalServer, type ServerSources } from '../server/server.ts';
import { StaticEntitySource } from './static-entities.ts';
import { SwitchableEntitySource } from './switchable-entities.ts';

export interface AgentOptions {
  /** Config file; watched for changes unless `watch: false`. Undefined = embedded default (or configText). */
  readonly configPath?: string | undefined;
  /** Config as YAML text (tests); ignored when configPath is set. */
  readonly configText?: string | undefined;
  /** Probe specs; default: the registry. */
  readonly specs?: readonly AnyProbeSpec[];
  /** Added to `specs` (e.g. the synthetic probe). */
  readonly extraSpecs?: readonly AnyProbeSpec[];
  /**
   * Where entities come from. Default: pod discovery (EntityRegistry: CRI pods, else host + named/other
   * netns) built from the `pods:` config section and refreshed every collection interval.
   */
  readonly entitySource?: EntitySource;
  readonly env?: NodeJS.ProcessEnv;
  readonly watch?: boolean;
  readonly log?: Logger;
}

interface RunningProbe {
  readonly spec: AnyProbeSpec;
  probe: Probe<unknown> | undefined;
  enabled: boolean;
  argsKey: string;
  state: ProbeState;
  reason?: string | undefined;
  failures: number;
  lastCollection?: { at: string; durationMs: number; points: number; error?: string } | undefined;
}

export interface ReloadResult {
  readonly ok: boolean;
  readonly error?: string;
}

export class Agent {
  readonly pipeline: Pipeline;
  readonly entities: EntitySource;
  readonly specs: readonly AnyProbeSpec[];
  private _config: ResolvedConfig;
  private readonly _opts: AgentOptions;
  private readonly _log: Logger;
  private readonly _probes = new Map<string, RunningProbe>();
  private _server: LocalServer | undefined;
  private _serverKey = '';
  private _serverConfig: ResolvedConfig['server'] | undefined;
  private _watcher: ConfigWatcher | undefined;
  private _timer: NodeJS.Timeout | undefined;
  private _collecting: Promise<void> | undefined;
  private _stopped = false;
  private _applying: Promise<void> = Promise.resolve();
  private _sink:
    | { key: string; out: NodeJS.WriteStream | WriteStream; file?: WriteStream; unsubscribe: () => void }
    | undefined;
  private _sinkDropped = 0;
  private readonly _started = Date.now();
  private _reloads = { applied: 0, rejected: 0, lastError: undefined as string | undefined };
  collections = 0;

  private _registry: EntityRegistry | undefined;
  private readonly _switch: SwitchableEntitySource;
  private _podsKey: string;

  private constructor(
    opts: AgentOptions,
    config: ResolvedConfig,
    specs: readonly AnyProbeSpec[],
    registry: EntityRegistry | undefined,
  ) {
    this._opts = opts;
    this._config = config;
    this.specs = specs;
    this._log = opts.log ?? childLogger('agent');
    this._registry = registry;
    this._podsKey = podsKey(config);
    this._switch = new SwitchableEntitySource(opts.entitySource ?? registry ?? new StaticEntitySource());
    this.entities = this._switch;
    this.pipeline = new Pipeline({
      entities: this.entities,
      log: childLogger('otel'),
      labelAllowlist: config.pods.labelAllowlist,
      cardinalityLimit: config.cardinalityLimit,
    });
    this.pipeline.self.setSources({
      probeStates: () =>
        [...this._probes.values()].map((p) => ({ name: p.spec.name, state: this._state(p).state })),
      queueSize: () => this.pipeline.queueSize(),
      seriesCount: () => this.pipeline.store.seriesCount(),
      overflow: () => this.pipeline.store.overflowCounts(),
    });
  }

  /** Validate the config (throws ConfigError), start probes, exporters, server and the collection loop. */
  static async start(opts: AgentOptions = {}): Promise<Agent> {
    // Before the first collection burst: the metric store makes memory grow with the pods (heap.ts).
    applyHeapSettings();
    const specs = [...(opts.specs ?? probeSpecs), ...(opts.extraSpecs ?? [])];
    const loadOpts = { specs, ...(opts.env ? { env: opts.env } : {}) };
    const config =
      opts.configPath !== undefined
        ? loadConfigFile(opts.configPath, loadOpts)
        : resolveConfigText(
            opts.configText ?? '',
            opts.configText ? '(config text)' : EMBEDDED_SOURCE,
            loadOpts,
          );
    const registry = opts.entitySource ? undefined : await startRegistry(config, opts.env);
    const agent = new Agent(opts, config, specs, registry);
    try {
      await agent._apply(config);
    } catch (err) {
      await agent.stop();
      throw err;
    }
    agent._schedule(0);
    if (opts.configPath !== undefined && opts.watch !== false) {
      agent._watcher = watchConfigFile(opts.configPath, (text) => void agent.reload(text), {
        onError: (err) =>
          agent._log.warn({ err: err.message }, 'cannot read the config file; keeping the running config'),
      });
    }
    return agent;
  }

  get config(): ResolvedConfig {
    return this._config;
  }

  /** Local server URL, e.g. `http://127.0.0.1:9464`, when the server is enabled. */
  get serverUrl(): string | undefined {
    return this._server?.url;
  }

  /** Apply new config text. A bad config is rejected (logged, returned) and the running one stays. */
  async reload(text: string): Promise<ReloadResult> {
    const source = this._opts.configPath ?? '(config text)';
    let next: ResolvedConfig;
    try {
      next = resolveConfigText(text, source, {
        specs: this.specs,
        ...(this._opts.env ? { env: this._opts.env } : {}),
      });
    } catch (err) {
      const msg = err instanceof ConfigError ? err.message : String(err);
      this._reloads.rejected++;
      this._reloads.lastError = msg;
      this._log.error({ config: source }, `config reload rejected, keeping the running config: ${msg}`);
      return { ok: false, error: msg };
    }
    try {
      await this._apply(next);
    } catch (err) {
      const msg = String((err as Error).message ?? err);
      this._reloads.rejected++;
      this._reloads.lastError = msg;
      this._log.error({ config: source }, `config reload failed to apply: ${msg}`);
      return { ok: false, error: msg };
    }
    this._reloads.applied++;
    this._reloads.lastError = undefined;
    this._log.info({ config: source }, 'config reloaded');
    return { ok: true };
  }

  /** Run one collection of every running probe now (tests, and the loop). */
  async collectNow(): Promise<void> {
    if (this._collecting) return this._collecting;
    this._collecting = this._collect().finally(() => {
      this._collecting = undefined;
    });
    return this._collecting;
  }

  async stop(): Promise<void> {
    if (this._stopped) return;
    this._stopped = true;
    this._watcher?.close();
    if (this._timer) clearTimeout(this._timer);
    await this._applying.catch(() => undefined);
    await this._collecting?.catch(() => undefined);
    // Export the last collection and the queued events before the probes (and their series) go away.
    await this.pipeline.forceFlush();
    for (const p of this._probes.values()) await this._closeProbe(p, 'stopped');
    this._closeSink();
    this._registry?.stop();
    await this._server?.close();
    this._server = undefined;
    await this.pipeline.shutdown();
  }

  status(): Record<string, unknown> {
    const c = this._config;
    const self = this.pipeline.self;
    return {
      version: PODNET_VERSION,
      node: nodeNameFrom(c.nodeName, this._opts.env ?? process.env) ?? null,
      uptimeSeconds: Math.round((Date.now() - this._started) / 1000),
      config: {
        source: c.source,
        collectionIntervalMs: c.collectionIntervalMs,
        reloadsApplied: this._reloads.applied,
        reloadsRejected: this._reloads.rejected,
        lastReloadError: this._reloads.lastError ?? null,
      },
      collections: this.collections,
      server: this._server?.describe() ?? null,
      probes: [...this._probes.values()].map((p) => {
        const st = this._state(p);
        return {
          name: p.spec.name,
          source: p.spec.source,
          enabled: p.enabled,
          state: st.state,
          reason: st.reason ?? null,
          details: st.details ?? null,
          collectionErrors: self.collectionErrors(p.spec.name),
          lastCollection: p.lastCollection ?? null,
        };
      }),
      entities: this.entities.entities().map((e) => ({
        kind: e.kind,
        displayName: e.displayName,
        netnsInode: e.netnsInode,
        netnsName: e.netnsName ?? null,
        pod: e.pod ? { uid: e.pod.uid, name: e.pod.name, namespace: e.pod.namespace } : null,
      })),
      pods: this.entities.pods().length,
      discovery: this._registry ? this._registry.status() : { mode: 'static' },
      events: {
        emitted: this.pipeline.events.emitted,
        ...self.events,
        queued: this.pipeline.queueSize(),
        streamDropped: this._server?.streamDropped ?? 0,
        sinkDropped: this._sinkDropped,
      },
      metrics: {
        series: this.pipeline.store.seriesCount(),
        cardinalityLimit: this.pipeline.store.cardinalityLimit,
        overflow: Object.fromEntries(this.pipeline.store.overflowCounts()),
        invalid: Object.fromEntries(this.pipeline.store.invalidCounts()),
      },
      exporters: {
        prometheus: c.prometheus,
        otlpMetrics: c.otlpMetrics
          ? {
              protocol: c.otlpMetrics.protocol,
              endpoint: c.otlpMetrics.endpoint ?? '(env)',
              temporality: c.otlpMetrics.temporality,
            }
          : null,
        otlpLogs: c.otlpLogs
          ? { protocol: c.otlpLogs.protocol, endpoint: c.otlpLogs.endpoint ?? '(env)' }
          : null,
        failures: { ...self.exportFailures },
      },
    };
  }

  inspect(): Record<string, unknown> {
    const totals = this.pipeline.store.entityTotals();
    const known = new Map(this.entities.entities().map((e) => [e.netnsInode, e]));
    const entities = [...totals.values()].map((t) => {
      const inode = Number(t.attributes['podnet.netns.inode'] ?? 0);
      const e = known.get(inode);
      return {
        name: e?.displayName ?? (inode ? `netns ${inode}` : 'unattributed'),
        kind: String(t.attributes['podnet.entity.kind'] ?? ''),
        netnsInode: inode,
        pod: e?.pod ? { uid: e.pod.uid, name: e.pod.name, namespace: e.pod.namespace } : null,
        totals: t.totals,
      };
    });
    return {
      time: new Date().toISOString(),
      collectionIntervalMs: this._config.collectionIntervalMs,
      metrics: Object.fromEntries(
        this.pipeline.store.definitions().map((d) => [d.def.name, { kind: d.def.kind, unit: d.def.unit }]),
      ),
      entities,
      probes: [...this._probes.values()].map((p) => ({ name: p.spec.name, ...this._state(p) })),
      events: { ...this.pipeline.self.events, emitted: this.pipeline.events.emitted },
      recentEvents: this.pipeline.events.recent().slice(-50),
    };
  }

  private _state(p: RunningProbe): { state: ProbeState; reason?: string | undefined; details?: unknown } {
    if (p.probe && p.state === 'running') {
      try {
        const s = p.probe.status();
        return { state: s.state, reason: s.reason, details: s.details };
      } catch (err) {
        return { state: 'degraded', reason: `status() failed: ${String(err)}` };
      }
    }
    return { state: p.state, reason: p.reason };
  }

  private _apply(config: ResolvedConfig): Promise<void> {
    const run = this._applying.then(() => this._applyNow(config));
    this._applying = run.catch(() => undefined);
    return run;
  }

  private async _applyNow(config: ResolvedConfig): Promise<void> {
    if (this._stopped) return;
    const prev = this._config;
    // First what can fail (address in use): a failure leaves everything as it was.
    await this._applyServer(config);
    const key = podsKey(config);
    if (key !== this._podsKey && this._registry) {
      // Pod discovery settings changed: start the new registry first (a bad endpoint fails the reload
      // before anything else changed), then switch everyone over and stop the old one.
      const next = await startRegistry(config, this._opts.env);
      const old = this._registry;
      this._registry = next;
      this._switch.switchTo(next);
      old.stop();
      this._log.info({ pods: config.pods }, 'pod discovery restarted with the new settings');
    }
    this._podsKey = key;
    this._config = config;
    const p = this.pipeline;
    p.store.configure({
      labelAllowlist: config.pods.labelAllowlist,
      cardinalityLimit: config.cardinalityLimit,
    });
    p.store.setDefinitions(
      config.probes.flatMap((rp) =>
        rp.spec.metrics.map((def) => ({
          def,
          probe: rp.spec.name,
          enabled: config.metricEnabled.get(def.name) ?? def.enabled,
        })),
      ),
    );
    p.events.configure({
      stacks: config.kernelStacks,
      labelAllowlist: config.pods.labelAllowlist,
      defs: config.probes.flatMap((rp) =>
        rp.spec.events.map((def) => ({
          def,
          probe: rp.spec.name,
          enabled: config.eventEnabled.get(def.name) ?? def.enabled,
        })),
      ),
    });
    await p.applyExports(this._exportSettings(config));
    this._applySink(config);
    for (const rp of config.probes) {
      const args = withEnabledMetrics(
        rp.spec,
        rp.args,
        (def) => config.metricEnabled.get(def.name) ?? def.enabled,
      );
      await this._applyProbe(rp.spec, rp.enabled, args);
    }
    if (prev.collectionIntervalMs !== config.collectionIntervalMs && this._timer) this._schedule(0);
  }

  private _exportSettings(c: ResolvedConfig): ExportSettings {
    const env = this._opts.env ?? process.env;
    const resource = buildResource({ nodeName: c.nodeName, env });
    return {
      resource,
      prometheus: c.prometheus,
      metrics: c.otlpMetrics,
      logs: c.otlpLogs
        ? {
            ...c.otlpLogs,
            maxQueueSize: c.eventQueue.maxQueueSize,
            maxExportBatchSize: c.eventQueue.maxExportBatchSize,
            scheduledDelayMs: c.eventQueue.scheduledDelayMs,
          }
        : undefined,
    };
  }

  /**
   * (Re)start the local server when its address changed. The new listener is opened before the old one
   * closes, so a failed change (address in use, bad interface) leaves the running server as it was.
   */
  private async _applyServer(c: ResolvedConfig): Promise<void> {
    const key = c.server.enabled ? JSON.stringify(c.server) : '';
    if (key === this._serverKey && (this._server || !c.server.enabled)) return;
    const old = this._server;
    const oldConfig = this._serverConfig;
    if (!c.server.enabled) {
      this._server = undefined;
      this._serverKey = key;
      await old?.close();
      return;
    }
    const { port } = c.server.address;
    const start = (s: ResolvedConfig['server']) =>
      LocalServer.start(s.address.host, s.address.port, this._serverSources(), childLogger('server'), {
        bearerTokenFile: s.bearerTokenFile,
        tls: s.tls,
      });
    let next: LocalServer;
    try {
      next = await start(c.server);
    } catch (err) {
      if (!old || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || old.port !== port) throw err;
      // The old server may hold this port (a host-only change): free it, retry, and restore it on failure.
      await old.close();
      this._server = undefined;
      try {
        next = await start(c.server);
      } catch (err2) {
        if (oldConfig) this._server = await start(oldConfig);
        throw err2;
      }
    }
    if (this._server === old) await old?.close();
    this._server = next;
    this._serverKey = key;
    this._serverConfig = c.server;
    this._log.info({ url: next.url }, 'local server listening');
  }

  private _serverSources(): ServerSources {
    return {
      metrics: () => {
        const prom = this.pipeline.prometheus;
        if (!prom) return undefined;
        return (_req, res) => {
          prom.collect().then(
            ({ resourceMetrics, errors }) => {
              if (errors.length > 0)
                this._log.warn({ errors: errors.map(String) }, 'metric collection errors');
              res.statusCode = 200;
              res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
              res.end(serializePrometheus(resourceMetrics));
            },
            (err: unknown) => {
              res.statusCode = 500;
              res.end(`# failed to export metrics: ${String(err)}\n`);
            },
          );
        };
      },
      status: () => this.status(),
      inspect: () => this.inspect(),
      recentEvents: () => this.pipeline.events.recent(),
      subscribe: (fn) => this.pipeline.events.subscribe(fn),
      healthy: () => !this._stopped,
    };
  }

  private _applySink(c: ResolvedConfig): void {
    const key = c.eventsJsonl.enabled ? c.eventsJsonl.path : '';
    if (this._sink?.key === key) return;
    this._closeSink();
    if (!key) return;
    const file = key === '-' ? undefined : createWriteStream(key, { flags: 'a' });
    const out: NodeJS.WriteStream | WriteStream = file ?? process.stdout;
    file?.on('error', (err) => this._log.error({ err: err.message, path: key }, 'event sink write failed'));
    const unsubscribe = this.pipeline.events.subscribe((r: EventRecord) => {
      // A slow reader (a pipe, a full disk) must not make the buffer grow without bound: drop and count.
      if (out.writableLength > SINK_MAX_BUFFERED) {
        this._sinkDropped++;
        return;
      }
      out.write(`${JSON.stringify(r)}\n`);
    });
    this._sink = { key, out, ...(file ? { file } : {}), unsubscribe };
  }

  private _closeSink(): void {
    if (!this._sink) return;
    this._sink.unsubscribe();
    this._sink.file?.end();
    this._sink = undefined;
  }

  private async _applyProbe(spec: AnyProbeSpec, enabled: boolean, args: unknown): Promise<void> {
    let rp = this._probes.get(spec.name);
    if (!rp) {
      rp = { spec, probe: undefined, enabled, argsKey: '', state: 'stopped', failures: 0 };
      this._probes.set(spec.name, rp);
    }
    rp.enabled = enabled;
    const argsKey = JSON.stringify(args);
    const log = childLogger('probe', { probe: spec.name });
    if (!enabled) {
      if (rp.probe) log.info('probe disabled by config');
      await this._closeProbe(rp, 'stopped', 'disabled in the config');
      return;
    }
    if (rp.probe) {
      if (rp.argsKey === argsKey) return;
      if (rp.probe.reconfigure) {
        await rp.probe.reconfigure(args);
        rp.argsKey = argsKey;
        log.info('probe reconfigured');
        return;
      }
      // Re-created with the new arguments: its counters continue from where this instance left them.
      this.pipeline.store.carryOverProbe(spec.name);
      await this._closeProbe(rp, 'stopped', undefined, { keepSeries: true });
    }
    let avail: { available: boolean; reason?: string | undefined };
    try {
      avail = await spec.availability();
    } catch (err) {
      avail = { available: false, reason: `availability check failed: ${String(err)}` };
    }
    if (!avail.available) {
      this.pipeline.store.removeProbe(spec.name);
      rp.state = 'unavailable';
      rp.reason = avail.reason ?? 'not available on this host';
      log.warn({ reason: rp.reason }, 'probe unavailable');
      return;
    }
    const ctx: ProbeContext = {
      log,
      entities: this.entities,
      emit: (ev) => this.pipeline.events.emit(spec.name, ev),
    };
    try {
      rp.probe = await spec.create(ctx, args);
      rp.argsKey = argsKey;
      rp.state = 'running';
      rp.reason = avail.reason;
      rp.failures = 0;
      log.info('probe started');
    } catch (err) {
      this.pipeline.store.removeProbe(spec.name);
      rp.probe = undefined;
      rp.state = 'unavailable';
      rp.reason = `failed to start: ${(err as Error).message ?? String(err)}`;
      log.error({ err: String(err) }, 'probe failed to start');
    }
  }

  private async _closeProbe(
    rp: RunningProbe,
    state: ProbeState,
    reason?: string,
    opts: { keepSeries?: boolean } = {},
  ): Promise<void> {
    const probe = rp.probe;
    rp.probe = undefined;
    rp.state = state;
    rp.reason = reason;
    rp.argsKey = '';
    if (!opts.keepSeries) this.pipeline.store.removeProbe(rp.spec.name);
    if (probe) {
      try {
        await probe.close();
      } catch (err) {
        this._log.warn({ probe: rp.spec.name, err: String(err) }, 'probe close failed');
      }
    }
  }

  private _schedule(delayMs: number): void {
    if (this._timer) clearTimeout(this._timer);
    if (this._stopped) return;
    this._timer = setTimeout(() => {
      void this.collectNow().finally(() => this._schedule(this._config.collectionIntervalMs));
    }, delayMs);
  }

  private async _collect(): Promise<void> {
    const entities = this.entities.entities();
    const intervalMs = this._config.collectionIntervalMs;
    await Promise.all(
      [...this._probes.values()].map(async (rp) => {
        const probe = rp.probe;
        if (!probe) return;
        const t0 = performance.now();
        const at = new Date();
        try {
          const points = await withTimeout(probe.collect(entities), Math.max(intervalMs, 1000), rp.spec.name);
          if (rp.probe !== probe) return; // stopped or replaced meanwhile
          this.pipeline.store.update(rp.spec.name, points, at.getTime());
          const ms = performance.now() - t0;
          this.pipeline.self.recordCollection(rp.spec.name, ms / 1000, true);
          rp.failures = 0;
          rp.lastCollection = {
            at: at.toISOString(),
            durationMs: Math.round(ms * 100) / 100,
            points: points.length,
          };
        } catch (err) {
          if (rp.probe !== probe) return; // closed while collecting (stopped or replaced)
          const ms = performance.now() - t0;
          this.pipeline.self.recordCollection(rp.spec.name, ms / 1000, false);
          rp.failures++;
          // One failed collection keeps the previous points; a second one drops them (no stale series).
          if (rp.failures >= 2) this.pipeline.store.removeProbe(rp.spec.name);
          const msg = (err as Error).message ?? String(err);
          rp.lastCollection = {
            at: at.toISOString(),
            durationMs: Math.round(ms * 100) / 100,
            points: 0,
            error: msg,
          };
          this._log.warn({ probe: rp.spec.name, err: msg }, 'collection failed');
        }
      }),
    );
    this.collections++;
  }
}

/** The JSON-lines sink drops (and counts) events while this much output is waiting. */
const SINK_MAX_BUFFERED = 8 * 1024 * 1024;

function podsKey(c: ResolvedConfig): string {
  return JSON.stringify({ pods: c.pods, interval: c.collectionIntervalMs });
}

async function startRegistry(
  config: ResolvedConfig,
  env: NodeJS.ProcessEnv | undefined,
): Promise<EntityRegistry> {
  const registry = new EntityRegistry(
    registryOptionsFromConfig(config.pods, {
      refreshIntervalMs: Math.max(100, config.collectionIntervalMs),
      netnsDiscovery: config.pods.netnsDiscovery,
      ...(env ? { env } : {}),
    }),
  );
  await registry.start();
  return registry;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: collection took longer than ${ms} ms`)), ms);
    }),
  ]);
}
