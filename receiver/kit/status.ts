// The one per-entity status shape every kit reports in `ProbeStatus.details` (procfs, netlink, eBPF):
// how many collections ran, over how many entities, which entities failed and why. One entity that fails
// (netns gone mid-read, pid exited, protocol missing, watched-netns map full) is reported here and the
// others go on; when every entity failed, the probe is `degraded`.
import type { Logger } from '../log/logger.ts';
import type { Entity } from '../pods/entity.ts';
import type { ProbeStatus } from '../probe/types.ts';

/** Failures listed in `details.failures` (the count of all of them is `failedEntities`). */
export const MAX_REPORTED_FAILURES = 20;

export interface EntityFailure {
  readonly entity: Entity;
  readonly error: Error;
}

export interface FailureReport {
  /** `Entity.displayName`. */
  readonly entity: string;
  readonly netns: number;
  readonly error: string;
}

/** `ProbeStatus.details` of every kit-built probe (plus kit-specific keys, e.g. eBPF's `programs`). */
export type EntityStatusDetails = {
  readonly collections: number;
  /** Entities of the last collection. */
  readonly entities: number;
  /** Entities of the last collection that failed. */
  readonly failedEntities: number;
  readonly failuresTotal: number;
  /** The first `MAX_REPORTED_FAILURES` failures of the last collection. */
  readonly failures: readonly FailureReport[];
  /** Wall time of the last collection (procfs, netlink; an eBPF probe's collection is map reads). */
  readonly lastDurationMs?: number;
  /** A host-wide read (not one entity's) failed in the last collection. */
  readonly nodeError?: string;
};

export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** Tracks the last collections' outcome for `Probe.status()`; failures are logged at debug level. */
export class EntityStatus {
  #collections = 0;
  #entities = 0;
  #failed = 0;
  #failuresTotal = 0;
  #failures: FailureReport[] = [];
  #durationMs: number | undefined;
  #nodeError: string | undefined;
  #closed = false;
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** One collection over `entities` entities, of which `failures` failed, taking `durationMs`. */
  record(
    entities: number,
    failures: readonly EntityFailure[],
    durationMs?: number,
    nodeError?: string,
  ): void {
    this.#collections++;
    this.#entities = entities;
    this.#failed = failures.length;
    this.#failuresTotal += failures.length;
    this.#failures = failures.slice(0, MAX_REPORTED_FAILURES).map((f) => ({
      entity: f.entity.displayName,
      netns: f.entity.netnsInode,
      error: f.error.message,
    }));
    this.#durationMs = durationMs;
    this.#nodeError = nodeError;
    for (const f of failures)
      this.#log.debug({ entity: f.entity.displayName, err: f.error }, 'entity read failed');
  }

  /** The last collection's failures (also in `details().failures`). */
  failures(): readonly FailureReport[] {
    return this.#failures;
  }

  markClosed(): void {
    this.#closed = true;
  }

  details(): EntityStatusDetails {
    return {
      collections: this.#collections,
      entities: this.#entities,
      failedEntities: this.#failed,
      failuresTotal: this.#failuresTotal,
      failures: this.#failures,
      ...(this.#durationMs === undefined
        ? {}
        : { lastDurationMs: Math.round(this.#durationMs * 1000) / 1000 }),
      ...(this.#nodeError ? { nodeError: this.#nodeError } : {}),
    };
  }

  /** Why the probe is degraded by its entities (a host-wide failure, or every entity failed), if it is. */
  degradedReason(): string | undefined {
    if (this.#nodeError) return `host-wide read failed: ${this.#nodeError}`;
    if (this.#failed > 0 && this.#failed === this.#entities)
      return `every entity failed: ${this.#failures[0]?.entity}: ${this.#failures[0]?.error}`;
    return undefined;
  }

  status(): ProbeStatus {
    if (this.#closed) return { state: 'stopped' };
    const details = this.details();
    const reason = this.degradedReason();
    return reason ? { state: 'degraded', reason, details } : { state: 'running', details };
  }
}
