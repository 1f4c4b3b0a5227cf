// The netlink kit (`createNetlinkProbe`) and its collection loop: for each entity, a netlink socket
// inside its netns (kept open across collections in a `NetnsSocketPool`, or opened and closed per
// collection without one), the probe's reads, then a liveness check of the entity (a kept socket holds its netns alive, so reading
// through it alone would not notice a deleted netns). One entity that fails (netns gone, protocol
// missing) yields no points and is counted; the others go on. Reads are synchronous (see socket.ts); the
// loop yields to the event loop every few milliseconds so a collection over 1,000 netns never blocks it.
import type { Logger } from '../log/logger.ts';
import { NetlinkError } from '../netlink/codec.ts';
import { NetlinkSocket, type NetlinkSocketOptions } from '../netlink/socket.ts';
import type { Entity, EntitySource } from '../pods/entity.ts';
import { type MetricSink, PointArray, pointsOf } from '../probe/sink.ts';
import type { MetricPoint, Probe } from '../probe/types.ts';
import { assertEntityAliveOnce } from '../procfs/liveness.ts';
import { collectionCycle } from './cycle.ts';
import { asError, type EntityFailure, EntityStatus } from './status.ts';

/** Sockets a pool keeps at most (one per netns); netns beyond it get a socket per collection. */
export const DEFAULT_POOL_LIMIT = 2048;

/**
 * One netlink socket of `protocol` per netns, opened (setns + socket) the first time the netns is read
 * and kept for the next collections. A socket is closed when its netns leaves: on the entity source's
 * `removed` change, when a collection's entity list no longer has it (`retain`), after any error on it,
 * and all of them on `close`. While open, a socket keeps its netns alive in the kernel, so the reads are
 * followed by a liveness check of the entity (`assertEntityAliveOnce`: once per netns per collection,
 * shared with the procfs probes).
 */
export class NetnsSocketPool {
  readonly protocol: number;
  readonly limit: number;
  readonly #sockets = new Map<number, NetlinkSocket>();
  #opts: NetlinkSocketOptions;
  #unsubscribe: (() => void) | undefined;

  constructor(
    protocol: number,
    opts: NetlinkSocketOptions = {},
    limit = DEFAULT_POOL_LIMIT,
    source?: EntitySource,
  ) {
    this.protocol = protocol;
    this.#opts = opts;
    this.limit = limit;
    // `source` may be a test stub without a change feed.
    if (typeof source?.onChange === 'function') {
      this.#unsubscribe = source.onChange((changes) => {
        for (const c of changes) {
          if (c.type === 'removed') this.drop(c.entity.netnsInode);
          else if (c.type === 'updated' && c.previous.netnsInode !== c.entity.netnsInode)
            this.drop(c.previous.netnsInode);
        }
      });
    }
  }

  /** Open sockets (one per netns). */
  get size(): number {
    return this.#sockets.size;
  }

  /** New socket options (timeout) for sockets opened from now on; the kept ones are reopened. */
  setOptions(opts: NetlinkSocketOptions): void {
    if (opts.timeoutMs === this.#opts.timeoutMs && opts.rcvbuf === this.#opts.rcvbuf) return;
    this.#opts = opts;
    this.clear();
  }

  /** The netns' socket, opened now if it has none. `kept` is false for a one-off socket (pool full). */
  get(entity: Entity): { sock: NetlinkSocket; kept: boolean } {
    const have = this.#sockets.get(entity.netnsInode);
    if (have && !have.closed) return { sock: have, kept: true };
    const sock = NetlinkSocket.open(entity.netnsPath, this.protocol, this.#opts);
    if (this.#sockets.size >= this.limit) return { sock, kept: false };
    this.#sockets.set(entity.netnsInode, sock);
    return { sock, kept: true };
  }

  /** Closes the socket of a netns (gone, or its socket failed). */
  drop(netnsInode: number): void {
    const s = this.#sockets.get(netnsInode);
    if (!s) return;
    s.close();
    this.#sockets.delete(netnsInode);
  }

  /** Closes the sockets of netns not in `entities`. */
  retain(entities: readonly Entity[]): void {
    if (this.#sockets.size === 0) return;
    const live = new Set<number>();
    for (const e of entities) live.add(e.netnsInode);
    for (const inode of [...this.#sockets.keys()]) if (!live.has(inode)) this.drop(inode);
  }

  clear(): void {
    for (const s of this.#sockets.values()) s.close();
    this.#sockets.clear();
  }

  /** Closes every socket and stops following the entity changes. Idempotent. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.clear();
  }
}

const EINTR = 4;

export interface PerNetnsResult {
  readonly points: MetricPoint[];
  readonly failures: EntityFailure[];
}

/**
 * Runs `read(sock, entity, out)` for every entity with a socket of `protocol` in its netns: the pool's
 * (kept across collections) when `pool` is given, else a fresh one closed afterwards. Points pushed by a
 * read that then throws are discarded (no partial series for a failed entity). With a pool, an entity
 * is checked alive after its read (its socket keeps a deleted netns readable) and the sockets of netns
 * no longer in `entities` are closed.
 */
export function collectPerNetns(
  entities: readonly Entity[],
  protocol: number,
  read: (sock: NetlinkSocket, entity: Entity, out: MetricPoint[]) => void,
  opts: NetlinkSocketOptions = {},
  pool?: NetnsSocketPool,
): Promise<PerNetnsResult> {
  return collectPerNetnsLazy(
    entities,
    protocol,
    (open, entity, out) => read(open(), entity, out),
    opts,
    pool,
  );
}

/**
 * `collectPerNetns` whose read gets a function that returns the netns' socket, opening it only when
 * called: a read that learns without netlink that there is nothing to dump (an empty netns) costs no
 * setns and no socket.
 */
export async function collectPerNetnsLazy(
  entities: readonly Entity[],
  protocol: number,
  read: (open: () => NetlinkSocket, entity: Entity, out: MetricPoint[]) => void,
  opts: NetlinkSocketOptions = {},
  pool?: NetnsSocketPool,
  cycle: object = collectionCycle(),
): Promise<PerNetnsResult> {
  const sink = new PointArray();
  const { failures } = await writePerNetns(
    entities,
    protocol,
    (open, entity) => read(open, entity, sink.points),
    sink,
    opts,
    pool,
    cycle,
  );
  return { points: sink.points, failures };
}

/** `collectPerNetnsLazy` writing into a sink (receiver/probe/sink.ts). */
export async function writePerNetns(
  entities: readonly Entity[],
  protocol: number,
  read: (open: () => NetlinkSocket, entity: Entity, out: MetricSink) => void,
  sink: MetricSink,
  opts: NetlinkSocketOptions = {},
  pool?: NetnsSocketPool,
  cycle: object = collectionCycle(),
): Promise<{ readonly failures: EntityFailure[] }> {
  // One liveness check per netns per collection (`cycle`, ./cycle.ts), shared with the other probes.
  const failures: EntityFailure[] = [];
  let last = performance.now();
  pool?.setOptions(opts);
  // One `open` for the whole loop (not a closure per entity): reads are synchronous, so it always
  // serves the entity of the current iteration.
  let entity: Entity = entities[0]!;
  let sock: NetlinkSocket | undefined;
  let kept = false;
  const open = (): NetlinkSocket => {
    if (sock) return sock;
    if (pool) ({ sock, kept } = pool.get(entity));
    else sock = NetlinkSocket.open(entity.netnsPath, protocol, opts);
    return sock;
  };
  for (let i = 0; i < entities.length; i++) {
    entity = entities[i]!;
    sock = undefined;
    kept = false;
    const mark = sink.length;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          read(open, entity, sink);
          break;
        } catch (err) {
          // A dump interrupted by a concurrent change (NLM_F_DUMP_INTR → EINTR) is retried once.
          if (attempt >= 2 || !(err instanceof NetlinkError) || err.errno !== EINTR) throw err;
          sink.truncate(mark);
        }
      }
      if (kept as boolean) assertEntityAliveOnce(entity, cycle);
    } catch (err) {
      sink.truncate(mark);
      failures.push({ entity, error: asError(err) });
      // A socket that failed (timeout, truncated reply, netns gone) is not reused.
      if (kept as boolean) pool!.drop(entity.netnsInode);
      kept = false;
    } finally {
      // (`sock` and `kept` are set inside `open`, which the compiler does not follow)
      if (!(kept as boolean)) (sock as NetlinkSocket | undefined)?.close();
    }
    // Yield to the event loop after ~10 ms of synchronous reads (a promise only then).
    if (performance.now() - last >= 10) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      last = performance.now();
    }
  }
  pool?.retain(entities);
  return { failures };
}

export interface NetlinkProbeOptions<A extends { readonly timeoutMs: number }> {
  readonly log: Logger;
  /** `NETLINK_ROUTE`, `NETLINK_SOCK_DIAG`, `NETLINK_NETFILTER` (receiver/netlink/socket.ts). */
  readonly protocol: number;
  /** The probe's entity source (`ctx.entities`): a netns that leaves gets its kept socket closed. */
  readonly entities: EntitySource;
  readonly args: A;
  /**
   * One entity's reads. `open()` returns the netns' socket, opening it on the first call (a read that
   * learns there is nothing to dump costs no setns). Points written before a throw are discarded. `out`
   * is the collection's sink (receiver/probe/sink.ts): values by series key, or points.
   */
  readonly read: (
    open: () => NetlinkSocket,
    entity: Entity,
    out: MetricSink,
    args: A,
    /** The collection (./cycle.ts), for `readNetFiles` (receiver/procfs/netns-files.ts). */
    cycle: object,
  ) => void;
  /** After each collection, e.g. to forget the state of netns no longer in `entities`. */
  readonly afterCollect?: (entities: readonly Entity[]) => void;
  readonly onClose?: () => void;
}

/**
 * The netlink kit: a probe whose `collect` reads every entity through a socket of `protocol` kept per
 * netns (`NetnsSocketPool`), whose `status` is the per-entity shape every kit shares (./status.ts), whose
 * `reconfigure` applies new args at the next collection, and whose `close` closes every socket.
 */
export function createNetlinkProbe<A extends { readonly timeoutMs: number }>(
  o: NetlinkProbeOptions<A>,
): Probe<A> {
  let args = o.args;
  const status = new EntityStatus(o.log);
  const pool = new NetnsSocketPool(o.protocol, { timeoutMs: args.timeoutMs }, undefined, o.entities);
  const collectInto = async (entities: readonly Entity[], sink: MetricSink): Promise<void> => {
    const a = args;
    const cycle = collectionCycle(); // before the first await (./cycle.ts)
    const started = performance.now();
    const { failures } = await writePerNetns(
      entities,
      o.protocol,
      (open, entity, out) => o.read(open, entity, out, a, cycle),
      sink,
      { timeoutMs: a.timeoutMs },
      pool,
      cycle,
    );
    o.afterCollect?.(entities);
    status.record(entities.length, failures, performance.now() - started);
  };
  return {
    collect: (entities: readonly Entity[]) => pointsOf(collectInto, entities),
    collectInto,
    status: () => status.status(),
    reconfigure(next: A) {
      args = next;
    },
    async close() {
      pool.close();
      o.onClose?.();
      status.markClosed();
    },
  };
}
