// The receiver: config → entity source → probes (create / collect every collection_interval /
// reconfigure / close) → pipeline (metric store, events, exporters) → local server. Hot reload applies a new
// config without a restart; a config that fails validation is logged and the running one is kept.
//
//   const agent = await Agent.start({ configPath, extraSpecs: [syntheticSpec], entitySource });
//   ...; await agent.stop();
//
// The agent orchestrates; each part is one file of this folder: probe-set.ts (probe lifecycle and
// collection), server-control.ts (local server restarts), jsonl-sink.ts (events_jsonl), discovery.ts (pod
// discovery across reloads), pipeline-config.ts (metric/event definitions, exporters), reload.ts (one
// config application at a time), views.ts (/status and /inspect).
import { type AnyProbeSpec, probeSpecs } from '../../probes/registry.ts';
import { trimAfterCollection } from '../bpf/malloc-trim.ts';
import { AgentCaptures } from '../capture/agent-captures.ts';
import type { ResolvedConfig } from '../config/load.ts';
import { type ConfigWatcher, watchConfigFile } from '../config/watch.ts';
import { childLogger, type Logger } from '../log/logger.ts';
import { applyHeapSettings } from '../otel/heap.ts';
import { Pipeline } from '../otel/pipeline.ts';
import { nodeNameFrom } from '../otel/resource.ts';
import { Peers } from '../peers/service.ts';
import type { EntitySource } from '../pods/entity.ts';
import type { Probe } from '../probe/types.ts';
import { Discovery } from './discovery.ts';
import { JsonlSink } from './jsonl-sink.ts';
import { applyArenaLimit, arenaLimit } from './malloc-arenas.ts';
import { configurePipeline } from './pipeline-config.ts';
import { ProbeSet } from './probe-set.ts';
import { ConfigSequencer, loadInitialConfig, type ReloadResult } from './reload.ts';
import { LOW_NOFILE_HARD, nofileLimit, openFiles } from './rlimit.ts';
import { agentServerSources, ServerControl } from './server-control.ts';
import { type AgentSnapshot, inspectView, statusView } from './views.ts';

export type { ReloadResult } from './reload.ts';

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
  /** The root logger every component's logger derives from (`component` binding); default: receiver/log. */
  readonly log?: Logger;
}

/** A component's logger under the agent's root logger. */
function componentLog(opts: AgentOptions, component: string, bindings: Record<string, unknown> = {}): Logger {
  return opts.log ? opts.log.child({ component, ...bindings }) : childLogger(component, bindings);
}

export class Agent {
  readonly pipeline: Pipeline;
  readonly entities: EntitySource;
  readonly specs: readonly AnyProbeSpec[];
  /** Peer identity on events and the per-peer counters (receiver/peers). */
  readonly peers: Peers;
  /** Collections done so far. */
  collections = 0;
  #config: ResolvedConfig;
  readonly #env: NodeJS.ProcessEnv;
  readonly #log: Logger;
  readonly #startedAt = Date.now();
  readonly #discovery: Discovery;
  readonly #probes: ProbeSet;
  readonly #server: ServerControl;
  readonly #sink: JsonlSink;
  readonly #sequencer: ConfigSequencer;
  readonly #captures: AgentCaptures;
  #watcher: ConfigWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #collecting: Promise<void> | undefined;
  #stopped = false;

  private constructor(
    opts: AgentOptions,
    config: ResolvedConfig,
    specs: readonly AnyProbeSpec[],
    d: Discovery,
  ) {
    this.#config = config;
    this.specs = specs;
    this.#env = opts.env ?? process.env;
    this.#log = componentLog(opts, 'agent');
    this.#discovery = d;
    this.entities = d.entities;
    this.pipeline = new Pipeline({
      entities: this.entities,
      log: componentLog(opts, 'otel'),
      labelAllowlist: config.pods.labelAllowlist,
      cardinalityLimit: config.cardinalityLimit,
    });
    this.peers = new Peers({
      entities: this.entities,
      nodeName: nodeNameFrom(config.nodeName, this.#env),
      log: componentLog(opts, 'peers'),
      env: this.#env,
      // The node-local peer view is rebuilt on every entity change; the timer only catches address
      // changes of the host and named netns. Every second (a 1 s interval) it was the second largest item
      // of a host-only agent's profile (os.networkInterfaces; benchmarks/suite/node-exporter.ts --profile).
      refreshMs: Math.max(10_000, config.collectionIntervalMs),
    });
    this.#probes = new ProbeSet({
      peers: () => (this.#config.raw.peers.enabled ? this.peers : undefined),
      pipeline: this.pipeline,
      entities: this.entities,
      log: this.#log,
      probeLog: (name) => componentLog(opts, 'probe', { probe: name }),
    });
    this.#captures = new AgentCaptures({
      config: config.raw.capture,
      entities: this.entities,
      events: this.pipeline.events,
      log: componentLog(opts, 'capture'),
    });
    this.#server = new ServerControl({
      sources: {
        ...agentServerSources({
          pipeline: this.pipeline,
          status: (opts) => this.status(opts),
          inspect: () => this.inspect(),
          healthy: () => !this.#stopped,
          notReady: () => this.#notReady(),
          log: this.#log,
        }),
        route: (path) => this.#captures.service.route(path),
      },
      serverLog: componentLog(opts, 'server'),
      log: this.#log,
    });
    this.#sink = new JsonlSink({ events: this.pipeline.events, log: this.#log });
    this.#sequencer = new ConfigSequencer({
      specs,
      env: opts.env,
      source: opts.configPath ?? '(config text)',
      apply: (c) => this.#apply(c),
      log: this.#log,
    });
    this.pipeline.self.setSources({
      probeStates: () => this.#probes.states(),
      queueSize: () => this.pipeline.queueSize(),
      seriesCount: () => this.pipeline.store.seriesCount(),
      overflow: () => this.pipeline.store.overflowCounts(),
      captures: () => this.#captures.counts(),
    });
  }

  /** Validate the config (throws ConfigError), start probes, exporters, server and the collection loop. */
  static async start(opts: AgentOptions = {}): Promise<Agent> {
    // Before the first collection burst: the metric store makes memory grow with the pods (heap.ts).
    applyHeapSettings();
    checkOpenFileLimit(componentLog(opts, 'agent'));
    applyArenaLimit(componentLog(opts, 'agent'));
    const specs = [...(opts.specs ?? probeSpecs), ...(opts.extraSpecs ?? [])];
    const config = loadInitialConfig(opts, specs);
    const discovery = await Discovery.start({
      config,
      given: opts.entitySource,
      env: opts.env,
      log: componentLog(opts, 'agent'),
      registryLog: componentLog(opts, 'pods'),
    });
    const agent = new Agent(opts, config, specs, discovery);
    try {
      await agent.#sequencer.run(config);
    } catch (err) {
      await agent.stop();
      throw err;
    }
    agent.#schedule(0);
    if (opts.configPath !== undefined && opts.watch !== false) {
      agent.#watcher = watchConfigFile(opts.configPath, (text) => void agent.reload(text), {
        onError: (err) => agent.#log.warn({ err }, 'cannot read the config file; keeping the running config'),
        onFallback: (err) => agent.#log.info({ err }, 'config file not watched (inotify); polling it 4×/s'),
      });
    }
    return agent;
  }

  get config(): ResolvedConfig {
    return this.#config;
  }

  /** Local server URL, e.g. `http://127.0.0.1:9464`, when the server is enabled. */
  get serverUrl(): string | undefined {
    return this.#server.url;
  }

  /** The running instance of a probe (tests and benchmarks call it directly). */
  probe(name: string): Probe<unknown> | undefined {
    return this.#probes.running(name);
  }

  /** Apply new config text. A bad config is rejected (logged, returned) and the running one stays. */
  reload(text: string): Promise<ReloadResult> {
    return this.#sequencer.reload(text);
  }

  /** Run one collection of every running probe now (tests, and the loop). */
  async collectNow(): Promise<void> {
    if (this.#collecting) return this.#collecting;
    this.#collecting = this.#probes
      .collect(this.#config.collectionIntervalMs)
      .then(() => {
        this.collections++;
        // Give what the collection (and the export and scrapes since the last one) freed in glibc's arenas
        // back to the kernel: the first reads kernel layouts and BTF enum names once; later ones leave
        // netlink, zlib and V8 compilation buffers. −4 to −5 MB of RSS at 100 and 1,000 netns in a same-run
        // A/B (benchmarks/suite/scale.ts, 2026-12-07 session, issue 19). Not after every collection: at
        // intervals under 5 s only when MBs were freed (malloc-trim.ts trimAfterCollection: at 1 s a trim
        // each time was ~0.2 ms of the ~3 ms per cycle of a host-only agent, its pages faulted back in by
        // the next scrape; benchmarks/suite/node-exporter.ts like-for-like).
        trimAfterCollection();
      })
      .finally(() => {
        this.#collecting = undefined;
      });
    return this.#collecting;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#watcher?.close();
    if (this.#timer) clearTimeout(this.#timer);
    await this.#sequencer.settled();
    await this.#collecting?.catch(() => undefined);
    // Export the last collection and the queued events before the probes (and their series) go away.
    await this.pipeline.forceFlush();
    await this.#probes.closeAll();
    this.#sink.close();
    await this.#captures.stop();
    this.#discovery.stop();
    await this.peers.close();
    await this.#server.close();
    await this.pipeline.shutdown();
  }

  status(opts: { entities?: boolean } = {}): Record<string, unknown> {
    return statusView(this.#snapshot(), opts);
  }

  inspect(): Record<string, unknown> {
    return inspectView(this.#snapshot());
  }

  #snapshot(): AgentSnapshot {
    return {
      config: this.#config,
      env: this.#env,
      startedAt: this.#startedAt,
      reloads: this.#sequencer.counts,
      collections: this.collections,
      pipeline: this.pipeline,
      entities: this.entities,
      probes: this.#probes.views(),
      server: this.#server,
      sinkDropped: this.#sink.dropped,
      discovery: this.#discovery.status(),
      captures: this.#captures.status(),
      openFiles: openFileStatus(),
      mallocArenas: arenaLimit(),
      peers: this.peers.status(),
    };
  }

  /**
   * One config application, in this order: first what can fail (the server's address, pod discovery's
   * endpoint), so a failure leaves everything as it was; then the pipeline, the event sink and the probes.
   */
  async #apply(config: ResolvedConfig): Promise<void> {
    if (this.#stopped) return;
    for (const w of config.warnings)
      this.#log.warn({ config: config.source, key: w.path }, `${w.path}: ${w.message}`);
    const prev = this.#config;
    await this.#server.apply(config.server);
    await this.#discovery.apply(config);
    this.#config = config;
    await configurePipeline(this.pipeline, config, this.#env);
    await this.peers.configure(config.raw.peers, config.cardinalityLimit);
    this.pipeline.events.configure({ peers: config.raw.peers.enabled ? this.peers.resolver : null });
    this.#captures.apply(config.raw.capture);
    this.#sink.apply(config.eventsJsonl);
    await this.#probes.apply(config);
    if (prev.collectionIntervalMs !== config.collectionIntervalMs && this.#timer) this.#schedule(0);
  }

  /**
   * Readiness (/readyz): the first collection has run, so every enabled metric has a point, and pod
   * discovery has answered at least once (with pods, or with the reason it cannot: then host/netns data
   * flows and /status says why).
   */
  #notReady(): string[] {
    const missing: string[] = [];
    if (this.#stopped) missing.push('stopping');
    if (this.collections === 0) missing.push('first collection not done');
    if (!this.#discovery.answered()) missing.push('pod discovery has not answered');
    return missing;
  }

  #schedule(delayMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.collectNow().finally(() => this.#schedule(this.#config.collectionIntervalMs));
    }, delayMs);
  }
}

/** Warns when the open-file limit would not carry a node with many pods (it is never fatal). */
function checkOpenFileLimit(log: Logger): void {
  try {
    const { soft, hard } = nofileLimit();
    if (hard < LOW_NOFILE_HARD)
      log.warn(
        { soft, hard, recommended: LOW_NOFILE_HARD },
        'the open-file limit (RLIMIT_NOFILE) is low: collections fail with EMFILE at about hard/8 pods; raise LimitNOFILE of the container runtime',
      );
  } catch (err) {
    log.warn({ err }, 'cannot read the open-file limit');
  }
}

function openFileStatus(): { soft: number; hard: number; open: number } | null {
  try {
    return { ...nofileLimit(), open: openFiles() };
  } catch {
    return null;
  }
}
