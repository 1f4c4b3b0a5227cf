// The one interface between a probe and the receiver. A probe lives in `probes/<name>/` and exports a
// `ProbeSpec`: what it emits (declared once; the metric/event reference in docs/ is generated from these
// declarations) and a factory for the running instance. The receiver knows probes only through this file
// and the registry (`probes/registry.ts`).
import type { ZodType } from 'zod';
import type { Logger } from '../log/logger.ts';
import type { Entity, EntitySource } from '../pods/entity.ts';
import type { Attributes, AttributeValue, MetricPoint } from './point.ts';
import type { MetricSink } from './sink.ts';

// Points live in ./point.ts so that ./sink.ts (the column path) can use them without importing this file.
export type { Attributes, AttributeValue, HistogramValue, MetricPoint } from './point.ts';

/** counter: cumulative monotonic sum (kernel counters); gauge: a level; histogram: a distribution. */
export type MetricKind = 'counter' | 'updowncounter' | 'gauge' | 'histogram';

export interface MetricDef {
  /** OTel name, e.g. `podnet.kernel.drop.count`; semconv names where one exists (`k8s.pod.network.io`). */
  readonly name: string;
  readonly kind: MetricKind;
  /** UCUM unit: `By`, `s`, `{packet}`, `{segment}`, `{socket}`, `1`. */
  readonly unit: string;
  readonly description: string;
  /** Attribute keys on this metric's points, besides the entity keys the pipeline adds. */
  readonly attributes: readonly string[];
  /** Exported by default; overridable per metric in the config (`metrics.<name>.enabled`). */
  readonly enabled: boolean;
  /** `node` for host-wide signals not attributed to an entity (softnet per CPU). Default `entity`. */
  readonly scope?: 'entity' | 'node';
}

export type Severity = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface EventDef {
  /** Log record `eventName`, e.g. `podnet.packet.drop`. */
  readonly name: string;
  readonly description: string;
  readonly severity: Severity;
  /** Attribute keys the records carry, besides the entity keys the pipeline adds. */
  readonly attributes: readonly string[];
  /** KubeSkoop-compatible values of `podnet.event.type` this event can carry (e.g. `TCPRESET_NOSOCK`). */
  readonly types: readonly string[];
  readonly enabled: boolean;
}

export interface ProbeEvent {
  /** An `EventDef.name` of this probe. */
  readonly name: string;
  /** `podnet.event.type`, e.g. `PACKETLOSS`, `TCPRESET_NOSOCK`, `SOCKET_LATENCY_READ`. */
  readonly type: string;
  readonly netns: number;
  /** Wall-clock time of the occurrence, ns since the Unix epoch (convert kernel monotonic time). */
  readonly timeUnixNano: bigint;
  readonly attributes: Attributes;
  /** Kernel stack, innermost first, `sym+0xoff` per frame, when stacks are enabled. */
  readonly stack?: readonly string[];
  readonly severity?: Severity;
}

export type ProbeState = 'running' | 'degraded' | 'unavailable' | 'stopped';

export interface ProbeStatus {
  readonly state: ProbeState;
  /** Why the probe is degraded or unavailable, in words an operator can act on. */
  readonly reason?: string;
  /** Probe-specific detail for `/status` (per-program state, counts). */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface Availability {
  readonly available: boolean;
  /** Set when not available, or when only part of the probe can run here. */
  readonly reason?: string;
  /** eBPF probes: the program variant(s) probe-before-load picks on this kernel (what load() will load). */
  readonly variant?: string;
}

/**
 * Minimum kernel of a probe, derived from the hooks each of its program variants needs
 * (receiver/kit/ebpf/kernels.ts). Versions are upstream Linux releases.
 */
export interface KernelRequirement {
  /** Oldest kernel on which the probe runs at all (some variant of at least one hook). */
  readonly min: string;
  /** Oldest kernel on which every hook has a variant (the probe runs complete, perhaps degraded features). */
  readonly all: string;
  /** What changes with the kernel: variants, features that need a newer kernel. */
  readonly notes: readonly string[];
}

export interface ProbeContext {
  readonly log: Logger;
  readonly entities: EntitySource;
  /** Hand an event to the pipeline. Never blocks; the pipeline bounds and counts what it drops. */
  emit(event: ProbeEvent): void;
  /**
   * Names of this probe's metrics the pipeline exports now (config `metrics.<name>.enabled`, else the
   * declared default): a probe may skip the reads of the others. The same Set until the config changes
   * (compare by identity to rebuild what depends on it). Absent: every declared metric is wanted.
   */
  readonly enabledMetrics?: () => ReadonlySet<string>;
  /** Peer identity (receiver/peers), when peer resolution is on. */
  readonly peers?: PeerSource;
}

export interface Probe<A = unknown> {
  /** Read the current values for these entities. One failing entity must not fail the others. */
  collect(entities: readonly Entity[]): Promise<readonly MetricPoint[]>;
  /**
   * The same collection written into `sink` (./sink.ts: a value per series key, no object per value); the
   * receiver uses it when present. The sink holds what `collect` would have returned, in the same order.
   */
  collectInto?(entities: readonly Entity[], sink: MetricSink): Promise<void>;
  status(): ProbeStatus;
  /** Apply new arguments without a restart (thresholds, limits); absent = restart on change. */
  reconfigure?(args: A): Promise<void> | void;
  /** Release everything: links, maps, fds, timers. Idempotent. */
  close(): Promise<void>;
}

export interface ProbeSpec<A = unknown> {
  /** Folder name under `probes/`, used as the config key. */
  readonly name: string;
  readonly description: string;
  readonly source: 'procfs' | 'netlink' | 'ebpf' | 'synthetic' | 'events';
  readonly defaultEnabled: boolean;
  readonly metrics: readonly MetricDef[];
  readonly events: readonly EventDef[];
  /** Schema of the probe's `args` in the config, with defaults; validated before `create`. */
  readonly args: ZodType<A>;
  /** Whether this kernel/host can run the probe; cheap, side-effect free (used by `podnet probes`). */
  availability(): Promise<Availability>;
  /** Minimum kernel (eBPF probes); absent = no kernel-version constraint beyond podnet's (procfs, netlink). */
  kernel?(): KernelRequirement;
  create(ctx: ProbeContext, args: A): Promise<Probe<A>>;
}

/**
 * What probes see of peer resolution (`ProbeContext.peers`; implemented by receiver/peers/service.ts).
 * Declared here, with the rest of the probe API, so that receiver/peers depends on it and not the reverse.
 */
export interface PeerSource {
  /** The peer an address belongs to: its frozen `podnet.peer.*` attribute set and a display string. */
  resolve(ip: string): {
    readonly attributes: Readonly<Record<string, AttributeValue>>;
    readonly display: string;
  };
  /** Start the per-peer event counters (probe `peers`); `stop` ends counting and drops them. */
  startCounting(): PeerCounting;
}

export interface PeerCounting {
  /** Current counter values: one point per (netns, metric, peer Service/workload). */
  points(): MetricPoint[];
  /** Per-peer keys not counted because a metric had cardinality_limit keys already, per metric. */
  readonly overflow: ReadonlyMap<string, number>;
  /** Drop the counters of netns not in `alive` (pods gone). */
  prune(alive: ReadonlySet<number>): void;
  stop(): void;
}
