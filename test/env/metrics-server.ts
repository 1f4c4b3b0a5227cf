// /metrics through the agent's own wiring (receiver/agent/server-control.ts agentServerSources on a
// LocalServer) with the pipeline's Prometheus reader injected; a metric store holding one counter of 32
// series per pod (`network.io.direction` dir-0 … dir-31) to serve; and a hook on a collection's release
// (the renderer's `finally` gives the store's collection back, done or abandoned).
import type { CollectionResult } from '@opentelemetry/sdk-metrics';
import type { Logger } from 'pino';
import { agentServerSources } from '../../receiver/agent/server-control.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { MetricStore } from '../../receiver/otel/metric-store.ts';
import type { Pipeline } from '../../receiver/otel/pipeline.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricPoint } from '../../receiver/probe/types.ts';
import { LocalServer } from '../../receiver/server/server.ts';

const DIRS = Array.from({ length: 32 }, (_, k) => Object.freeze({ 'network.io.direction': `dir-${k}` }));

/** The store, updated once: series k of entity e has the value `value(e, k)`. */
export function directionStore(
  entities: readonly Entity[],
  metric: string,
  value: (e: Entity, k: number) => number,
): MetricStore {
  const store = new MetricStore({
    entities: new StaticEntitySource([...entities]),
    cardinalityLimit: 1_000_000,
  });
  store.setDefinitions([
    {
      def: {
        name: metric,
        kind: 'counter',
        unit: '{packet}',
        description: 'packets',
        attributes: ['network.io.direction'],
        enabled: true,
      },
      probe: 'p',
      enabled: true,
    },
  ]);
  const pts: MetricPoint[] = [];
  for (const e of entities)
    for (const [k, attributes] of DIRS.entries())
      pts.push({ metric, netns: e.netnsInode, attributes, value: value(e, k) });
  store.update('p', pts, 1_750_000_000_000);
  return store;
}

/** Calls `onRelease` each time a store collection in `r` is released. */
export function onCollectionRelease(r: CollectionResult, onRelease: () => void): void {
  for (const sm of r.resourceMetrics.scopeMetrics)
    for (const m of sm.metrics) {
      const c = (m as { collection?: { release(): void } }).collection;
      if (c === undefined) continue;
      const release = c.release.bind(c);
      c.release = () => {
        onRelease();
        release();
      };
    }
}

/** A LocalServer on 127.0.0.1 (port 0) whose /metrics collects through `prometheus` as the agent's does. */
export function startMetricsServer(
  prometheus: { collect(): Promise<CollectionResult> },
  log: Logger,
): Promise<LocalServer> {
  const sources = agentServerSources({
    pipeline: { prometheus } as unknown as Pipeline,
    status: () => ({}),
    inspect: () => ({}),
    healthy: () => true,
    notReady: () => [],
    log,
  });
  return LocalServer.start('127.0.0.1', 0, sources, log);
}
