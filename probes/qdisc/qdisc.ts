// qdisc: traffic-control queue statistics of each netns through rtnetlink (RTM_GETQDISC dump on a
// NETLINK_ROUTE socket opened inside the netns), one series per qdisc: interface (name resolved with
// RTM_GETLINK in the same netns, kept until a link event: ./link-names.ts), kind, handle and parent — what `tc -s qdisc` shows there.
// Classful qdiscs (htb, mq) report totals that include their children: do not sum across a parent
// and its children.
import { z } from 'zod';
import { createNetlinkProbe } from '../../receiver/kit/netlink.ts';
import { dumpQdiscs, formatTcHandle } from '../../receiver/netlink/rtnetlink.ts';
import { NETLINK_ROUTE, type NetlinkSocket, withNetlinkSocket } from '../../receiver/netlink/socket.ts';
import { type MetricSink, SeriesKey } from '../../receiver/probe/sink.ts';
import type { MetricDef, ProbeSpec } from '../../receiver/probe/types.ts';
import { LinkNames } from './link-names.ts';

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

/** The metrics of a qdisc, in the order of its series keys. */
const ORDER = [Q.bytes, Q.packets, Q.drops, Q.overlimits, Q.requeues, Q.qlen, Q.backlog] as const;

// Series keys shared between netns and collections (receiver/probe/sink.ts), one per metric of each
// interface name, kind, handle and parent (their attribute object frozen and shared). Nested maps: found
// without a key string built per qdisc.
type Level<K, V> = Map<K, V>;
const keyCache: Level<string, Level<string, Level<number, Level<number, readonly SeriesKey[]>>>> = new Map();
let cachedKeys = 0;
function qdiscKeys(ifname: string, kind: string, handle: number, parent: number): readonly SeriesKey[] {
  const have = keyCache.get(ifname)?.get(kind)?.get(handle)?.get(parent);
  if (have) return have;
  const a = Object.freeze({
    'network.interface.name': ifname,
    'podnet.qdisc.kind': kind,
    'podnet.qdisc.handle': formatTcHandle(handle),
    'podnet.qdisc.parent': formatTcHandle(parent, true),
  });
  const keys = ORDER.map((metric) => new SeriesKey(metric, a));
  if (cachedKeys < 65536) {
    cachedKeys++;
    let byKind = keyCache.get(ifname);
    if (!byKind) {
      byKind = new Map();
      keyCache.set(ifname, byKind);
    }
    let byHandle = byKind.get(kind);
    if (!byHandle) {
      byHandle = new Map();
      byKind.set(kind, byHandle);
    }
    let byParent = byHandle.get(handle);
    if (!byParent) {
      byParent = new Map();
      byHandle.set(handle, byParent);
    }
    byParent.set(parent, keys);
  }
  return keys;
}

function read(
  sock: NetlinkSocket,
  netns: number,
  args: QdiscArgs,
  out: MetricSink,
  linkNames: LinkNames,
  cycle: object,
): void {
  let names = linkNames.get(sock, cycle);
  const qdiscs = dumpQdiscs(sock);
  // A link added since the names were dumped (its notification raced the qdisc dump): dump them again.
  for (const q of qdiscs)
    if (!names.has(q.ifindex)) {
      names = linkNames.refresh(sock);
      break;
    }
  for (const q of qdiscs) {
    const ifname = names.get(q.ifindex) ?? `if${q.ifindex}`;
    if (args.excludeInterfaces.includes(ifname) || args.excludeKinds.includes(q.kind)) continue;
    const k = qdiscKeys(ifname, q.kind, q.handle, q.parent);
    out.value(k[0]!, netns, q.bytes);
    out.value(k[1]!, netns, q.packets);
    out.value(k[2]!, netns, q.drops);
    out.value(k[3]!, netns, q.overlimits);
    out.value(k[4]!, netns, q.requeues);
    out.value(k[5]!, netns, q.qlen);
    out.value(k[6]!, netns, q.backlog);
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
    // Names kept per kept socket, dumped again after a link event (./link-names.ts).
    const linkNames = new LinkNames();
    return createNetlinkProbe({
      log: ctx.log,
      protocol: NETLINK_ROUTE,
      entities: ctx.entities,
      args,
      read: (open, entity, out, a, cycle) => read(open(), entity.netnsInode, a, out, linkNames, cycle),
    });
  },
};
