// The probe lifecycle of the agent: create a probe when it is enabled (after its availability check),
// reconfigure or re-create it when its arguments change, close it when disabled, collect every running
// probe within a deadline, and report each one's state. The metric store is told when a probe's series
// go away (closed, unavailable, failed twice in a row) or carry over (re-created with new arguments).
import type { AnyProbeSpec } from '../../probes/registry.ts';
import { trimNativeHeap } from '../bpf/malloc-trim.ts';
import type { ResolvedConfig } from '../config/load.ts';
import { withCollectionCycle } from '../kit/cycle.ts';
import type { Logger } from '../log/logger.ts';
import type { Pipeline } from '../otel/pipeline.ts';
import type { EntitySource } from '../pods/entity.ts';
import { enabledMetricsOf } from '../probe/enabled-metrics.ts';
import type { PeerSource, Probe, ProbeContext, ProbeState } from '../probe/types.ts';

export interface ProbeSetOptions {
  readonly pipeline: Pipeline;
  readonly entities: EntitySource;
  /** Lifecycle messages that are not about one probe (close failures, collection failures). */
  readonly log: Logger;
  /** The logger handed to one probe (its `ProbeContext.log`), also used for its lifecycle messages. */
  readonly probeLog: (name: string) => Logger;
  /** Peer identity for the probes (`ProbeContext.peers`), while peer resolution is on. */
  readonly peers?: () => PeerSource | undefined;
}

export interface LastCollection {
  readonly at: string;
  readonly durationMs: number;
  readonly points: number;
  readonly error?: string;
}

export interface ProbeStateView {
  readonly state: ProbeState;
  readonly reason?: string | undefined;
  readonly details?: unknown;
}

/** What the status and inspect views show of one probe. */
export interface ProbeView extends ProbeStateView {
  readonly name: string;
  readonly source: AnyProbeSpec['source'];
  readonly enabled: boolean;
  readonly lastCollection: LastCollection | undefined;
}

interface RunningProbe {
  readonly spec: AnyProbeSpec;
  probe: Probe<unknown> | undefined;
  enabled: boolean;
  argsKey: string;
  state: ProbeState;
  reason?: string | undefined;
  failures: number;
  lastCollection?: LastCollection | undefined;
}

export class ProbeSet {
  readonly #opts: ProbeSetOptions;
  readonly #probes = new Map<string, RunningProbe>();
  /** The config's `metrics.<name>.enabled` overrides, read by each probe's `ctx.enabledMetrics`. */
  #metricEnabled: ReadonlyMap<string, boolean> = new Map();

  constructor(opts: ProbeSetOptions) {
    this.#opts = opts;
  }

  /** Bring every probe of the config to its enabled state and arguments, one after the other. */
  async apply(config: ResolvedConfig): Promise<void> {
    this.#metricEnabled = config.metricEnabled;
    for (const rp of config.probes) await this.#applyOne(rp.spec, rp.enabled, rp.args);
    // What loading BPF objects and parsing BTF freed stays in glibc's arenas until trimmed.
    trimNativeHeap();
  }

  /** The running instance of a probe (undefined when it is not running). */
  running(name: string): Probe<unknown> | undefined {
    return this.#probes.get(name)?.probe;
  }

  views(): ProbeView[] {
    return [...this.#probes.values()].map((p) => ({
      name: p.spec.name,
      source: p.spec.source,
      enabled: p.enabled,
      ...this.#state(p),
      lastCollection: p.lastCollection,
    }));
  }

  /** Name and current state of each probe (self-telemetry). */
  states(): { name: string; state: ProbeState }[] {
    return [...this.#probes.values()].map((p) => ({ name: p.spec.name, state: this.#state(p).state }));
  }

  async closeAll(): Promise<void> {
    for (const p of this.#probes.values()) await this.#close(p, 'stopped');
  }

  /**
   * Collect every running probe in parallel, each within `max(intervalMs, 1 s)`. One failed collection
   * keeps the probe's previous points; a second one in a row drops them (no stale series).
   */
  async collect(intervalMs: number): Promise<void> {
    const { pipeline } = this.#opts;
    const entities = this.#opts.entities.entities();
    // One collection token for every probe: per-netns work they share is done once (receiver/kit/cycle.ts).
    const running = withCollectionCycle(() =>
      [...this.#probes.values()].map(async (rp) => {
        const probe = rp.probe;
        if (!probe) return;
        const t0 = performance.now();
        const at = new Date();
        try {
          const limit = Math.max(intervalMs, 1000);
          let points: number;
          if (probe.collectInto) {
            // The column path (receiver/probe/sink.ts): no object per value.
            const sink = pipeline.store.sink(rp.spec.name);
            await withTimeout(probe.collectInto(entities, sink), limit, rp.spec.name);
            if (rp.probe !== probe) return; // stopped or replaced meanwhile
            pipeline.store.update(rp.spec.name, sink, at.getTime());
            points = sink.length;
          } else {
            const list = await withTimeout(probe.collect(entities), limit, rp.spec.name);
            if (rp.probe !== probe) return; // stopped or replaced meanwhile
            pipeline.store.update(rp.spec.name, list, at.getTime());
            points = list.length;
          }
          const ms = performance.now() - t0;
          pipeline.self.recordCollection(rp.spec.name, ms / 1000, true);
          rp.failures = 0;
          rp.lastCollection = {
            at: at.toISOString(),
            durationMs: Math.round(ms * 100) / 100,
            points,
          };
        } catch (err) {
          if (rp.probe !== probe) return; // closed while collecting (stopped or replaced)
          const ms = performance.now() - t0;
          pipeline.self.recordCollection(rp.spec.name, ms / 1000, false);
          rp.failures++;
          if (rp.failures >= 2) pipeline.store.removeProbe(rp.spec.name);
          const msg = (err as Error).message ?? String(err);
          rp.lastCollection = {
            at: at.toISOString(),
            durationMs: Math.round(ms * 100) / 100,
            points: 0,
            error: msg,
          };
          this.#opts.log.warn({ probe: rp.spec.name, err }, 'collection failed');
        }
      }),
    );
    await Promise.all(running);
  }

  #state(p: RunningProbe): ProbeStateView {
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

  async #applyOne(spec: AnyProbeSpec, enabled: boolean, args: unknown): Promise<void> {
    const { pipeline } = this.#opts;
    let rp = this.#probes.get(spec.name);
    if (!rp) {
      rp = { spec, probe: undefined, enabled, argsKey: '', state: 'stopped', failures: 0 };
      this.#probes.set(spec.name, rp);
    }
    rp.enabled = enabled;
    const argsKey = JSON.stringify(args);
    const log = this.#opts.probeLog(spec.name);
    if (!enabled) {
      if (rp.probe) log.info('probe disabled by config');
      await this.#close(rp, 'stopped', 'disabled in the config');
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
      pipeline.store.carryOverProbe(spec.name);
      await this.#close(rp, 'stopped', undefined, { keepSeries: true });
    }
    let avail: { available: boolean; reason?: string | undefined };
    try {
      avail = await spec.availability();
    } catch (err) {
      avail = { available: false, reason: `availability check failed: ${String(err)}` };
    }
    if (!avail.available) {
      pipeline.store.removeProbe(spec.name);
      rp.state = 'unavailable';
      rp.reason = avail.reason ?? 'not available on this host';
      log.warn({ reason: rp.reason }, 'probe unavailable');
      return;
    }
    const peers = this.#opts.peers?.();
    const ctx: ProbeContext = {
      log,
      entities: this.#opts.entities,
      emit: (ev) => pipeline.events.emit(spec.name, ev),
      enabledMetrics: enabledMetricsOf(spec, () => this.#metricEnabled),
      ...(peers ? { peers } : {}),
    };
    try {
      rp.probe = await spec.create(ctx, args);
      rp.argsKey = argsKey;
      rp.state = 'running';
      rp.reason = avail.reason;
      rp.failures = 0;
      log.info('probe started');
    } catch (err) {
      pipeline.store.removeProbe(spec.name);
      rp.probe = undefined;
      rp.state = 'unavailable';
      rp.reason = `failed to start: ${(err as Error).message ?? String(err)}`;
      log.error({ err }, 'probe failed to start');
    }
  }

  async #close(
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
    if (!opts.keepSeries) this.#opts.pipeline.store.removeProbe(rp.spec.name);
    if (probe) {
      try {
        await probe.close();
      } catch (err) {
        this.#opts.log.warn({ probe: rp.spec.name, err }, 'probe close failed');
      }
    }
  }
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
