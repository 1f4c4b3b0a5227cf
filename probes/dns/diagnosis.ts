// dns: the conntrack insert race diagnosis. When a query times out and the conntrack counters
// `insert_failed` / `clash_resolve` of the client's netns moved between just before the query was first
// sent and the moment the timeout was decided, the timeout is put down to the race (kubernetes#56903:
// parallel A/AAAA over one UDP socket, the second packet loses the conntrack insert and is dropped).
//
// The counters are read (ctnetlink, the `conntrack -S` path of probes/conntrack) once per sweep for the
// netns that sent DNS recently, and kept for the timeout window plus two sweeps. The baseline of a query
// is the newest sample taken at or before its first transmission. A pod netns that has no sample yet (its
// first DNS traffic) gets the zero baseline of a new netns: its counters started at 0 with the netns.

import { NetnsSocketPool } from '../../receiver/kit/netlink.ts';
import { conntrackStats } from '../../receiver/netlink/ctnetlink.ts';
import { NETLINK_NETFILTER } from '../../receiver/netlink/socket.ts';
import type { Entity, EntitySource } from '../../receiver/pods/entity.ts';

export interface CtCounters {
  readonly insertFailed: number;
  readonly clashResolve: number;
}

/** Counters of an entity's netns; undefined when they cannot be read (no conntrack, netns gone). */
export type CtReader = (entity: Entity) => CtCounters | undefined;

export interface Verdict {
  /** `conntrack_insert_race` when the counters moved in the window. */
  readonly cause?: string;
  readonly insertFailed?: number;
  readonly clashResolve?: number;
}

interface Sample {
  readonly atNs: bigint;
  readonly c: CtCounters;
}

const ZERO: CtCounters = { insertFailed: 0, clashResolve: 0 };

/** A reader over ctnetlink sockets kept per netns (closed when the netns leaves or fails). */
export function ctnetlinkReader(source: EntitySource, timeoutMs = 1000): { read: CtReader; close(): void } {
  const pool = new NetnsSocketPool(NETLINK_NETFILTER, { timeoutMs }, 1024, source);
  return {
    read(entity) {
      try {
        const { sock, kept } = pool.get(entity);
        try {
          const t = conntrackStats(sock).totals;
          return { insertFailed: t['insert_failed'] ?? 0, clashResolve: t['clash_resolve'] ?? 0 };
        } finally {
          if (!kept) sock.close();
        }
      } catch {
        pool.drop(entity.netnsInode);
        return undefined;
      }
    },
    close: () => pool.close(),
  };
}

export class ConntrackCorrelator {
  readonly #read: CtReader;
  readonly #keepNs: bigint;
  readonly #samples = new Map<number, Sample[]>();
  /** Reads done / failed (status). */
  readonly stats = { reads: 0, failures: 0 };

  constructor(o: { read: CtReader; keepNs: bigint }) {
    this.#read = o.read;
    this.#keepNs = o.keepNs;
  }

  /** Samples the counters of these entities at `nowNs` (kernel monotonic) and forgets old samples. */
  sample(entities: Iterable<Entity>, nowNs: bigint): void {
    for (const e of entities) {
      const c = this.#read(e);
      this.stats.reads++;
      if (!c) {
        this.stats.failures++;
        continue;
      }
      let list = this.#samples.get(e.netnsInode);
      if (!list) {
        list = [];
        this.#samples.set(e.netnsInode, list);
      }
      list.push({ atNs: nowNs, c });
    }
    for (const [netns, list] of this.#samples) {
      // keep the newest sample older than the horizon: it is the baseline of queries sent just after it
      let drop = 0;
      while (drop + 1 < list.length && nowNs - list[drop + 1]!.atNs > this.#keepNs) drop++;
      if (drop) list.splice(0, drop);
      if (list.length === 1 && nowNs - list[0]!.atNs > 4n * this.#keepNs) this.#samples.delete(netns);
    }
  }

  forget(netns: number): void {
    this.#samples.delete(netns);
  }

  /**
   * Whether the counters of `entity`'s netns moved between the query's first transmission and the newest
   * sample (taken after the timeout was decided). No verdict without a sample after the query, or without
   * a baseline (a non-pod netns seen for the first time: its counters count since long before).
   */
  diagnose(entity: Entity | undefined, queryTsNs: bigint): Verdict {
    if (!entity) return {};
    const list = this.#samples.get(entity.netnsInode) ?? [];
    const last = list[list.length - 1];
    if (!last || last.atNs < queryTsNs) return {};
    let base: CtCounters | undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.atNs <= queryTsNs) {
        base = list[i]!.c;
        break;
      }
    }
    if (!base && entity.kind === 'pod') base = ZERO; // hostNetwork pods map to the host entity
    if (!base) return {};
    const insertFailed = last.c.insertFailed - base.insertFailed;
    const clashResolve = last.c.clashResolve - base.clashResolve;
    return {
      ...(insertFailed > 0 || clashResolve > 0 ? { cause: 'conntrack_insert_race' } : {}),
      insertFailed,
      clashResolve,
    };
  }
}
