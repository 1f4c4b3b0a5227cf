// dns (on by default): every DNS query a netns sends and the response it gets, matched in the kernel by
// (netns, transport, client, server, DNS id) (dns.bpf.c, layouts in dns.h), by TC programs on pods'
// host-side veths (receiver/kit/ebpf/veth.ts) and on the host netns's own devices (hostdev.ts) with the
// default `hook: tc`; tracepoints for every netns as an option (hook `auto` / `tracepoint`: they run for
// every packet of the node). Per pod: the request duration
// histogram by question type, response code and transport; queries, responses, timeouts and truncated
// answers. Events for slow, failed (SERVFAIL / REFUSED) and timed-out queries, with the question name
// (names never go on metric series), rate limited per (netns, type) with the suppressed ones counted.
// Timeouts of queries that never got an answer are decided here by a sweep of the pending map; a timeout
// is diagnosed as the conntrack insert race when the netns' conntrack counters moved (diagnosis.ts).
import { z } from 'zod';
import { dataView, monotonicToUnixNano } from '../../receiver/bpf/events.ts';
import type { BpfMap } from '../../receiver/bpf/maps.ts';
import { transportName } from '../../receiver/kit/ebpf/decode.ts';
import { kernelRequirement } from '../../receiver/kit/ebpf/kernels.ts';
import { bucketsShape } from '../../receiver/kit/ebpf/latency.ts';
import { histFromFields, toHistogramValue } from '../../receiver/kit/ebpf/log2.ts';
import { EbpfRuntime, eventArgsShape, SELF_METRIC } from '../../receiver/kit/ebpf/runtime.ts';
import type { VethAttacher } from '../../receiver/kit/ebpf/veth.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricPoint, Probe, ProbeSpec, ProbeStatus } from '../../receiver/probe/types.ts';
import { hostDevAttacher, programs, tracepointPair, vethAttacher } from './attach.ts';
import {
  CAUSE_ATTR,
  type DnsOccurrence,
  EV,
  KEY_SIZE,
  occurrenceEvent,
  qtypeName,
  rcodeName,
  readEvent,
  readKey,
  readPending,
  SUMMARY_ATTR,
} from './decode.ts';
import { EVENTS, M, METRICS, QTYPE, RCODE } from './defs.ts';
import { ConntrackCorrelator, type CtReader, ctnetlinkReader } from './diagnosis.ts';
import { DNS_COUNT, DNS_HIST, dnsStatKey, type Program } from './dns.layout.gen.ts';
import { dnsAvailability, effectiveHook, HOOKS, OBJECT } from './hook.ts';
import type { HostDevAttacher } from './hostdev.ts';

export { M, OBJECT };

/** u64 indexes into a counter value (struct dns_count / dns_hist, dns.layout.gen.ts). */
const QUERIES = DNS_COUNT.queries / 8;
const TIMEOUTS = DNS_COUNT.timeouts / 8;
const TRUNCATED = DNS_HIST.truncated / 8;

const argsSchema = z.object({
  ...eventArgsShape,
  /**
   * `tc` (default): TC on the host-side veth of pods that have one, and on the host netns's own devices
   * (lo, NICs, bridges: the node and hostNetwork pods); UDP and TCP. A packet between two pods costs one
   * short TC run on each pod's veth. Plain netns without a veth to the host are not seen.
   * `auto`: TC on pods' veths, the tracepoints (net_dev_queue / netif_receive_skb) for every other netns
   * (hostNetwork pods, the node, plain netns); they run for every packet on the node, pods' included
   * (4 more program runs per packet between two pods).
   * `tracepoint`: the tracepoints for every netns (TCP DNS only when the message is in the skb's linear
   * area). See docs/probes-dns.md.
   */
  hook: z.enum(HOOKS).default('tc'),
  /** TC programs (hook `auto` / `tc`): TCX links where the kernel has them (6.6+), else clsact; `tcx` / `tc` force one. */
  attachMode: z.enum(['auto', 'tcx', 'tc']).default('auto'),
  ...bucketsShape,
  /** Server ports that carry DNS (UDP and TCP), at most 4. */
  ports: z.array(z.number().int().min(1).max(65535)).min(1).max(4).default([53]),
  /** A query with no response within this window is a timeout, ms. */
  timeoutMs: z.number().int().min(100).max(600_000).default(5000),
  /** A response slower than this raises a `podnet.dns.slow` event, ms. */
  slowMs: z.number().int().min(1).default(100),
  /** How often unanswered queries are swept (timeouts) and conntrack counters sampled, ms. */
  sweepMs: z.number().int().min(50).max(60_000).default(1000),
  /** Queries waiting for a response, tracked at once (LRU beyond this). */
  maxPending: z.number().int().min(256).default(16384),
  /** Diagnose timeouts against the netns' conntrack insert_failed / clash_resolve counters. */
  conntrackDiagnosis: z.boolean().default(true),
});
export type DnsArgs = z.infer<typeof argsSchema>;

/** Options the tests and benchmark use; not in the config. */
export interface DnsInternals {
  /** Replaces the ctnetlink reader (a forced insert_failed in tests). */
  readonly conntrackReader?: CtReader;
  /** As if the node's netns could not be entered, for this reason (effectiveHook). */
  readonly hostNetnsProblem?: string;
  /** Programs not loaded, as if the kernel had refused them (tests of the one-sided tracepoint hook). */
  readonly withoutPrograms?: readonly Program[];
}

export function createDnsProbe(internals: DnsInternals = {}): ProbeSpec<DnsArgs>['create'] {
  return async (ctx, parsed) => {
    const eff =
      internals.hostNetnsProblem === undefined
        ? effectiveHook(parsed.hook)
        : effectiveHook(parsed.hook, internals.hostNetnsProblem);
    if (eff.reason) ctx.log.warn({ hook: eff.hook }, `dns: ${eff.reason}`);
    const args = { ...parsed, hook: eff.hook };
    const timeoutNs = BigInt(args.timeoutMs) * 1_000_000n;
    const ports = new Uint8Array(8);
    const pv = new DataView(ports.buffer);
    args.ports.forEach((p, i) => {
      pv.setUint16(i * 2, p, true);
    });
    const queue: DnsOccurrence[] = [];
    const rt = EbpfRuntime.open({
      probe: 'dns',
      object: OBJECT,
      ctx,
      args,
      rodata: {
        dns_cfg_ports: ports,
        dns_cfg_timeout_ns: timeoutNs,
        dns_cfg_slow_ns: BigInt(args.slowMs) * 1_000_000n,
      },
      maxEntries: { dns_pending: args.maxPending },
      programs: {
        ...programs(args.hook),
        ...Object.fromEntries((internals.withoutPrograms ?? []).map((n) => [n, { enabled: false }])),
      },
      // net_dev_queue is shared with socketlatency and kernellatency (receiver/bpf/hook-chain.ts)
      chained: { dns_dev_queue: 'dns_next_dev_queue' },
      counterMaps: ['dns_hists', 'dns_counts', 'dns_pending'],
      decode: (rec) => {
        const o = readEvent(rec.view, rec.offset);
        if (o.type === EV.timeout && args.conntrackDiagnosis) {
          queue.push(o); // emitted after the next conntrack sample (tick), with the diagnosis
          return null;
        }
        return event(o, rec.header.netns);
      },
    });
    tracepointPair(rt.coll, ctx.log, (name) => rt.unchain(name));
    const pending: BpfMap = rt.coll.map('dns_pending');
    let veths: VethAttacher | undefined;
    let hostDevs: HostDevAttacher | undefined;
    try {
      veths = args.hook !== 'tracepoint' ? vethAttacher(rt.coll, ctx, args.attachMode) : undefined;
      hostDevs = args.hook === 'tc' && veths ? hostDevAttacher(rt.coll, ctx, veths) : undefined;
    } catch (err) {
      veths?.close();
      rt.close();
      throw err;
    }
    const ct = args.conntrackDiagnosis
      ? internals.conntrackReader
        ? { read: internals.conntrackReader, close() {} }
        : ctnetlinkReader(ctx.entities)
      : undefined;
    const correlator = ct
      ? new ConntrackCorrelator({ read: ct.read, keepNs: timeoutNs + 3n * BigInt(args.sweepMs) * 1_000_000n })
      : undefined;
    /** Timeouts decided by the sweep, per `${netns}:${qtype}:${l4}` (the kernel counts its own). */
    const sweptTimeouts = new Map<string, number>();
    /** netns → kernel time DNS was last seen pending there (sampled while recent). */
    const active = new Map<number, bigint>();
    const lastQueries = new Map<number, number>();
    const countsMap: BpfMap = rt.coll.map('dns_counts');
    const limiter = new Map<number, { start: bigint; n: number }>();
    let suppressed = 0;
    const swept = { timeouts: 0, diagnosed: 0, races: 0 };

    function event(o: DnsOccurrence, netns: number) {
      const e = occurrenceEvent(o);
      if (netns === 0 && o.key.rawNetns) e.attributes['podnet.netns.origin_inode'] = o.key.rawNetns;
      return {
        name: e.name,
        type: e.type,
        severity: e.severity,
        netns,
        timeUnixNano: monotonicToUnixNano(o.atNs),
        attributes: e.attributes,
      };
    }
    const entityOf = (netns: number): Entity | undefined => ctx.entities.byNetns(netns);
    const allow = (netns: number, now: bigint): boolean => {
      if (!args.rateLimit) return true;
      const w = BigInt(args.rateWindowMs) * 1_000_000n;
      const l = limiter.get(netns);
      if (!l || now - l.start >= w) {
        limiter.set(netns, { start: now, n: 1 });
        return true;
      }
      if (l.n >= args.rateLimit) {
        suppressed++;
        return false;
      }
      l.n++;
      return true;
    };

    const tick = () => {
      const now = process.hrtime.bigint();
      for (const e of pending.entries()) {
        const v = new DataView(e.value.buffer, e.value.byteOffset, e.value.byteLength);
        const p = readPending(v, 0);
        active.set(p.netns, now);
        if (now - p.tsNs < timeoutNs || !pending.delete(e.key)) continue;
        const key = readKey(new DataView(e.key.buffer, e.key.byteOffset, KEY_SIZE), 0);
        const k = `${p.netns}:${p.qtype}:${key.l4proto}`;
        sweptTimeouts.set(k, (sweptTimeouts.get(k) ?? 0) + 1);
        swept.timeouts++;
        if (!allow(p.netns, now)) continue;
        queue.push({
          type: EV.timeout,
          netns: p.netns,
          key,
          queryTsNs: p.tsNs,
          atNs: now,
          latencyNs: Number(now - p.tsNs),
          qtype: p.qtype,
          rcode: 0,
          flags: 0,
          sends: p.sends,
          name: p.name,
          nameComplete: p.nameComplete,
        });
      }
      for (const o of queue) active.set(o.netns, now);
      // netns that sent queries since the last tick (answered ones are rarely seen pending)
      if (correlator) {
        const totals = new Map<number, number>();
        for (const e of countsMap.entriesSummed()) {
          const ns = dnsStatKey.netns(dataView(e.key), 0);
          totals.set(ns, (totals.get(ns) ?? 0) + (e.values[QUERIES] ?? 0));
        }
        for (const [ns, q] of totals) {
          if (q !== lastQueries.get(ns)) active.set(ns, now);
        }
        lastQueries.clear();
        for (const [ns, q] of totals) lastQueries.set(ns, q);
      }
      const horizon = 2n * timeoutNs + 10n * BigInt(args.sweepMs) * 1_000_000n;
      for (const [n, at] of active) if (now - at > horizon) active.delete(n);
      if (correlator) {
        const sample: Entity[] = [];
        // The active netns looked up one by one (a map of all 1,000 entities built every tick was as
        // many pairs of garbage per second at 1,000 netns).
        for (const n of active.keys()) {
          const e = ctx.entities.byNetns(n);
          if (e) sample.push(e);
        }
        correlator.sample(sample, now);
      }
      for (const o of queue.splice(0)) {
        const ev = event(o, o.netns);
        const verdict = correlator?.diagnose(o.netns ? entityOf(o.netns) : undefined, o.queryTsNs);
        if (verdict?.insertFailed !== undefined) {
          swept.diagnosed++;
          const a = ev.attributes;
          a['podnet.dns.conntrack.insert_failed'] = verdict.insertFailed;
          a['podnet.dns.conntrack.clash_resolve'] = verdict.clashResolve ?? 0;
          if (verdict.cause) {
            swept.races++;
            a[CAUSE_ATTR] = verdict.cause;
            a[SUMMARY_ATTR] =
              `${a[SUMMARY_ATTR]}; conntrack insert_failed +${verdict.insertFailed}, clash_resolve +${verdict.clashResolve} in the same window: likely the conntrack insert race`;
          }
        }
        rt.counts.emitted++;
        ctx.emit(ev);
      }
    };
    let timer: NodeJS.Timeout | undefined = setInterval(() => {
      try {
        hostDevs?.scan();
        tick();
      } catch (err) {
        ctx.log.warn({ err }, 'dns: sweep failed');
      }
    }, args.sweepMs);
    timer.unref();
    const unsubscribe = ctx.entities.onChange((changes) => {
      for (const c of changes) {
        if (c.type === 'removed') {
          correlator?.forget(c.entity.netnsInode);
          active.delete(c.entity.netnsInode);
          limiter.delete(c.entity.netnsInode);
          for (const k of [...sweptTimeouts.keys()])
            if (k.startsWith(`${c.entity.netnsInode}:`)) sweptTimeouts.delete(k);
        }
      }
    });

    const probe: Probe<DnsArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        const range = args.buckets;
        // one read of dns_hists: struct dns_hist = pn_hist (HIST_FIELDS u64) then `truncated`
        for (const e of rt.counterEntries('dns_hists')) {
          const k = dataView(e.key);
          const attributes = {
            [QTYPE]: qtypeName(dnsStatKey.qtype(k, 0)),
            [RCODE]: rcodeName(dnsStatKey.rcode(k, 0)),
            'network.transport': transportName(dnsStatKey.l4proto(k, 0)),
          };
          const hist = histFromFields(e.values);
          const netns = e.netns;
          out.push({ metric: M.duration, netns, attributes, value: toHistogramValue(hist, range) });
          out.push({ metric: M.responses, netns, attributes, value: hist.count });
          out.push({ metric: M.truncated, netns, attributes, value: e.values[TRUNCATED] ?? 0 });
        }
        const timeouts = new Map(sweptTimeouts);
        for (const e of rt.counterEntries('dns_counts')) {
          const qtype = dnsStatKey.qtype(dataView(e.key), 0);
          const l4 = dnsStatKey.l4proto(dataView(e.key), 0);
          const attributes = { [QTYPE]: qtypeName(qtype), 'network.transport': transportName(l4) };
          out.push({ metric: M.queries, netns: e.netns, attributes, value: e.values[QUERIES] ?? 0 });
          const k = `${e.netns}:${qtype}:${l4}`;
          timeouts.set(k, (timeouts.get(k) ?? 0) + (e.values[TIMEOUTS] ?? 0));
        }
        for (const [k, value] of timeouts) {
          const [netns, qtype, l4] = k.split(':').map(Number) as [number, number, number];
          if (netns !== 0 && rt.watched && !rt.watched.has(netns)) continue;
          const attributes = { [QTYPE]: qtypeName(qtype), 'network.transport': transportName(l4) };
          out.push({ metric: M.timeouts, netns, attributes, value });
        }
        for (const p of rt.selfPoints()) {
          out.push(
            p.metric === SELF_METRIC.suppressed ? { ...p, value: (p.value as number) + suppressed } : p,
          );
        }
        return out;
      },
      status(): ProbeStatus {
        const s = rt.status();
        const failures = new Map([...(veths?.failures ?? []), ...(hostDevs?.failures ?? [])]);
        const degraded = s.state === 'running' && failures.size > 0;
        return {
          ...s,
          ...(degraded
            ? { state: 'degraded', reason: [...failures].map(([n, r]) => `${n}: ${r}`).join('; ') }
            : {}),
          details: {
            ...(s.details ?? {}),
            hook: args.hook,
            ...(eff.reason ? { hookReason: eff.reason } : {}),
            ...(veths
              ? { attached: veths.veths(), attachMode: veths.mode, failures: Object.fromEntries(failures) }
              : {}),
            ...(hostDevs ? { hostDevices: hostDevs.devices() } : {}),
            sweep: { ...swept, activeNetns: active.size, suppressed },
            conntrack: correlator ? { ...correlator.stats } : 'off',
          },
        };
      },
      async close() {
        if (timer) clearInterval(timer);
        timer = undefined;
        unsubscribe();
        hostDevs?.close();
        veths?.close();
        ct?.close();
        rt.close();
      },
    };
    return probe;
  };
}

export const dnsProbe: ProbeSpec<DnsArgs> = {
  name: 'dns',
  description:
    "DNS per pod: queries matched to responses in the kernel by (tuple, DNS id), seen by TC programs on pods' host-side veths and the host netns's own devices (or, with hook auto / tracepoint, tp_btf net_dev_queue / netif_receive_skb); request duration by question type and response code, responses, timeouts, truncated answers; events for slow, failed and timed-out queries with the name; timeouts diagnosed against conntrack insert failures.",
  source: 'ebpf',
  defaultEnabled: true,
  metrics: METRICS,
  events: EVENTS,
  args: argsSchema,
  availability: dnsAvailability,
  kernel: () =>
    kernelRequirement(OBJECT, [['dns_dev_queue'], ['dns_receive']], {}, [
      "TC programs on pods' host-side veths: TCX links from 6.6, clsact + cls_bpf before (hook auto / tc)",
    ]),
  create: createDnsProbe(),
};
