// Glue every eBPF probe shares (see receiver/kit/README.md): open the probe's committed object next to
// its module, load it with the event tunables from the probe's args, keep the watched-netns map in the
// kernel in sync with pod discovery, turn ring records into ProbeEvents (wall clock, stacks), read
// per-CPU counter maps into MetricPoints (deleting keys of netns that are gone), and export the
// runtime's self-telemetry (events lost / suppressed, stack failures).
//
// Its parts live next to it: args.ts (event tunables), self-metrics.ts (self-telemetry names),
// availability.ts (availability before loading, the object cache), watched.ts (the watched-netns set and its
// netns slots), slots.ts (the slots' fast arrays read back as counter entries).
// Everything stays importable from here.
import { type EventHeader, monotonicToUnixNano, readEventHeader } from '../../bpf/events.ts';
import { type ChainMember, joinChains, leaveChains } from '../../bpf/hook-chain.ts';
import { kallsyms } from '../../bpf/kallsyms.ts';
import type { BpfCollection, ProgramOptions, RodataValue } from '../../bpf/object.ts';
import { openEventRing, type RingReader } from '../../bpf/ringbuf.ts';
import { readStack, symbolizeStack } from '../../bpf/stacks.ts';
import type { Logger } from '../../log/logger.ts';
import type { EntityChange } from '../../pods/entity.ts';
import type { MetricPoint, ProbeContext, ProbeEvent, ProbeStatus } from '../../probe/types.ts';
import { asError, type EntityFailure, EntityStatus } from '../status.ts';
import type { EventArgs } from './args.ts';
import { objectSpec } from './availability.ts';
import { PN_STAT, SELF_METRIC } from './self-metrics.ts';
import { addSlotted, type SlottedMap, slotTable } from './slots.ts';
import { WatchedNetns } from './watched.ts';

export { type EventArgs, eventArgsSchema, eventArgsShape, ringBytesArg } from './args.ts';
export { hookAvailability, objectSpec } from './availability.ts';
export { PN_STAT, SELF_METRIC, SELF_METRIC_DEFS } from './self-metrics.ts';
export type { SlottedMap } from './slots.ts';
export { type SlotTable, WatchedNetns } from './watched.ts';

/** One ring record, with its decoded header and wall-clock time. `view` aliases the ring: copy what you keep. */
export interface RingRecord {
  readonly view: DataView;
  readonly offset: number;
  readonly length: number;
  readonly header: EventHeader;
  readonly timeUnixNano: bigint;
}

export type RecordDecoder = (rec: RingRecord, rt: EbpfRuntime) => ProbeEvent | null;

export interface EbpfRuntimeOptions {
  /** Probe name (logs, self-telemetry attribute `podnet.probe.name`). */
  readonly probe: string;
  /** The committed object, e.g. `new URL('./packetloss.bpf.o', import.meta.url)`. */
  readonly object: URL | string;
  readonly ctx: ProbeContext;
  readonly args: EventArgs;
  /** Probe-specific `.rodata` tunables (the event tunables are filled in from `args`). */
  readonly rodata?: Readonly<Record<string, RodataValue>>;
  readonly maxEntries?: Readonly<Record<string, number>>;
  readonly programs?: Readonly<Record<string, ProgramOptions>>;
  /** Ring record → event; without it the object's ring is not read. */
  readonly decode?: RecordDecoder;
  /** PERCPU/HASH counter maps whose keys start with a u32 netns: keys of netns that are gone are deleted. */
  readonly counterMaps?: readonly string[];
  /**
   * Counter maps with a fast twin (probes/include/pn_slot.bpf.h): counter map → its PERCPU_ARRAY and the
   * key each variant of a slot stands for (netns field 0; counterEntries fills it in).
   */
  readonly slotted?: Readonly<Record<string, SlottedMap>>;
  /** Count every netns under its own inode (no watched-netns filter). Default false. */
  readonly watchAll?: boolean;
  /**
   * primary program → fallback program on the same hook (e.g. tp_btf → raw_tp). Fallbacks stay off
   * unless their primary cannot load or attach here; then the object is reloaded with the fallback.
   */
  readonly fallbacks?: Readonly<Record<string, string>>;
  /**
   * program on a hook other probes share → its PN_CHAIN map (probes/include/pn_chain.bpf.h): the program
   * joins the hook's chain (receiver/bpf/hook-chain.ts) instead of attaching on its own, so a packet pays
   * one dispatch per hook whatever the number of probes on it.
   */
  readonly chained?: Readonly<Record<string, string>>;
  /**
   * Load /proc/kallsyms before attaching (100-300 ms once) so the first event does not block the event
   * loop. Default: when stacks are on. Set it when the decoder symbolizes addresses (drop locations).
   */
  readonly symbols?: boolean;
}

/** Records decoded per event-loop turn (each becomes a ProbeEvent: a few µs each). */
const RING_BUDGET = 1024;
/** Symbolized addresses kept (drop locations repeat). */
const SYMBOL_CACHE = 4096;

/**
 * Programs of an object on a tp_btf hook that no raw_tp fallback covers (neither they nor a prototype
 * sibling on the same section have one): what `attach: raw_tp` cannot switch.
 */
export function tpBtfWithoutFallback(
  programs: readonly { name: string; section: string }[],
  fallbacks: readonly (readonly [string, string])[],
  sectionOf: (program: string) => string,
): string[] {
  const covered = new Set(fallbacks.map(([p]) => sectionOf(p)));
  return programs
    .filter((p) => p.section.startsWith('tp_btf/') && !covered.has(p.section))
    .map((p) => p.name);
}

/** A loaded, attached eBPF probe object with its ring reader and watched-netns sync. */
export class EbpfRuntime {
  readonly probe: string;
  readonly coll: BpfCollection;
  readonly watched: WatchedNetns | undefined;
  readonly ring: RingReader | undefined;
  readonly args: EventArgs;
  /** Events handed to ctx.emit / records the decoder skipped or failed on. */
  readonly counts = { emitted: 0, skipped: 0, decodeErrors: 0 };
  readonly #ctx: ProbeContext;
  readonly #log: Logger;
  readonly #counterMaps: readonly string[];
  readonly #watchAll: boolean;
  readonly #slotted: Readonly<Record<string, SlottedMap>>;
  readonly #unsubscribe: (() => void) | undefined;
  readonly #stacks = new Map<number, string[]>();
  readonly #symbols = new Map<bigint, string>();
  #stackFailuresSeen = 0;
  #closed = false;
  /** The programs of this object that run in a shared hook's chain (left before the object closes). */
  readonly #chains: ChainMember[];
  /** Entities whose netns could not be put in the watched-netns map (counted as unattributed). */
  readonly #watchFailures = new Map<number, EntityFailure>();
  readonly #entityStatus: EntityStatus;

  private constructor(o: EbpfRuntimeOptions, coll: BpfCollection, chains: ChainMember[]) {
    this.probe = o.probe;
    this.#chains = chains;
    this.coll = coll;
    this.args = o.args;
    this.#ctx = o.ctx;
    this.#log = o.ctx.log;
    this.#counterMaps = o.counterMaps ?? [];
    this.#watchAll = o.watchAll ?? false;
    this.#slotted = o.slotted ?? {};
    this.#entityStatus = new EntityStatus(o.ctx.log);
    try {
      const wm = coll.maps.get('pn_watched');
      if (wm && !this.#watchAll) {
        const watched = new WatchedNetns(wm, slotTable(coll, Object.values(o.slotted ?? {})));
        this.watched = watched;
        watched.sync(o.ctx.entities.entities().map((e) => e.netnsInode));
        this.#unsubscribe = o.ctx.entities.onChange((changes) => this.#onEntities(changes));
      }
      const decode = o.decode;
      if (decode && coll.maps.has('pn_events')) {
        this.ring = openEventRing(coll, {
          budget: RING_BUDGET,
          log: o.ctx.log,
          onRecord: (view, offset, length) => {
            const header = readEventHeader(view, offset);
            let ev: ProbeEvent | null;
            try {
              ev = decode(
                { view, offset, length, header, timeUnixNano: monotonicToUnixNano(header.tsNs) },
                this,
              );
            } catch (err) {
              this.counts.decodeErrors++;
              throw err;
            }
            if (!ev) {
              this.counts.skipped++;
              return;
            }
            this.counts.emitted++;
            this.#ctx.emit(ev);
          },
          onError: (err) => this.#log.warn({ err, probe: this.probe }, 'event decode failed'),
        }).start();
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Loads and attaches the object; throws only when the object cannot be opened or loaded at all. */
  static open(o: EbpfRuntimeOptions): EbpfRuntime {
    const spec = objectSpec(o.object);
    if (o.symbols ?? o.args.stacks) kallsyms().size; // load the symbol table now, not on the first event
    const a = o.args;
    const common: Record<string, RodataValue> = {
      pn_cfg_rate_limit: a.rateLimit,
      pn_cfg_rate_window_ns: BigInt(a.rateWindowMs) * 1_000_000n,
      pn_cfg_capture_stacks: a.stacks ? 1 : 0,
      pn_cfg_watch_all: o.watchAll ? 1 : 0,
    };
    const rodata: Record<string, RodataValue> = {};
    for (const [k, v] of Object.entries(common)) if (spec.rodata.has(k)) rodata[k] = v;
    Object.assign(rodata, o.rodata ?? {});
    const maxEntries: Record<string, number> = {};
    if (spec.maps.some((m) => m.name === 'pn_events')) maxEntries['pn_events'] = a.ringBytes;
    // A STACK_TRACE map preallocates every entry: keep it tiny when stacks are off.
    if (spec.maps.some((m) => m.name === 'pn_stacks'))
      maxEntries['pn_stacks'] = a.stacks ? a.stackEntries : 1;
    Object.assign(maxEntries, o.maxEntries ?? {});
    const fallbacks = Object.entries(o.fallbacks ?? {});
    const chained = Object.entries(o.chained ?? {});
    const load = (useFallback: ReadonlySet<string>): BpfCollection => {
      const programs: Record<string, ProgramOptions> = { ...(o.programs ?? {}) };
      for (const [p] of chained) programs[p] = { ...programs[p], autoAttach: false };
      for (const [primary, fallback] of fallbacks) {
        const on = useFallback.has(primary);
        if (on) {
          // the primary and its prototype siblings (same section, other arities) make way for the fallback
          const section = spec.program(primary).section;
          for (const p of spec.programs) {
            if (p.section === section) programs[p.name] = { ...programs[p.name], enabled: false };
          }
        }
        programs[fallback] = { ...programs[fallback], ...(on ? {} : { enabled: false }) };
      }
      const coll = spec.load({ rodata, maxEntries, programs, log: o.ctx.log });
      try {
        coll.attach();
        chains.push(...joinChains(coll, chained, o.ctx.log));
      } catch (err) {
        leaveChains(chains, o.ctx.log);
        coll.close();
        throw err;
      }
      return coll;
    };
    const chains: ChainMember[] = [];
    if (a.attach === 'raw_tp') {
      const without = tpBtfWithoutFallback(
        spec.programs.filter((p) => o.programs?.[p.name]?.enabled !== false),
        fallbacks,
        (p) => spec.program(p).section,
      );
      if (without.length)
        o.ctx.log.warn(
          { probe: o.probe, programs: without },
          fallbacks.length
            ? 'attach: raw_tp requested, but these programs have no raw_tp variant: they stay tp_btf'
            : 'attach: raw_tp requested, but this probe has no raw_tp variants: its tp_btf programs are used',
        );
    }
    let coll = load(new Set(a.attach === 'raw_tp' ? fallbacks.map(([p]) => p) : []));
    const failed = new Set(
      fallbacks.filter(([p]) => coll.programs.get(p)?.state === 'unavailable').map(([p]) => p),
    );
    if (failed.size) {
      o.ctx.log.warn({ probe: o.probe, programs: [...failed] }, 'reloading with fallback programs');
      leaveChains(chains, o.ctx.log);
      coll.close();
      coll = load(failed);
    }
    return new EbpfRuntime(o, coll, chains);
  }

  #onEntities(changes: readonly EntityChange[]): void {
    const w = this.watched;
    if (!w || this.#closed) return;
    const gone: number[] = [];
    for (const c of changes) {
      try {
        if (c.type === 'removed') {
          this.#watchFailures.delete(c.entity.netnsInode);
          w.delete(c.entity.netnsInode);
          gone.push(c.entity.netnsInode);
        } else {
          if (c.type === 'updated' && c.previous.netnsInode !== c.entity.netnsInode) {
            this.#watchFailures.delete(c.previous.netnsInode);
            w.delete(c.previous.netnsInode);
            gone.push(c.previous.netnsInode);
          }
          w.add(c.entity.netnsInode);
          this.#watchFailures.delete(c.entity.netnsInode);
        }
      } catch (err) {
        if (c.type !== 'removed')
          this.#watchFailures.set(c.entity.netnsInode, { entity: c.entity, error: asError(err) });
        this.#log.warn({ err, probe: this.probe }, 'updating the watched-netns map failed');
      }
    }
    if (gone.length) this.pruneNetns(new Set(gone));
  }

  /** Deletes counter-map keys of these netns. Returns how many keys were removed. */
  pruneNetns(inodes: ReadonlySet<number>): number {
    let n = 0;
    for (const name of this.#counterMaps) {
      const m = this.coll.maps.get(name);
      if (m) n += m.deleteWhere((k) => inodes.has(k.readUInt32LE(0)));
    }
    return n;
  }

  /**
   * Every entry of a counter map with values summed over CPUs (u64 fields). Entries of netns that are
   * no longer watched (pod gone; a late increment raced the removal) are deleted and not returned.
   */
  counterEntries(mapName: string): { key: Buffer; netns: number; values: number[] }[] {
    const m = this.coll.map(mapName);
    const out: { key: Buffer; netns: number; values: number[] }[] = [];
    const stale: Buffer[] = [];
    for (const e of m.entriesSummed()) {
      const netns = e.key.readUInt32LE(0);
      if (netns !== 0 && this.watched && !this.watched.has(netns)) {
        stale.push(e.key);
        continue;
      }
      out.push({ key: e.key, netns, values: e.values });
    }
    for (const k of stale) m.delete(k);
    const twin = this.#slotted[mapName];
    if (twin && this.watched) addSlotted(this.coll, this.watched, twin, out);
    return out;
  }

  /** `sym+0xoff` for a kernel address (raw hex when unknown). */
  symbol(addr: bigint | number): string {
    const a = BigInt(addr);
    let s = this.#symbols.get(a);
    if (s === undefined) {
      s = kallsyms().format(a);
      if (this.#symbols.size >= SYMBOL_CACHE) this.#symbols.clear();
      this.#symbols.set(a, s);
    }
    return s;
  }

  /**
   * Symbolized stack for a stack id from an event; undefined if none. bpf_get_stackid gives identical
   * stacks the same id, so entries stay in the map (and in a cache here) while they are in use; the map
   * is swept when the kernel reports stack failures (map full or a hash collision), see sweepStacks().
   */
  stack(id: number): string[] | undefined {
    if (id < 0 || this.#closed) return undefined;
    const cached = this.#stacks.get(id);
    if (cached) return cached;
    const m = this.coll.maps.get('pn_stacks');
    if (!m) return undefined;
    const addrs = readStack(m, id, true);
    if (addrs.length === 0) return undefined;
    const frames = symbolizeStack(addrs) ?? undefined;
    if (frames) this.#stacks.set(id, frames);
    return frames;
  }

  /**
   * Empties the stack map (and the cache) when the kernel counted new stack failures since the last
   * sweep: the map is full of stacks no longer needed. Events already in the ring may then miss their
   * stack. Called on every collect (selfPoints). Returns how many entries were removed.
   */
  sweepStacks(): number {
    const stats = this.coll.maps.get('pn_stats');
    const m = this.coll.maps.get('pn_stacks');
    if (!stats || !m || !this.args.stacks) return 0;
    const failed = stats.arrayU64(PN_STAT.stackFailed);
    if (failed === this.#stackFailuresSeen) return 0;
    this.#stackFailuresSeen = failed;
    this.#stacks.clear();
    return m.deleteWhere(() => true);
  }

  /** Self-telemetry points (scope node) from pn_stats and the ring reader. */
  selfPoints(): MetricPoint[] {
    if (this.#closed) return [];
    // Every probe calls this once per collection: it is when the per-entity status is taken.
    this.#entityStatus.record(this.#ctx.entities.entities().length, [...this.#watchFailures.values()]);
    this.sweepStacks();
    const attributes = { 'podnet.probe.name': this.probe };
    const stats = this.coll.maps.get('pn_stats');
    const stat = (i: number) => (stats ? stats.arrayU64(i) : 0);
    return [
      { metric: SELF_METRIC.lost, attributes, value: stat(PN_STAT.ringLost) },
      { metric: SELF_METRIC.suppressed, attributes, value: stat(PN_STAT.suppressed) },
      { metric: SELF_METRIC.read, attributes, value: this.ring?.stats.records ?? 0 },
      { metric: SELF_METRIC.stackFailures, attributes, value: stat(PN_STAT.stackFailed) },
      { metric: SELF_METRIC.counterFull, attributes, value: stat(PN_STAT.counterFull) },
    ];
  }

  /**
   * Loader status plus the per-entity shape every kit shares (../status.ts; a failed entity is one whose
   * netns could not be added to the watched-netns map) and runtime details; degraded when stacks are on
   * but kallsyms is unreadable, or when no entity could be watched.
   */
  status(): ProbeStatus {
    if (this.#closed) return { state: 'stopped' };
    const s = this.coll.probeStatus();
    const details: Record<string, unknown> = {
      ...this.#entityStatus.details(),
      ...(s.details ?? {}),
      watchedNetns: this.watched?.size ?? null,
      events: { ...this.counts, ring: this.ring ? { ...this.ring.stats } : null },
    };
    if (this.args.stacks && !kallsyms().available && s.state === 'running') {
      return { state: 'degraded', reason: kallsyms().reason ?? 'stacks unavailable', details };
    }
    const unwatched = this.#entityStatus.degradedReason();
    if (unwatched && s.state === 'running') return { state: 'degraded', reason: unwatched, details };
    return { ...s, details };
  }

  /** Takes one program out of its hook's chain (it stops running there; detach it if it also has a link). */
  unchain(program: string): void {
    const i = this.#chains.findIndex((m) => m.program === program);
    if (i >= 0) leaveChains(this.#chains.splice(i, 1), this.#log);
  }

  /** Stops the ring reader, unsubscribes, detaches and closes the object. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.ring?.close();
    leaveChains(this.#chains, this.#log);
    this.coll.close();
  }
}
