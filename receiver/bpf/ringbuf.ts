// BPF ring buffer reader in pure JS: no FFI call per record.
//
// The ring is mmapped with the consumer page read-write and the producer page plus the data area read-only.
// Unlike libbpf/cilium/aya, the data area is mapped once, not twice back to back: the kernel maps every
// page of a ring mapping at mmap time (remap_vmalloc_range), so the double view counts the ring twice in
// RSS (1 MB ring = 2 MB RSS). A record whose payload wraps past the end of the data area (rare: records are
// small against the ring) is copied in two parts into a scratch buffer and handed over from there. Headers
// never wrap (8-byte aligned in a power-of-two area). Positions are u64 read/written with Atomics on
// BigUint64Arrays; each record's 8-byte header (u32 len with BUSY bit 31 and DISCARD bit 30, u32 pgoff) is
// read with Atomics, the payload is handed to the callback as a DataView window straight on kernel memory
// (copy what you keep: the bytes are reused once the consumer position moves past them).
//
// Scheduling: wait for data with koffi.node.poll on the map fd (libuv, no thread) — or, as a fallback,
// an async epoll_wait on a koffi worker thread with an eventfd for close. Each turn consumes at most
// `budget` records; if more is pending the next turn runs on setImmediate; while turns are busy
// (≥ coalesceThreshold records) it polls on a `coalesceMs` timer instead of per-wakeup, and goes back to
// waiting when quiet. Idle costs nothing: the process sleeps in epoll.
//
// Wake-ups: the kernel wakes the reader when a record is committed at the consumer position, i.e. when the
// reader had caught up — at ordinary event rates, for every event — and pays for it inside the BPF hook
// (an irq_work: a self-IPI, several µs under a hypervisor; benchmarks/ebpf/hook-cost.ts, the paced row).
// So a woken reader waits `wakeDelayMs` (50 ms) before it drains, unless a quarter of the ring is
// already unread: records committed meanwhile find the consumer behind and wake no one. That bounds the
// kernel's wake-ups to about one per `wakeDelayMs` per ring whatever the event rate, and delays an event
// by at most `wakeDelayMs` on its way to the exporter; a burst has the rest of the ring meanwhile (what
// does not fit is counted lost).
import koffi from 'koffi';
import { childLogger, type Logger } from '../log/logger.ts';
import { BpfError, libbpf, type Ptr } from './libbpf.ts';
import { track, untrack } from './lifecycle.ts';
import { BPF_MAP_TYPE, type BpfMap } from './maps.ts';

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const SC_PAGESIZE = 30;
const EPOLLIN = 1;
const EPOLL_CTL_ADD = 1;
const CLOEXEC = 0x80000;
const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;

/** Called for each committed record; `view` aliases the ring: read (or copy) before returning. */
export type RingRecordHandler = (view: DataView, offset: number, length: number) => void;

export interface RingReaderOptions {
  readonly onRecord: RingRecordHandler;
  /** Max records per turn before yielding to the event loop. Default 4096. */
  readonly budget?: number;
  /** While busy, poll every `coalesceMs` instead of waking per record. Default 5. */
  readonly coalesceMs?: number;
  /** A turn with at least this many records switches to timer polling. Default 32. */
  readonly coalesceThreshold?: number;
  /**
   * After a wake-up, drain this much later (unless a quarter of the ring is unread) so that records
   * committed meanwhile do not wake the reader again. Default 50; 0 = drain at once.
   */
  readonly wakeDelayMs?: number;
  /** 'poll' = koffi.node.poll (default), 'epoll' = async epoll_wait on a worker thread. */
  readonly wake?: 'poll' | 'epoll';
  /** Kernel-side counter of records lost to a full ring: an ARRAY/PERCPU_ARRAY of u64 and its index. */
  readonly lostCounter?: { readonly map: BpfMap; readonly index: number };
  /** Errors thrown by onRecord are caught, counted and passed here (default: logged). */
  readonly onError?: (err: unknown) => void;
  /** Do not keep the process alive just for this reader (poll wake only). */
  readonly unref?: boolean;
  /** Where the reader logs (default: component `bpf-ring`). */
  readonly log?: Logger;
}

export interface RingStats {
  /** Records delivered to onRecord. */
  records: number;
  /** Records the producer discarded (bpf_ringbuf_discard). */
  discarded: number;
  /** Times the reader was woken by the kernel. */
  wakeups: number;
  /** Wake-ups whose drain was put off by wakeDelayMs. */
  delayedWakeups: number;
  /** Consume turns run. */
  turns: number;
  /** Turns that hit the budget. */
  budgetHits: number;
  /** Exceptions thrown by onRecord. */
  handlerErrors: number;
  /** Longest single turn (drain + handlers), wall-clock ms (includes time the OS ran other processes). */
  maxTurnMs: number;
  /** Longest single turn in process CPU ms: the work the reader itself did while holding the loop. */
  maxTurnCpuMs: number;
  /** Records whose payload wrapped past the end of the data area (copied in two parts). */
  wrapped: number;
}

type Mode = 'idle' | 'waiting' | 'immediate' | 'timer' | 'closed';

export class RingReader {
  readonly name: string;
  readonly size: number;
  readonly stats: RingStats = {
    records: 0,
    discarded: 0,
    wakeups: 0,
    delayedWakeups: 0,
    turns: 0,
    budgetHits: 0,
    handlerErrors: 0,
    maxTurnMs: 0,
    maxTurnCpuMs: 0,
    wrapped: 0,
  };
  readonly #map: BpfMap;
  readonly #opts: RingReaderOptions;
  readonly #budget: number;
  readonly #coalesceMs: number;
  readonly #wakeDelayMs: number;
  readonly #threshold: number;
  readonly #page: number;
  readonly #mask: number;
  readonly #consPtr: Ptr;
  readonly #prodPtr: Ptr;
  readonly #cons: BigUint64Array;
  readonly #prod: BigUint64Array;
  readonly #data: DataView;
  readonly #bytes: Uint8Array;
  readonly #hdr: Uint32Array;
  /** Where a wrapped record is joined (grown on demand; records are small). */
  #scratch = new Uint8Array(0);
  #scratchView = new DataView(this.#scratch.buffer);
  #mode: Mode = 'idle';
  #poll: ReturnType<typeof koffi.node.poll> | null = null;
  #epfd = -1;
  #efd = -1;
  #epollArmed = false;
  #timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  readonly #log: Logger;

  constructor(map: BpfMap, opts: RingReaderOptions) {
    if (map.type !== BPF_MAP_TYPE.RINGBUF)
      throw new Error(`map ${map.name} is not a ring buffer (type ${map.type})`);
    const a = libbpf();
    this.name = `ring:${map.name}`;
    this.#map = map;
    this.#opts = opts;
    this.#log = opts.log ?? childLogger('bpf-ring');
    this.#budget = opts.budget ?? 4096;
    this.#coalesceMs = opts.coalesceMs ?? 5;
    this.#wakeDelayMs = opts.wakeDelayMs ?? 50;
    this.#threshold = opts.coalesceThreshold ?? 32;
    this.size = map.maxEntries;
    this.#mask = this.size - 1;
    this.#page = a.sysconf(SC_PAGESIZE);
    const cons = a.mmap(null, this.#page, PROT_READ | PROT_WRITE, MAP_SHARED, map.fd, 0);
    if (!cons || cons === 0xffffffffffffffffn)
      throw new BpfError(`mmap(${map.name} consumer page)`, koffi.errno());
    const prodLen = this.#page + this.size;
    const prod = a.mmap(null, prodLen, PROT_READ, MAP_SHARED, map.fd, this.#page);
    if (!prod || prod === 0xffffffffffffffffn) {
      const e = koffi.errno();
      a.munmap(cons, this.#page);
      throw new BpfError(`mmap(${map.name} producer page + data)`, e);
    }
    this.#consPtr = cons;
    this.#prodPtr = prod;
    this.#cons = new BigUint64Array(koffi.view(cons, 8));
    this.#prod = new BigUint64Array(koffi.view(prod, 8));
    const data = koffi.view(prod + BigInt(this.#page), this.size);
    this.#data = new DataView(data);
    this.#bytes = new Uint8Array(data);
    this.#hdr = new Uint32Array(data);
    track(this);
  }

  /** Bytes committed or reserved by the producer and not yet consumed. */
  pending(): number {
    if (this.#mode === 'closed') return 0;
    return Number(Atomics.load(this.#prod, 0) - Atomics.load(this.#cons, 0));
  }

  /** Records lost because the ring was full, from the kernel-side counter (0 without one). */
  lost(): number {
    const c = this.#opts.lostCounter;
    return c ? c.map.arrayU64(c.index) : 0;
  }

  /** Consumes up to `limit` committed records synchronously; returns how many were delivered or skipped. */
  drain(limit = this.#budget): number {
    if (this.#mode === 'closed') return 0;
    const consArr = this.#cons;
    const hdr = this.#hdr;
    const data = this.#data;
    const mask = this.#mask;
    const onRecord = this.#opts.onRecord;
    let cons = Number(Atomics.load(consArr, 0));
    let prod = Number(Atomics.load(this.#prod, 0));
    let n = 0;
    let sinceStore = 0;
    while (n < limit) {
      if (cons >= prod) {
        prod = Number(Atomics.load(this.#prod, 0));
        if (cons >= prod) break;
      }
      const off = cons & mask;
      const len = Atomics.load(hdr, off >>> 2);
      if (len & BUSY) break; // reserved, not yet committed
      const recLen = len & ~(BUSY | DISCARD);
      if (len & DISCARD) {
        this.stats.discarded++;
      } else {
        // off is 8-aligned, so the header fits before the end; the payload may start at 0 or wrap
        const start = (off + 8) & mask;
        let view = data;
        let at = start;
        if (start + recLen > this.size) {
          view = this.#joinWrapped(start, recLen);
          at = 0;
        }
        try {
          onRecord(view, at, recLen);
        } catch (err) {
          this.stats.handlerErrors++;
          if (this.#opts.onError) this.#opts.onError(err);
          else this.#log.error({ err }, 'ring record handler threw');
        }
        this.stats.records++;
      }
      cons += (recLen + 8 + 7) & ~7;
      n++;
      if (++sinceStore === 64) {
        Atomics.store(consArr, 0, BigInt(cons)); // give space back early
        sinceStore = 0;
      }
    }
    Atomics.store(consArr, 0, BigInt(cons));
    return n;
  }

  /** Copies a record that wraps (`start` to the end, then from 0) into the scratch buffer. */
  #joinWrapped(start: number, length: number): DataView {
    this.stats.wrapped++;
    if (this.#scratch.length < length) {
      this.#scratch = new Uint8Array(Math.max(length, 256));
      this.#scratchView = new DataView(this.#scratch.buffer);
    }
    const head = this.size - start;
    this.#scratch.set(this.#bytes.subarray(start, this.size), 0);
    this.#scratch.set(this.#bytes.subarray(0, length - head), head);
    return this.#scratchView;
  }

  /** Starts reading: wait for data, consume in budgeted turns. */
  start(): this {
    if (this.#mode !== 'idle') return this;
    const wake = this.#opts.wake ?? (process.env['PODNET_RING_WAKE'] === 'epoll' ? 'epoll' : 'poll');
    if (wake === 'poll') {
      try {
        this.#poll = koffi.node.poll(this.#map.fd, { readable: true }, () => this.#onWake());
        if (this.#opts.unref) this.#poll.unref();
      } catch (err) {
        this.#log.warn({ err }, 'koffi.node.poll unavailable; waking with async epoll_wait');
        this.#setupEpoll();
      }
    } else {
      this.#setupEpoll();
    }
    this.#mode = 'waiting';
    // Data may already be there (level-triggered wake handles it; run one turn to be explicit).
    this.#timer = setImmediate(() => this.#turn());
    this.#mode = 'immediate';
    this.#pollStop();
    return this;
  }

  #setupEpoll(): void {
    const a = libbpf();
    this.#epfd = a.epoll_create1(CLOEXEC);
    if (this.#epfd < 0) throw new BpfError('epoll_create1', koffi.errno());
    this.#efd = a.eventfd(0, CLOEXEC);
    if (this.#efd < 0) throw new BpfError('eventfd', koffi.errno());
    for (const fd of [this.#map.fd, this.#efd]) {
      const ev = Buffer.alloc(EPOLL_EVENT_SIZE);
      ev.writeUInt32LE(EPOLLIN, 0);
      ev.writeUInt32LE(fd, 4);
      if (a.epoll_ctl(this.#epfd, EPOLL_CTL_ADD, fd, ev) < 0) throw new BpfError('epoll_ctl', koffi.errno());
    }
  }

  #pollStop(): void {
    this.#poll?.stop();
  }

  #wait(): void {
    this.#mode = 'waiting';
    if (this.#poll) {
      this.#poll.start({ readable: true }, () => this.#onWake());
      return;
    }
    if (this.#epfd >= 0 && !this.#epollArmed) {
      this.#epollArmed = true;
      const events = Buffer.alloc(EPOLL_EVENT_SIZE * 2);
      libbpf().epoll_wait.async(this.#epfd, events, 2, -1, () => {
        this.#epollArmed = false;
        if (this.#mode === 'closed') {
          this.#releaseEpoll();
          return;
        }
        if (this.#mode === 'waiting') this.#onWake();
      });
    }
  }

  #onWake(): void {
    if (this.#mode !== 'waiting') return;
    this.stats.wakeups++;
    this.#pollStop();
    if (this.#wakeDelayMs > 0 && this.pending() < this.size / 4) {
      // the consumer position stays behind until then: later commits do not wake (see the header)
      this.stats.delayedWakeups++;
      this.#mode = 'timer';
      this.#timer = setTimeout(() => this.#turn(), this.#wakeDelayMs);
      return;
    }
    this.#turn();
  }

  #turn(): void {
    this.#timer = null;
    if (this.#mode === 'closed') return;
    this.stats.turns++;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const n = this.drain(this.#budget);
    const took = performance.now() - t0;
    if (took > this.stats.maxTurnMs) this.stats.maxTurnMs = took;
    if (n > 0) {
      const c = process.cpuUsage(c0);
      const cpuMs = (c.user + c.system) / 1000;
      if (cpuMs > this.stats.maxTurnCpuMs) this.stats.maxTurnCpuMs = cpuMs;
    }
    if (n >= this.#budget) {
      this.stats.budgetHits++;
      this.#mode = 'immediate';
      this.#timer = setImmediate(() => this.#turn());
    } else if (n >= this.#threshold) {
      this.#mode = 'timer';
      this.#timer = setTimeout(() => this.#turn(), this.#coalesceMs);
    } else {
      this.#wait();
    }
  }

  #releaseEpoll(): void {
    const a = libbpf();
    if (this.#epfd >= 0) a.close(this.#epfd);
    if (this.#efd >= 0) a.close(this.#efd);
    this.#epfd = -1;
    this.#efd = -1;
  }

  /** Stops waiting, unmaps the ring and releases fds. Idempotent. The map itself belongs to its collection. */
  close(): void {
    if (this.#mode === 'closed') return;
    this.#mode = 'closed';
    if (this.#timer) {
      clearTimeout(this.#timer as NodeJS.Timeout);
      clearImmediate(this.#timer as NodeJS.Immediate);
      this.#timer = null;
    }
    if (this.#poll) {
      this.#poll.stop();
      this.#poll.close();
      this.#poll = null;
    }
    if (this.#epollArmed) {
      // wake the worker blocked in epoll_wait; it releases the fds on return
      const one = Buffer.alloc(8);
      one.writeBigUInt64LE(1n);
      libbpf().write(this.#efd, one, 8);
    } else {
      this.#releaseEpoll();
    }
    const a = libbpf();
    a.munmap(this.#consPtr, this.#page);
    a.munmap(this.#prodPtr, this.#page + this.size);
    untrack(this);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The common case: read `pn_events` of a collection built on probes/include (lost = pn_stats[0]). */
export function openEventRing(
  coll: { map(name: string): BpfMap; maps: ReadonlyMap<string, BpfMap> },
  opts: Omit<RingReaderOptions, 'lostCounter'>,
): RingReader {
  const stats = coll.maps.get('pn_stats');
  return new RingReader(coll.map('pn_events'), {
    ...opts,
    ...(stats ? { lostCounter: { map: stats, index: 0 } } : {}),
  });
}
