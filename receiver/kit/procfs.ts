// The shared shape of the procfs probes: collect per entity (bounded concurrency through `eachEntity`),
// one failing entity (netns gone mid-read, pid exited, malformed file) adds no points and is reported in
// `status().details`, the rest is collected. Reads are synchronous procfs reads (fast, no disk); the
// loop yields to the event loop every `YIELD_EVERY` entities so 1,000 netns never block it in one go.
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { Logger } from '../log/logger.ts';
import type { Entity } from '../pods/entity.ts';
import type { MetricDef, MetricPoint, Probe, ProbeStatus } from '../probe/types.ts';
import { eachEntity } from './each-entity.ts';

const YIELD_EVERY = 32;
const MAX_REPORTED_FAILURES = 20;

export interface FailureReport {
  readonly entity: string;
  readonly netns: number;
  readonly error: string;
}

export interface ProcfsProbeOptions<A> {
  readonly log: Logger;
  readonly concurrency: number;
  /** Points for one entity, pushed into `out` only once the entity's reads all succeeded. */
  readonly collectEntity?: (entity: Entity, out: MetricPoint[]) => void;
  /** Points not attributed to an entity (`scope: 'node'`), once per collection. */
  readonly collectNode?: (out: MetricPoint[]) => void;
  /** Runs before the entities of a collection are read (e.g. one /proc scan for all of them). */
  readonly prepare?: (entities: readonly Entity[]) => void;
  /** Applies new args without a restart (metric set, interfaces, per-CPU...); kept state survives. */
  readonly reconfigure?: (args: A) => void;
  /** Entities this probe skips (e.g. the host for `process`). */
  readonly skip?: (entity: Entity) => boolean;
}

export interface ProcfsProbe<A> extends Probe<A> {
  /** Last collection's failures (also in `status().details.failures`). */
  readonly lastFailures: () => readonly FailureReport[];
}

export function createProcfsProbe<A>(opts: ProcfsProbeOptions<A>): ProcfsProbe<A> {
  let closed = false;
  let concurrency = opts.concurrency;
  let collections = 0;
  let lastEntities = 0;
  let lastFailed = 0;
  let failuresTotal = 0;
  let lastFailures: FailureReport[] = [];
  let nodeError: string | undefined;
  let lastDurationMs = 0;

  return {
    async collect(entities: readonly Entity[]): Promise<readonly MetricPoint[]> {
      if (closed) return [];
      const started = performance.now();
      const points: MetricPoint[] = [];
      nodeError = undefined;
      if (opts.collectNode) {
        try {
          const nodePoints: MetricPoint[] = [];
          opts.collectNode(nodePoints);
          for (const p of nodePoints) points.push(p);
        } catch (err) {
          nodeError = (err as Error).message;
          opts.log.warn({ err }, 'node-level read failed');
        }
      }
      const targets = opts.skip ? entities.filter((e) => !opts.skip!(e)) : entities;
      let done = 0;
      let collectEntity = opts.collectEntity;
      if (opts.prepare) {
        try {
          opts.prepare(targets);
        } catch (err) {
          nodeError = (err as Error).message;
          opts.log.warn({ err }, 'preparing the collection failed');
          collectEntity = undefined;
        }
      }
      const { failures } = collectEntity
        ? await eachEntity(targets, concurrency, async (entity) => {
            if (++done % YIELD_EVERY === 0) await yieldLoop();
            // Synchronous from here: no other entity interleaves, so a failure can cut its points off.
            const before = points.length;
            try {
              collectEntity(entity, points);
            } catch (err) {
              points.length = before;
              throw err;
            }
          })
        : { failures: [] };
      collections++;
      lastEntities = targets.length;
      lastFailed = failures.length;
      failuresTotal += failures.length;
      lastFailures = failures.slice(0, MAX_REPORTED_FAILURES).map((f) => ({
        entity: f.entity.displayName,
        netns: f.entity.netnsInode,
        error: f.error.message,
      }));
      for (const f of failures)
        opts.log.debug({ entity: f.entity.displayName, err: f.error }, 'entity read failed');
      lastDurationMs = performance.now() - started;
      return points;
    },
    status(): ProbeStatus {
      if (closed) return { state: 'stopped' };
      const details = {
        collections,
        entities: lastEntities,
        failedEntities: lastFailed,
        failuresTotal,
        failures: lastFailures,
        lastDurationMs: Math.round(lastDurationMs * 1000) / 1000,
        ...(nodeError ? { nodeError } : {}),
      };
      if (nodeError) return { state: 'degraded', reason: `host-wide read failed: ${nodeError}`, details };
      if (lastFailed > 0 && lastFailed === lastEntities) {
        return { state: 'degraded', reason: `every entity failed: ${lastFailures[0]?.error}`, details };
      }
      return { state: 'running', details };
    },
    lastFailures: () => lastFailures,
    ...(opts.reconfigure
      ? {
          reconfigure(args: A): void {
            opts.reconfigure!(args);
            const c = (args as { concurrency?: unknown }).concurrency;
            if (typeof c === 'number') concurrency = c;
          },
        }
      : {}),
    async close(): Promise<void> {
      closed = true;
    },
  };
}

/** A metric filter from the optional `metrics` arg: names to produce (default: every declared metric). */
export function metricFilter(
  defs: readonly MetricDef[],
  only: readonly string[] | undefined,
): (name: string) => boolean {
  if (!only) return () => true;
  const known = new Set(defs.map((d) => d.name));
  const set = new Set(only.filter((n) => known.has(n)));
  return (name) => set.has(name);
}

/**
 * `args` with `metrics` set to the probe's enabled metric names, for a probe whose args take that list
 * (the procfs probes) and were not given one: the probe then skips the reads, parsing and points of
 * the metrics the store would drop (snmp declares 402 metrics and enables 69 by default; without the
 * list it reads snmp6 and emits every counter for every netns).
 */
export function withEnabledMetrics<A>(
  spec: { readonly metrics: readonly MetricDef[]; readonly args: unknown },
  args: A,
  enabled: (def: MetricDef) => boolean,
): A {
  const shape = (spec.args as { shape?: Record<string, unknown> }).shape;
  if (!shape || !('metrics' in shape)) return args;
  if (typeof args !== 'object' || args === null || (args as { metrics?: unknown }).metrics !== undefined)
    return args;
  return { ...args, metrics: spec.metrics.filter(enabled).map((d) => d.name) };
}
