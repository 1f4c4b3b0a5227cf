// ctevents: conntrack events from ctnetlink multicast (NFNLGRP_CONNTRACK_NEW / UPDATE / DESTROY) inside
// every watched netns, as `podnet.conntrack.event` records (KubeSkoop types ConntrackNew / ConntrackUpdate /
// ConntrackDestroy) with the original and reply tuples, ICMP type/code, TCP conntrack state, status and
// zone (decoded by receiver/netlink/ctnetlink.ts); and ConntrackInsertFailed when a netns'
// `insert_failed` statistic grows between two collections.
// Counters per (netns, event type) count every notification the kernel delivered; notifications the kernel
// could not queue (ENOBUFS) are counted as overruns. Events are rate limited per (netns, type) here.
// No BPF: one NETLINK_NETFILTER socket per netns, woken by libuv (receiver/netlink/subscription.ts).
import { z } from 'zod';
import { transportName } from '../../receiver/kit/ebpf/decode.ts';
import { collectPerNetns } from '../../receiver/kit/netlink.ts';
import type { NetlinkMessage } from '../../receiver/netlink/codec.ts';
import {
  type ConntrackEntry,
  conntrackStats,
  decodeConntrackEntry,
} from '../../receiver/netlink/ctnetlink.ts';
import { NETLINK_NETFILTER, NetlinkSocket } from '../../receiver/netlink/socket.ts';
import {
  NetlinkSubscription,
  NFNLGRP_CONNTRACK_DESTROY,
  NFNLGRP_CONNTRACK_NEW,
  NFNLGRP_CONNTRACK_UPDATE,
} from '../../receiver/netlink/subscription.ts';
import type { Entity, EntityChange } from '../../receiver/pods/entity.ts';
import type {
  Attributes,
  MetricDef,
  MetricPoint,
  Probe,
  ProbeContext,
  ProbeSpec,
  ProbeStatus,
} from '../../receiver/probe/types.ts';

const argsSchema = z.object({
  /** Events per (netns, type) per window; 0 = unlimited. Counters are never limited. */
  rateLimit: z.number().int().min(0).default(100),
  rateWindowMs: z.number().int().positive().default(1000),
  /** Notification groups to join (update is frequent: every TCP state change). */
  groups: z
    .array(z.enum(['new', 'update', 'destroy']))
    .min(1)
    .default(['new', 'destroy']),
  /** Kernel receive buffer per netns socket, bytes. */
  rcvbuf: z
    .number()
    .int()
    .min(4096)
    .default(1 << 20),
  /** Emit ConntrackInsertFailed when a netns' insert_failed statistic grows (read at collection). */
  insertFailed: z.boolean().default(true),
});
export type CteventsArgs = z.infer<typeof argsSchema>;

export const M = {
  events: 'podnet.conntrack.event.count',
  overruns: 'podnet.conntrack.event.overruns',
  suppressed: 'podnet.conntrack.event.suppressed',
} as const;
export const EVENT = 'podnet.conntrack.event';
export const TYPES = {
  new: 'ConntrackNew',
  update: 'ConntrackUpdate',
  destroy: 'ConntrackDestroy',
  insertFailed: 'ConntrackInsertFailed',
} as const;
type Kind = 'new' | 'update' | 'destroy';

const GROUP: Record<Kind, number> = {
  new: NFNLGRP_CONNTRACK_NEW,
  update: NFNLGRP_CONNTRACK_UPDATE,
  destroy: NFNLGRP_CONNTRACK_DESTROY,
};

const metrics: MetricDef[] = [
  {
    name: M.events,
    kind: 'counter',
    unit: '{event}',
    description: 'Conntrack notifications received from the kernel (ctnetlink multicast), by type.',
    attributes: ['podnet.conntrack.event.type'],
    enabled: true,
  },
  {
    name: M.overruns,
    kind: 'counter',
    unit: '{overrun}',
    description:
      'Times the kernel could not queue conntrack notifications for podnet (socket buffer full; the number of notifications lost is unknown).',
    attributes: [],
    enabled: true,
  },
  {
    name: M.suppressed,
    kind: 'counter',
    unit: '{event}',
    description: 'Conntrack events not sent because of the per-(netns, type) rate limit.',
    attributes: ['podnet.probe.name'],
    enabled: true,
    scope: 'node',
  },
];

/** enum ip_conntrack_status bits. */
const STATUS_BITS = [
  'EXPECTED',
  'SEEN_REPLY',
  'ASSURED',
  'CONFIRMED',
  'SRC_NAT',
  'DST_NAT',
  'SEQ_ADJUST',
  'SRC_NAT_DONE',
  'DST_NAT_DONE',
  'DYING',
  'FIXED_TIMEOUT',
  'TEMPLATE',
  'NAT_CLASH',
  'HELPER',
  'OFFLOAD',
  'HW_OFFLOAD',
];

function statusNames(status: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < STATUS_BITS.length; i++) if (status & (1 << i)) out.push(STATUS_BITS[i]!);
  return out;
}

/** Event attributes of a conntrack notification (decoded by receiver/netlink/ctnetlink.ts). */
export function ctAttributes(e: ConntrackEntry): Attributes {
  const a: Record<string, string | number | readonly string[]> = { 'podnet.conntrack.event.type': e.event };
  if (e.family === 2 || e.family === 10) a['network.type'] = e.family === 2 ? 'ipv4' : 'ipv6';
  if (e.orig) {
    a['network.transport'] = transportName(e.orig.proto);
    a['source.address'] = e.orig.src;
    a['destination.address'] = e.orig.dst;
    if (e.orig.sport !== undefined) a['source.port'] = e.orig.sport;
    if (e.orig.dport !== undefined) a['destination.port'] = e.orig.dport;
    if (e.orig.icmpType !== undefined) a['podnet.icmp.type'] = e.orig.icmpType;
    if (e.orig.icmpCode !== undefined) a['podnet.icmp.code'] = e.orig.icmpCode;
  }
  if (e.reply) {
    a['podnet.conntrack.reply.source.address'] = e.reply.src;
    a['podnet.conntrack.reply.destination.address'] = e.reply.dst;
    if (e.reply.sport !== undefined) a['podnet.conntrack.reply.source.port'] = e.reply.sport;
    if (e.reply.dport !== undefined) a['podnet.conntrack.reply.destination.port'] = e.reply.dport;
  }
  if (e.status !== undefined) a['podnet.conntrack.status'] = statusNames(e.status);
  if (e.tcpState) a['podnet.conntrack.tcp.state'] = e.tcpState;
  if (e.id !== undefined) a['podnet.conntrack.id'] = e.id;
  // The kernel sends a zone only when it is not the default zone 0.
  if (e.zone !== undefined) a['podnet.conntrack.zone'] = e.zone;
  return a;
}

interface NetnsState {
  readonly entity: Entity;
  sub?: NetlinkSubscription;
  error?: string;
  readonly counts: Record<Kind, number>;
  insertFailed?: number;
}

class Ctevents implements Probe<CteventsArgs> {
  readonly #ctx: ProbeContext;
  readonly #args: CteventsArgs;
  readonly #netns = new Map<number, NetnsState>();
  readonly #windows = new Map<string, { start: number; count: number }>();
  readonly #unsubscribe: () => void;
  #suppressed = 0;
  #closed = false;

  constructor(ctx: ProbeContext, args: CteventsArgs) {
    this.#ctx = ctx;
    this.#args = args;
    for (const e of ctx.entities.entities()) this.#watch(e);
    this.#unsubscribe = ctx.entities.onChange((changes) => this.#onChange(changes));
  }

  #onChange(changes: readonly EntityChange[]): void {
    for (const c of changes) {
      if (c.type === 'removed') this.#unwatch(c.entity.netnsInode);
      else if (!this.#netns.has(c.entity.netnsInode)) this.#watch(c.entity);
    }
  }

  #watch(entity: Entity): void {
    const st: NetnsState = { entity, counts: { new: 0, update: 0, destroy: 0 } };
    this.#netns.set(entity.netnsInode, st);
    try {
      st.sub = NetlinkSubscription.open(
        entity.netnsPath,
        NETLINK_NETFILTER,
        this.#args.groups.map((g) => GROUP[g]),
        (msg) => this.#onMessage(st, msg),
        {
          rcvbuf: this.#args.rcvbuf,
          onError: (err) => this.#ctx.log.debug({ err, netns: entity.netnsInode }, 'ctnetlink'),
        },
      );
      st.sub.unref();
    } catch (err) {
      st.error = (err as Error).message;
      this.#ctx.log.warn({ err, netns: entity.netnsInode }, 'conntrack events unavailable in this netns');
    }
  }

  #unwatch(inode: number): void {
    this.#netns.get(inode)?.sub?.close();
    this.#netns.delete(inode);
    for (const k of [...this.#windows.keys()]) if (k.startsWith(`${inode}:`)) this.#windows.delete(k);
  }

  #allow(netns: number, type: string): boolean {
    const limit = this.#args.rateLimit;
    if (!limit) return true;
    const key = `${netns}:${type}`;
    const now = Date.now();
    let w = this.#windows.get(key);
    if (!w || now - w.start >= this.#args.rateWindowMs) {
      w = { start: now, count: 0 };
      this.#windows.set(key, w);
    }
    if (w.count++ < limit) return true;
    this.#suppressed++;
    return false;
  }

  #onMessage(st: NetnsState, msg: NetlinkMessage): void {
    let e: ConntrackEntry | undefined;
    try {
      e = decodeConntrackEntry(msg);
    } catch (err) {
      // A malformed notification (truncated, tuple without addresses) is skipped, like other messages.
      this.#ctx.log.debug({ err, netns: st.entity.netnsInode }, 'undecodable conntrack notification');
      return;
    }
    if (!e) return;
    st.counts[e.event]++;
    const type = TYPES[e.event];
    const netns = st.entity.netnsInode;
    if (!this.#allow(netns, type)) return;
    this.#ctx.emit({
      name: EVENT,
      type,
      netns,
      timeUnixNano: BigInt(Date.now()) * 1_000_000n,
      attributes: ctAttributes(e),
    });
  }

  async collect(entities: readonly Entity[]): Promise<readonly MetricPoint[]> {
    const out: MetricPoint[] = [];
    for (const [netns, st] of this.#netns) {
      for (const kind of this.#args.groups) {
        out.push({
          metric: M.events,
          netns,
          attributes: { 'podnet.conntrack.event.type': kind },
          value: st.counts[kind],
        });
      }
      out.push({ metric: M.overruns, netns, value: st.sub?.stats.overruns ?? 0 });
    }
    out.push({
      metric: M.suppressed,
      attributes: { 'podnet.probe.name': 'ctevents' },
      value: this.#suppressed,
    });
    if (this.#args.insertFailed) await this.#checkInsertFailed(entities);
    return out;
  }

  async #checkInsertFailed(entities: readonly Entity[]): Promise<void> {
    const watched = entities.filter((e) => this.#netns.has(e.netnsInode));
    const values = new Map<number, number>();
    await collectPerNetns(watched, NETLINK_NETFILTER, (sock, entity) => {
      values.set(entity.netnsInode, conntrackStats(sock).totals['insert_failed'] ?? 0);
    });
    for (const [netns, v] of values) {
      const st = this.#netns.get(netns);
      if (!st) continue;
      const prev = st.insertFailed;
      st.insertFailed = v;
      if (prev === undefined || v <= prev) continue;
      if (!this.#allow(netns, TYPES.insertFailed)) continue;
      this.#ctx.emit({
        name: EVENT,
        type: TYPES.insertFailed,
        netns,
        timeUnixNano: BigInt(Date.now()) * 1_000_000n,
        attributes: {
          'podnet.conntrack.event.type': 'insert_failed',
          'podnet.conntrack.insert_failed': v - prev,
        },
      });
    }
  }

  status(): ProbeStatus {
    if (this.#closed) return { state: 'stopped' };
    const failed = [...this.#netns.values()].filter((s) => s.error);
    const details = {
      netns: this.#netns.size,
      failed: failed.map((s) => ({ netns: s.entity.netnsInode, error: s.error })),
      suppressed: this.#suppressed,
    };
    if (failed.length === 0) return { state: 'running', details };
    const reason = `ctnetlink subscription failed in ${failed.length} netns: ${failed[0]!.error}`;
    return { state: failed.length === this.#netns.size ? 'unavailable' : 'degraded', reason, details };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    for (const inode of [...this.#netns.keys()]) this.#unwatch(inode);
  }
}

export const cteventsProbe: ProbeSpec<CteventsArgs> = {
  name: 'ctevents',
  description:
    'Conntrack events per netns from ctnetlink multicast (new, update, destroy) with original and reply tuples, plus insert failures from the conntrack statistics.',
  source: 'netlink',
  defaultEnabled: false,
  metrics,
  events: [
    {
      name: EVENT,
      description:
        'A conntrack entry created, updated or destroyed (original tuple as source/destination, ICMP type and code, reply tuple, TCP conntrack state, status flags, zone when not 0), or insert failures counted by the kernel since the last collection.',
      severity: 'INFO',
      attributes: [
        'podnet.conntrack.event.type',
        'network.type',
        'network.transport',
        'source.address',
        'source.port',
        'destination.address',
        'destination.port',
        'podnet.conntrack.reply.source.address',
        'podnet.conntrack.reply.source.port',
        'podnet.conntrack.reply.destination.address',
        'podnet.conntrack.reply.destination.port',
        'podnet.conntrack.status',
        'podnet.conntrack.tcp.state',
        'podnet.conntrack.id',
        'podnet.conntrack.zone',
        'podnet.icmp.type',
        'podnet.icmp.code',
        'podnet.conntrack.insert_failed',
      ],
      types: Object.values(TYPES),
      enabled: true,
    },
  ],
  args: argsSchema,
  async availability() {
    try {
      const s = NetlinkSocket.open('/proc/self/ns/net', NETLINK_NETFILTER);
      s.close();
      return { available: true };
    } catch (err) {
      return { available: false, reason: `NETLINK_NETFILTER unusable: ${(err as Error).message}` };
    }
  },
  async create(ctx, args) {
    return new Ctevents(ctx, args);
  },
};
