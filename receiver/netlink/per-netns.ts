// Shared collection loop of the netlink probes: for each entity, open one netlink socket inside its
// netns, run the probe's reads, close the socket. One entity that fails (netns gone, protocol missing)
// yields no points and is counted; the others go on. Reads are synchronous (see socket.ts); the loop
// yields to the event loop every few milliseconds so a collection over 1,000 netns never blocks it long.
import type { Logger } from '../log/logger.ts';
import type { Entity } from '../pods/entity.ts';
import type { MetricPoint, ProbeStatus } from '../probe/types.ts';
import { NetlinkError } from './codec.ts';
import { NetlinkSocket, type NetlinkSocketOptions, yieldEvery } from './socket.ts';

const EINTR = 4;

export interface NetnsFailure {
  readonly entity: Entity;
  readonly error: Error;
}

export interface PerNetnsResult {
  readonly points: MetricPoint[];
  readonly failures: NetnsFailure[];
}

/**
 * Runs `read(sock, entity, out)` for every entity with a fresh socket of `protocol` opened in its netns.
 * Points pushed by a read that then throws are discarded (no partial series for a failed entity).
 */
export async function collectPerNetns(
  entities: readonly Entity[],
  protocol: number,
  read: (sock: NetlinkSocket, entity: Entity, out: MetricPoint[]) => void,
  opts: NetlinkSocketOptions = {},
): Promise<PerNetnsResult> {
  const points: MetricPoint[] = [];
  const failures: NetnsFailure[] = [];
  const pause = yieldEvery(10);
  for (const entity of entities) {
    const mark = points.length;
    let sock: NetlinkSocket | undefined;
    try {
      sock = NetlinkSocket.open(entity.netnsPath, protocol, opts);
      for (let attempt = 1; ; attempt++) {
        try {
          read(sock, entity, points);
          break;
        } catch (err) {
          // A dump interrupted by a concurrent change (NLM_F_DUMP_INTR → EINTR) is retried once.
          if (attempt >= 2 || !(err instanceof NetlinkError) || err.errno !== EINTR) throw err;
          points.length = mark;
        }
      }
    } catch (err) {
      points.length = mark;
      failures.push({ entity, error: err instanceof Error ? err : new Error(String(err)) });
    } finally {
      sock?.close();
    }
    await pause();
  }
  return { points, failures };
}

/** Tracks the outcome of the last collections for `Probe.status()` and logs failures at debug level. */
export class CollectionStatus {
  private collections = 0;
  private lastEntities = 0;
  private lastFailures: NetnsFailure[] = [];
  private totalFailures = 0;
  private closed = false;
  private readonly log: Logger;
  constructor(log: Logger) {
    this.log = log;
  }
  record(entities: number, failures: readonly NetnsFailure[]): void {
    this.collections++;
    this.lastEntities = entities;
    this.lastFailures = [...failures];
    this.totalFailures += failures.length;
    for (const f of failures) {
      this.log.debug({ netns: f.entity.netnsPath, err: f.error.message }, 'netns read failed');
    }
  }
  markClosed(): void {
    this.closed = true;
  }
  status(): ProbeStatus {
    if (this.closed) return { state: 'stopped' };
    const failed = this.lastFailures.length;
    const details = {
      collections: this.collections,
      entities: this.lastEntities,
      failedEntities: failed,
      failuresTotal: this.totalFailures,
      lastErrors: this.lastFailures.slice(0, 5).map((f) => `${f.entity.displayName}: ${f.error.message}`),
    };
    if (failed > 0 && failed === this.lastEntities) {
      return {
        state: 'degraded',
        reason: `every netns read failed: ${this.lastFailures[0]?.error.message}`,
        details,
      };
    }
    return { state: 'running', details };
  }
}
