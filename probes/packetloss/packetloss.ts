// packetloss: every kernel packet drop from skb:kfree_skb (tp_btf, raw_tp fallback; prototype variant by
// the running kernel's BTF argument count). Counted in the kernel per (netns, drop reason, IP version,
// L4 protocol) — exact whatever happens to events — and reported as `podnet.packet.drop` events with the
// 5-tuple, interface, drop location (`sym+0xoff`), reason name (from BTF) and optional kernel stack.
// Normal frees (NOT_DROPPED_YET, CONSUMED) are not drops. Drop sites listed in `excludeLocations` (noise)
// produce no events (they are still counted). On kernels without drop reasons (< 5.17), or forced with
// `variant: location` / PODNET_PACKETLOSS_VARIANT=location, the location variant counts per dropping
// function instead, and error.type carries that function's symbol (docs/kernels.md).
import { z } from 'zod';
import { dropReasonNames, enumName, kernelBtfProblem, withVmlinuxBtf } from '../../receiver/bpf/btf.ts';
import { dataView } from '../../receiver/bpf/events.ts';
import type { ProgramOptions } from '../../receiver/bpf/object.ts';
import { packetAttributes, readTuple, transportName } from '../../receiver/kit/ebpf/decode.ts';
import { kernelRequirement } from '../../receiver/kit/ebpf/kernels.ts';
import {
  EbpfRuntime,
  eventArgsShape,
  hookAvailability,
  ringBytesArg,
  SELF_METRIC_DEFS,
} from '../../receiver/kit/ebpf/runtime.ts';
import { symbolRanges } from '../../receiver/kit/ebpf/symbols.ts';
import type { MetricDef, MetricPoint, Probe, ProbeEvent, ProbeSpec } from '../../receiver/probe/types.ts';
import {
  type MapName,
  PL_EVENT,
  PL_VAL,
  type Program,
  plEvent,
  plKey,
  plLocKey,
  type RodataName,
} from './packetloss.layout.gen.ts';

export const OBJECT = new URL('./packetloss.bpf.o', import.meta.url);
const MAX_EXCLUDE = 16;

/** KubeSkoop's ignore list (af_unix and netlink frees, socket teardown purges). */
export const DEFAULT_EXCLUDE = [
  'sk_stream_kill_queues',
  'unix_release_sock',
  'nfnetlink_rcv_batch',
  'skb_queue_purge_reason',
] as const;

const argsSchema = z.object({
  ...eventArgsShape,
  /**
   * Ring size. The reader drains at ~1 µs a record (benchmarks/RESULTS.md, section «Per area — eBPF ring
   * reader: burst drain») at most 50 ms after the kernel wakes it (receiver/bpf/ringbuf.ts, wakeDelayMs); the
   * ring holds what arrives meanwhile and while the event loop is busy elsewhere. At the default rate limit
   * (100 events/s per netns and event type) one netns sends at most 100 × 112 B = 11 KB/s: 512 KiB holds a
   * full second's burst of 46 netns at once. Every record that does not fit is counted
   * (podnet.ebpf.events.lost); raise ring_bytes for nodes with many pods that burst together.
   */
  ringBytes: ringBytesArg(512 << 10),
  /** On by default for this probe's anomaly events (bounded by the in-kernel rate limit; benchmarks/RESULTS.md). */
  stacks: z.boolean().default(true),
  /** Kernel functions whose drops produce no event (at most 16; names missing on this kernel are ignored). */
  excludeLocations: z
    .array(z.string().min(1))
    .max(MAX_EXCLUDE)
    .default([...DEFAULT_EXCLUDE]),
  /**
   * `auto`: drops by reason where kfree_skb carries one (5.17+), else by drop location; `reason` /
   * `location` force one. The environment variable PODNET_PACKETLOSS_VARIANT overrides it (tests use it
   * to prove the location variant on kernels that have reasons).
   */
  variant: z.enum(['auto', 'reason', 'location']).default('auto'),
});
export type PacketlossArgs = z.infer<typeof argsSchema>;

export const M = {
  drops: 'podnet.kernel.drop.count',
  bytes: 'podnet.kernel.drop.size',
} as const;
export const EVENT = 'podnet.packet.drop';
export const EVENT_TYPE = 'PACKETLOSS';

const metrics: MetricDef[] = [
  {
    name: M.drops,
    kind: 'counter',
    unit: '{packet}',
    description:
      "Packets dropped by the kernel (skb:kfree_skb), by kernel drop reason name (kernels >= 5.17; before, or with variant location, by the dropping function's symbol), IP version and transport. Counted in the kernel for every drop.",
    attributes: ['error.type', 'network.transport', 'network.type'],
    enabled: true,
  },
  {
    name: M.bytes,
    kind: 'counter',
    unit: 'By',
    description: 'Bytes (skb->len) of the packets counted in podnet.kernel.drop.count.',
    attributes: ['error.type', 'network.transport', 'network.type'],
    enabled: true,
  },
  ...SELF_METRIC_DEFS,
];

const REASON_PROGRAMS = {
  pl_kfree_skb4: { tpArgs: 4 },
  pl_kfree_skb3: { tpArgs: 3 },
  pl_kfree_skb4_raw: { tpArgs: 4 },
  pl_kfree_skb3_raw: { tpArgs: 3 },
} as const satisfies Partial<Record<Program, { tpArgs: number }>>;
const DROPS: MapName = 'pl_drops';
const LOC_DROPS: MapName = 'pl_loc_drops';
/** The location variant: raw_tp reading (skb, location) only, any argument count from 2. */
const LOCATION_PROGRAM = 'pl_kfree_skb2_raw';
const ALL_PROGRAMS = { ...REASON_PROGRAMS, [LOCATION_PROGRAM]: { tpArgs: { min: 2 } } } as const;
const GROUP = [...Object.keys(REASON_PROGRAMS), LOCATION_PROGRAM];
/** event reason of the location variant (packetloss.bpf.c PL_NO_REASON). */
const NO_REASON = 0xffffffff;

export type DropVariant = 'reason' | 'location';

/** The variant to run: forced by PODNET_PACKETLOSS_VARIANT or `variant`, else by kfree_skb's arity. */
export function dropVariant(requested: 'auto' | DropVariant = 'auto'): DropVariant {
  const env = process.env['PODNET_PACKETLOSS_VARIANT'];
  if (env && env !== 'reason' && env !== 'location' && env !== 'auto')
    throw new Error(`PODNET_PACKETLOSS_VARIANT: got "${env}", expected auto, reason or location`);
  const want = env === 'reason' || env === 'location' ? env : requested;
  if (want !== 'auto') return want;
  // without BTF nothing loads anyway
  if (kernelBtfProblem()) return 'reason';
  return variantForArity(withVmlinuxBtf((btf) => btf.tracepointArgs('kfree_skb')));
}

/** `auto` by kfree_skb's BTF argument count: the reason arrived with the third argument (5.17). */
export function variantForArity(kfreeSkbArgs: number | null): DropVariant {
  return kfreeSkbArgs !== null && kfreeSkbArgs >= 3 ? 'reason' : 'location';
}

/** Loader options for a variant: the other variant's programs are disabled. */
function variantPrograms(v: DropVariant): Record<string, ProgramOptions> {
  const off = { enabled: false } as const;
  if (v === 'location')
    return {
      ...Object.fromEntries(Object.keys(REASON_PROGRAMS).map((p) => [p, off])),
      [LOCATION_PROGRAM]: ALL_PROGRAMS[LOCATION_PROGRAM],
    };
  return { ...REASON_PROGRAMS, [LOCATION_PROGRAM]: off };
}

/** Function name of a `sym+0xoff` location (the counter attribute: one series per dropping function). */
export function locationFunction(symbolized: string): string {
  const i = symbolized.indexOf('+');
  return i > 0 ? symbolized.slice(0, i) : symbolized;
}

/** Event record (packetloss.bpf.c struct pl_event; layout generated from the object). */
export function decodeDrop(
  view: DataView,
  o: number,
  reasons: ReadonlyMap<number, string>,
  rt: { symbol(a: bigint): string; stack(id: number): string[] | undefined },
): Omit<ProbeEvent, 'timeUnixNano' | 'netns'> & { rawNetns: number } {
  const location = plEvent.location(view, o);
  const rawReason = plEvent.reason(view, o);
  const where = rt.symbol(location);
  // the location variant has no reason: error.type is the dropping function, as on its counters
  const reason = rawReason === NO_REASON ? locationFunction(where) : enumName(reasons, rawReason);
  const ifindex = plEvent.ifindex(view, o);
  const stackId = plEvent.stack_id(view, o);
  const len = plEvent.len(view, o);
  const rawNetns = plEvent.raw_netns(view, o);
  const t = readTuple(view, o + PL_EVENT.t);
  const ifname = plEvent.ifname(view, o);
  const attributes: Record<string, string | number | readonly string[]> = {
    'error.type': reason,
    'podnet.drop.location': where,
    'podnet.packet.size': len,
  };
  packetAttributes(t, attributes);
  if (ifname) attributes['network.interface.name'] = ifname;
  if (ifindex) attributes['podnet.interface.index'] = ifindex;
  const stack = rt.stack(stackId);
  return { name: EVENT, type: EVENT_TYPE, attributes, rawNetns, ...(stack ? { stack } : {}) };
}

// The attributes of a drop series, one frozen object per (error.type, family, transport) kept across
// collections: the store keys a frozen object's attributes once (receiver/otel/attributes-key.ts), where a
// fresh object per series per collection was sorted and keyed again each time (thousands of series at
// 1,000 netns, whose idle netns drop router solicitations and MLD reports).
const lossAttrs = new Map<string, Map<number, Readonly<Record<string, string>>>>();
let lossAttrCount = 0;
function lossAttributes(errorType: string, family: number, l4: number): Readonly<Record<string, string>> {
  const byProto = lossAttrs.get(errorType);
  const id = family * 256 + l4;
  const known = byProto?.get(id);
  if (known !== undefined) return known;
  const attributes: Record<string, string> = { 'error.type': errorType };
  if (family) {
    attributes['network.type'] = family === 6 ? 'ipv6' : 'ipv4';
    attributes['network.transport'] = transportName(l4);
  }
  Object.freeze(attributes);
  // Bounded (reasons and dropping functions are a few hundred): past it, unshared objects as before.
  if (lossAttrCount < 4096) {
    lossAttrCount++;
    if (byProto) byProto.set(id, attributes);
    else lossAttrs.set(errorType, new Map([[id, attributes]]));
  }
  return attributes;
}

export const packetlossProbe: ProbeSpec<PacketlossArgs> = {
  name: 'packetloss',
  description:
    'Kernel packet drops (skb:kfree_skb): exact per-netns counters by drop reason and transport, and rate-limited drop events with tuple, interface, location, reason and optional kernel stack.',
  source: 'ebpf',
  defaultEnabled: true,
  metrics,
  events: [
    {
      name: EVENT,
      description:
        'A packet dropped by the kernel: reason (error.type), drop location (sym+0xoff), 5-tuple, interface, optional kernel stack.',
      severity: 'WARN',
      attributes: [
        'error.type',
        'podnet.drop.location',
        'podnet.packet.size',
        'network.type',
        'network.transport',
        'source.address',
        'source.port',
        'destination.address',
        'destination.port',
        'network.interface.name',
        'podnet.interface.index',
        'podnet.netns.origin_inode',
      ],
      types: [EVENT_TYPE],
      enabled: true,
    },
  ],
  args: argsSchema,
  async availability() {
    const v = dropVariant();
    const a = hookAvailability(OBJECT, [GROUP], variantPrograms(v));
    return a.variant ? { ...a, variant: `${v} (${a.variant})` } : a;
  },
  kernel: () =>
    kernelRequirement(OBJECT, [GROUP], ALL_PROGRAMS, [
      'error.type is the kernel drop reason from 5.17 (kfree_skb with a reason); before, the drop location (function symbol, e.g. __udp4_lib_rcv) — variant location',
    ]),
  async create(ctx, args) {
    const variant = dropVariant(args.variant);
    const reasons: ReadonlyMap<number, string> = variant === 'reason' ? dropReasonNames() : new Map();
    const ranges = symbolRanges(args.excludeLocations);
    const start = new Uint8Array(8 * MAX_EXCLUDE);
    const end = new Uint8Array(8 * MAX_EXCLUDE);
    const sv = new DataView(start.buffer);
    const ev = new DataView(end.buffer);
    ranges.forEach((r, i) => {
      sv.setBigUint64(i * 8, r.start, true);
      ev.setBigUint64(i * 8, r.end, true);
    });
    const rt = EbpfRuntime.open({
      probe: 'packetloss',
      object: OBJECT,
      ctx,
      args,
      rodata: {
        pl_cfg_exclude_count: ranges.length,
        pl_cfg_exclude_start: start,
        pl_cfg_exclude_end: end,
      } satisfies Partial<Record<RodataName, unknown>>,
      programs: variantPrograms(variant),
      ...(variant === 'reason'
        ? { fallbacks: { pl_kfree_skb4: 'pl_kfree_skb4_raw', pl_kfree_skb3: 'pl_kfree_skb3_raw' } }
        : {}),
      counterMaps: [DROPS, LOC_DROPS],
      symbols: true,
      decode: (rec, r) => {
        const { rawNetns, ...e } = decodeDrop(rec.view, rec.offset, reasons, r);
        if (rec.header.netns === 0 && rawNetns) {
          (e.attributes as Record<string, number>)['podnet.netns.origin_inode'] = rawNetns;
        }
        return { ...e, netns: rec.header.netns, timeUnixNano: rec.timeUnixNano };
      },
    });
    const probe: Probe<PacketlossArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        for (const e of rt.counterEntries(DROPS)) {
          const key = dataView(e.key);
          const reason = enumName(reasons, plKey.reason(key, 0));
          const family = plKey.family(key, 0);
          const l4 = plKey.l4proto(key, 0);
          const attributes = lossAttributes(reason, family, l4);
          out.push({ metric: M.drops, netns: e.netns, attributes, value: e.values[PL_VAL.packets / 8] ?? 0 });
          out.push({ metric: M.bytes, netns: e.netns, attributes, value: e.values[PL_VAL.bytes / 8] ?? 0 });
        }
        // location variant: one series per dropping function (several call sites of a function add up)
        const byFn = new Map<
          string,
          { netns: number; attributes: Readonly<Record<string, string>>; v: number[] }
        >();
        for (const e of rt.counterEntries(LOC_DROPS)) {
          const key = dataView(e.key);
          const family = plLocKey.family(key, 0);
          const l4 = plLocKey.l4proto(key, 0);
          const fn = locationFunction(rt.symbol(plLocKey.location(key, 0)));
          const attributes = lossAttributes(fn, family, l4);
          const id = `${e.netns}\0${fn}\0${family}\0${l4}`;
          const acc = byFn.get(id) ?? { netns: e.netns, attributes, v: [0, 0] };
          acc.v[0] = (acc.v[0] ?? 0) + (e.values[PL_VAL.packets / 8] ?? 0);
          acc.v[1] = (acc.v[1] ?? 0) + (e.values[PL_VAL.bytes / 8] ?? 0);
          byFn.set(id, acc);
        }
        for (const a of byFn.values()) {
          out.push({ metric: M.drops, netns: a.netns, attributes: a.attributes, value: a.v[0] ?? 0 });
          out.push({ metric: M.bytes, netns: a.netns, attributes: a.attributes, value: a.v[1] ?? 0 });
        }
        out.push(...rt.selfPoints());
        return out;
      },
      status: () => rt.status(),
      async close() {
        rt.close();
      },
    };
    return probe;
  },
};
