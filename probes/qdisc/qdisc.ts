// qdisc: traffic-control queue statistics of each netns through rtnetlink (RTM_GETQDISC dump on a
// NETLINK_ROUTE socket opened inside the netns), one series per qdisc: interface (name resolved with
// RTM_GETLINK in the same netns), kind, handle and parent — what `tc -s qdisc` shows there.
// Classful qdiscs (htb, mq) report totals that include their children: do not sum across a parent
// and its children.
import { z } from 'zod';
import { createNetlinkProbe } from '../../receiver/kit/netlink.ts';
import { dumpLinkNames, dumpQdiscs, formatTcHandle } from '../../receiver/netlink/rtnetlink.ts';
import { NETLINK_ROUTE, type NetlinkSocket, withNetlinkSocket } from '../../receiver/netlink/socket.ts';
import type { MetricDef, MetricPoint, ProbeSpec } from '../../receiver/probe/types.ts';

const argsSchema = z.object({
  /** Interfaces whose qdiscs are not reported (exact names). */
  excludeInterfaces: z.array(z.string()).default(['lo']),
  /** Qdisc kinds not reported, e.g. `noqueue` (a device without a queue; its counters stay 0). */
  excludeKinds: z.array(z.string()).default([]),
  /** Receive timeout per netlink read, ms. */
  timeoutMs: z.number().int().positive().default(2000),
});
export type QdiscArgs = z.infer<typeof argsSchema>;

export const ATTRS = [
  'network.interface.name',
  'podnet.qdisc.kind',
  'podnet.qdisc.handle',
  'podnet.qdisc.parent',
];

export const Q = {
  bytes: 'podnet.qdisc.io',
  packets: 'podnet.qdisc.packet.count',
  drops: 'podnet.qdisc.packet.dropped',
  overlimits: 'podnet.qdisc.overlimit.count',
  requeues: 'podnet.qdisc.requeue.count',
  qlen: 'podnet.qdisc.queue.length',
  backlog: 'podnet.qdisc.backlog',
} as const;

const def = (name: string, kind: 'counter' | 'gauge', unit: string, description: string): MetricDef => ({
  name,
  kind,
  unit,
  description,
  attributes: ATTRS,
  enabled: true,
});

const metrics: MetricDef[] = [
  def(Q.bytes, 'counter', 'By', 'Bytes sent through the qdisc (tc: Sent N bytes).'),
  def(Q.packets, 'counter', '{packet}', 'Packets sent through the qdisc (tc: N pkt).'),
  def(Q.drops, 'counter', '{packet}', 'Packets dropped by the qdisc (tc: dropped).'),
  def(
    Q.overlimits,
    'counter',
    '{event}',
    'Times the qdisc held back a packet over its rate/limit (tc: overlimits).',
  ),
  def(Q.requeues, 'counter', '{packet}', 'Packets requeued because the device was busy (tc: requeues).'),
  def(Q.qlen, 'gauge', '{packet}', 'Packets waiting in the queue (tc: backlog Np).'),
  def(Q.backlog, 'gauge', 'By', 'Bytes waiting in the queue (tc: backlog Nb).'),
];

// Attribute objects shared between netns and collections (frozen: the metric store keeps their series
// key), one per interface name, kind, handle and parent.
const attrCache = new Map<string, Readonly<Record<string, string>>>();
function qdiscAttributes(ifname: string, kind: string, handle: number, parent: number) {
  const key = `${ifname}\u0000${kind}\u0000${handle}\u0000${parent}`;
  let a = attrCache.get(key);
  if (!a) {
    a = Object.freeze({
      'network.interface.name': ifname,
      'podnet.qdisc.kind': kind,
      'podnet.qdisc.handle': formatTcHandle(handle),
      'podnet.qdisc.parent': formatTcHandle(parent, true),
    });
    if (attrCache.size < 65536) attrCache.set(key, a);
  }
  return a;
}

function read(sock: NetlinkSocket, netns: number, args: QdiscArgs, out: MetricPoint[]): void {
  const names = dumpLinkNames(sock);
  const qdiscs = dumpQdiscs(sock);
  for (const q of qdiscs) {
    const ifname = names.get(q.ifindex) ?? `if${q.ifindex}`;
    if (args.excludeInterfaces.includes(ifname) || args.excludeKinds.includes(q.kind)) continue;
    const attributes = qdiscAttributes(ifname, q.kind, q.handle, q.parent);
    out.push({ metric: Q.bytes, netns, attributes, value: q.bytes });
    out.push({ metric: Q.packets, netns, attributes, value: q.packets });
    out.push({ metric: Q.drops, netns, attributes, value: q.drops });
    out.push({ metric: Q.overlimits, netns, attributes, value: q.overlimits });
    out.push({ metric: Q.requeues, netns, attributes, value: q.requeues });
    out.push({ metric: Q.qlen, netns, attributes, value: q.qlen });
    out.push({ metric: Q.backlog, netns, attributes, value: q.backlog });
  }
}

export const qdiscProbe: ProbeSpec<QdiscArgs> = {
  name: 'qdisc',
  description:
    'Qdisc statistics per netns via rtnetlink: bytes, packets, drops, overlimits, requeues, queue length and backlog per interface and qdisc (tc -s qdisc).',
  source: 'netlink',
  defaultEnabled: true,
  metrics,
  events: [],
  args: argsSchema,
  async availability() {
    try {
      withNetlinkSocket('/proc/self/ns/net', NETLINK_ROUTE, (sock) => dumpQdiscs(sock));
      return { available: true };
    } catch (err) {
      return { available: false, reason: `rtnetlink qdisc dump failed: ${(err as Error).message}` };
    }
  },
  async create(ctx, args) {
    return createNetlinkProbe({
      log: ctx.log,
      protocol: NETLINK_ROUTE,
      entities: ctx.entities,
      args,
      read: (open, entity, out, a) => read(open(), entity.netnsInode, a, out),
    });
  },
};
