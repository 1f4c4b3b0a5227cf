// The agent's two JSON views, built from a snapshot of its parts: /status (what runs, why not, counts of
// what was lost) and /inspect (per-entity totals and recent events for `podnet inspect`).
import type { ResolvedConfig } from '../config/load.ts';
import type { Pipeline } from '../otel/pipeline.ts';
import { nodeNameFrom } from '../otel/resource.ts';
import { PODNET_VERSION } from '../otel/version.ts';
import type { EntitySource } from '../pods/entity.ts';
import type { ArenaLimit } from './malloc-arenas.ts';
import type { ProbeView } from './probe-set.ts';
import type { ReloadCounts } from './reload.ts';

export interface AgentSnapshot {
  readonly config: ResolvedConfig;
  readonly env: NodeJS.ProcessEnv;
  /** Date.now() when the agent started. */
  readonly startedAt: number;
  readonly reloads: ReloadCounts;
  readonly collections: number;
  readonly pipeline: Pipeline;
  readonly entities: EntitySource;
  readonly probes: readonly ProbeView[];
  readonly server: { describe(): unknown; readonly streamDropped: number };
  readonly sinkDropped: number;
  /** Pod discovery status, or `{ mode: 'static' }` for a given entity source. */
  readonly discovery: unknown;
  /** RLIMIT_NOFILE and the descriptors open now (they grow with the watched netns). */
  readonly openFiles: { readonly soft: number; readonly hard: number; readonly open: number } | null;
  /** glibc's malloc arena cap (receiver/agent/malloc-arenas.ts); null without glibc. */
  readonly mallocArenas: ArenaLimit | null;
  /** Peer resolution: node-local or cluster view (receiver/peers/service.ts). */
  readonly peers: unknown;
  /** Packet captures: running now, counts by outcome, triggered files (receiver/capture/agent-captures.ts). */
  readonly captures?: unknown;
}

/** `entities: false` leaves the entity list out (`/status?entities=0`: cheap to poll at 1,000 pods). */
export function statusView(s: AgentSnapshot, opts: { entities?: boolean } = {}): Record<string, unknown> {
  const c = s.config;
  const { pipeline } = s;
  const self = pipeline.self;
  return {
    version: PODNET_VERSION,
    node: nodeNameFrom(c.nodeName, s.env) ?? null,
    uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
    config: {
      source: c.source,
      collectionIntervalMs: c.collectionIntervalMs,
      reloadsApplied: s.reloads.applied,
      reloadsRejected: s.reloads.rejected,
      lastReloadError: s.reloads.lastError ?? null,
    },
    collections: s.collections,
    server: s.server.describe(),
    probes: s.probes.map((p) => ({
      name: p.name,
      source: p.source,
      enabled: p.enabled,
      state: p.state,
      reason: p.reason ?? null,
      details: p.details ?? null,
      collectionErrors: self.collectionErrors(p.name),
      lastCollection: p.lastCollection ?? null,
    })),
    ...(opts.entities === false
      ? {}
      : {
          entities: s.entities.entities().map((e) => ({
            kind: e.kind,
            displayName: e.displayName,
            netnsInode: e.netnsInode,
            netnsName: e.netnsName ?? null,
            pod: e.pod ? { uid: e.pod.uid, name: e.pod.name, namespace: e.pod.namespace } : null,
          })),
        }),
    pods: s.entities.pods().length,
    discovery: s.discovery,
    captures: s.captures ?? null,
    limits: { openFiles: s.openFiles, mallocArenas: s.mallocArenas },
    peers: s.peers,
    events: {
      emitted: pipeline.events.emitted,
      ...self.events,
      queued: pipeline.queueSize(),
      streamDropped: s.server.streamDropped,
      sinkDropped: s.sinkDropped,
    },
    metrics: {
      series: pipeline.store.seriesCount(),
      cardinalityLimit: pipeline.store.cardinalityLimit,
      overflow: Object.fromEntries(pipeline.store.overflowCounts()),
      invalid: Object.fromEntries(pipeline.store.invalidCounts()),
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

export function inspectView(s: AgentSnapshot): Record<string, unknown> {
  const { pipeline } = s;
  const totals = pipeline.store.entityTotals();
  const known = new Map(s.entities.entities().map((e) => [e.netnsInode, e]));
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
    collectionIntervalMs: s.config.collectionIntervalMs,
    metrics: Object.fromEntries(
      pipeline.store.definitions().map((d) => [d.def.name, { kind: d.def.kind, unit: d.def.unit }]),
    ),
    entities,
    probes: s.probes.map((p) => ({ name: p.name, state: p.state, reason: p.reason, details: p.details })),
    events: { ...pipeline.self.events, emitted: pipeline.events.emitted },
    recentEvents: pipeline.events.recent().slice(-50),
  };
}
