// The procfs kit: collect per entity, one after another; one failing entity
// (netns gone mid-read, pid exited, malformed file) adds no points and is reported in `status().details`
// (the per-entity shape every kit shares, ./status.ts), the rest is collected. Reads are synchronous
// procfs reads through fds kept open per netns and shared by the procfs probes (receiver/procfs/
// netns-files.ts: `cycle`, the collection (./cycle.ts), makes one liveness check and one read of a shared
// file per netns per collection; fds of netns that left the list are closed after each collection); the loop yields to the event loop every `YIELD_EVERY` entities so 1,000
// netns never block it in one go.
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { Logger } from '../log/logger.ts';
import type { Entity } from '../pods/entity.ts';
import { type MetricSink, pointsOf } from '../probe/sink.ts';
import type { MetricDef, MetricPoint, Probe, ProbeContext, ProbeStatus } from '../probe/types.ts';
import { sharedNetnsFiles } from '../procfs/netns-files.ts';
import { collectionCycle } from './cycle.ts';
import { asError, type EntityFailure, EntityStatus, type FailureReport } from './status.ts';

const YIELD_EVERY = 32;

export type { FailureReport } from './status.ts';

export interface ProcfsProbeOptions<A> {
  readonly log: Logger;
  /**
   * The probes' `concurrency` arg, accepted so configs stay valid; no effect: the reads are synchronous,
   * so entities are read one after another (workers only ever interleaved the yields).
   */
  readonly concurrency: number;
  /**
   * Points for one entity, pushed into `out` only once the entity's reads all succeeded. `cycle` (the
   * collection, ./cycle.ts) goes to `readNetFiles` (receiver/procfs/netns-files.ts).
   */
  readonly collectEntity?: (entity: Entity, out: MetricPoint[], cycle: object) => void;
  /** Points not attributed to an entity (`scope: 'node'`), once per collection. */
  readonly collectNode?: (out: MetricPoint[]) => void;
  /**
   * `collectEntity` through the column path (receiver/probe/sink.ts): values written into `sink`, none
   * kept when it throws. Used instead of `collectEntity` when given.
   */
  readonly writeEntity?: (entity: Entity, sink: MetricSink, cycle: object) => void;
  /** `collectNode` through the column path; used instead of it when given. */
  readonly writeNode?: (sink: MetricSink) => void;
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
  const status = new EntityStatus(opts.log);
  sharedNetnsFiles.acquire();

  // Old-style callbacks (points as objects) write into the sink as points.
  const writeEntity =
    opts.writeEntity ??
    (opts.collectEntity
      ? (entity: Entity, sink: MetricSink, cycle: object) => {
          const points: MetricPoint[] = [];
          opts.collectEntity!(entity, points, cycle);
          for (const p of points) sink.point(p);
        }
      : undefined);
  const writeNode =
    opts.writeNode ??
    (opts.collectNode
      ? (sink: MetricSink) => {
          const points: MetricPoint[] = [];
          opts.collectNode!(points);
          for (const p of points) sink.point(p);
        }
      : undefined);

  const collectInto = async (entities: readonly Entity[], sink: MetricSink): Promise<void> => {
    if (closed) return;
    const cycle = collectionCycle(); // before the first await (./cycle.ts)
    const started = performance.now();
    let nodeError: string | undefined;
    if (writeNode) {
      const mark = sink.length;
      try {
        writeNode(sink);
      } catch (err) {
        sink.truncate(mark);
        nodeError = (err as Error).message;
        opts.log.warn({ err }, 'node-level read failed');
      }
    }
    const targets = opts.skip ? entities.filter((e) => !opts.skip!(e)) : entities;
    let write = writeEntity;
    if (opts.prepare) {
      try {
        opts.prepare(targets);
      } catch (err) {
        nodeError = (err as Error).message;
        opts.log.warn({ err }, 'preparing the collection failed');
        write = undefined;
      }
    }
    // One entity after another, synchronously, yielding every YIELD_EVERY: the reads are synchronous, so
    // workers (eachEntity) only interleaved yields — at the cost of a promise and a closure per entity.
    const failures: EntityFailure[] = [];
    if (write) {
      for (let i = 0; i < targets.length; i++) {
        if (i % YIELD_EVERY === YIELD_EVERY - 1) {
          await yieldLoop();
          // Closed meanwhile (a reload, the probe disabled): a probe's close may have released what the
          // entities' reads use (the process probe's kept pid files).
          if (closed) break;
        }
        const entity = targets[i]!;
        // Synchronous from here: no other entity interleaves, so a failure can cut its points off.
        const before = sink.length;
        try {
          write(entity, sink, cycle);
        } catch (err) {
          sink.truncate(before);
          failures.push({ entity, error: asError(err) });
        }
      }
    }
    // Kept fds of netns no longer watched are closed (the same full list goes to every probe).
    sharedNetnsFiles.retain(entities);
    status.record(targets.length, failures, performance.now() - started, nodeError);
  };

  return {
    collect: (entities: readonly Entity[]): Promise<readonly MetricPoint[]> =>
      pointsOf(collectInto, entities),
    collectInto,
    status: (): ProbeStatus => (closed ? { state: 'stopped' } : status.status()),
    lastFailures: () => status.failures(),
    ...(opts.reconfigure
      ? {
          reconfigure(args: A): void {
            opts.reconfigure!(args);
          },
        }
      : {}),
    async close(): Promise<void> {
      if (!closed) sharedNetnsFiles.release();
      closed = true;
      status.markClosed();
    },
  };
}

/**
 * Which metrics a procfs probe produces: its `metrics` arg when the config gives one, else the metrics
 * the pipeline exports now (`ctx.enabledMetrics`, read at each call, so a reload that enables or
 * disables a metric applies at the next collection), else every declared metric. snmp declares 402
 * metrics and enables 69 by default: without this it would read snmp6 and emit every counter for
 * every netns only for the store to drop them.
 */
export function metricFilter(
  defs: readonly MetricDef[],
  only: readonly string[] | undefined,
  ctx?: Pick<ProbeContext, 'enabledMetrics'>,
): (name: string) => boolean {
  if (only) {
    const known = new Set(defs.map((d) => d.name));
    const set = new Set(only.filter((n) => known.has(n)));
    return (name) => set.has(name);
  }
  const enabled = ctx?.enabledMetrics;
  if (!enabled) return () => true;
  return (name) => enabled().has(name);
}
