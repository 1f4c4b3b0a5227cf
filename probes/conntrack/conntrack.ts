// conntrack: connection-tracking statistics of each netns (pods and host) through ctnetlink
// (NETLINK_NETFILTER opened inside the netns): the per-CPU counters summed (`conntrack -S`), the
// entries of the netns' table (`conntrack -C`) and the table limit (`nf_conntrack_max`).
// A netns where conntrack never ran (no rule uses it) reports zeros and its entry count 0.
import { z } from 'zod';
import { createNetlinkProbe } from '../../receiver/kit/netlink.ts';
import {
  type ConntrackGlobal,
  CTA_STATS,
  conntrackGlobal,
  conntrackGlobalAndSums,
  conntrackStats,
  statSumsArray,
} from '../../receiver/netlink/ctnetlink.ts';
import { NETLINK_NETFILTER, type NetlinkSocket, withNetlinkSocket } from '../../receiver/netlink/socket.ts';
import { type MetricSink, SeriesKey } from '../../receiver/probe/sink.ts';
import type { MetricDef, ProbeSpec } from '../../receiver/probe/types.ts';

const argsSchema = z.object({
  /** One point per CPU (attribute `cpu.logical_number`) instead of the sum. */
  perCpu: z.boolean().default(false),
  /** Receive timeout per netlink read, ms. */
  timeoutMs: z.number().int().positive().default(2000),
});
export type ConntrackArgs = z.infer<typeof argsSchema>;

/** ctnetlink stat name → metric unit and description. Stats this kernel does not send are not emitted. */
const STATS: Readonly<Record<string, readonly [unit: string, description: string]>> = {
  found: ['{lookup}', 'Lookups that found an existing entry (conntrack -S found).'],
  invalid: ['{packet}', 'Packets conntrack could not track (malformed, out of window, no helper match).'],
  insert: ['{entry}', 'Entries inserted into the table.'],
  insert_failed: [
    '{entry}',
    'Entries whose insertion failed (a clash that could not be resolved); packets dropped.',
  ],
  drop: ['{packet}', 'Packets dropped because the table was full and no entry could be evicted.'],
  early_drop: ['{entry}', 'Entries evicted early to make room because the table was full.'],
  error: ['{packet}', 'Packets with an ICMP/ICMPv6 error conntrack could not match.'],
  search_restart: [
    '{lookup}',
    'Lookups restarted because the hash table was resized or changed concurrently.',
  ],
  clash_resolve: ['{entry}', 'Insert clashes resolved by reusing the existing entry.'],
  chain_toolong: ['{entry}', 'Inserts refused because a hash chain was too long.'],
};

export const metricName = (stat: string): string => `podnet.conntrack.${stat}`;
export const ENTRIES = 'podnet.conntrack.entries';
export const LIMIT = 'podnet.conntrack.entry.limit';

const metrics: MetricDef[] = [
  ...Object.entries(STATS).map(
    ([stat, [unit, description]]): MetricDef => ({
      name: metricName(stat),
      kind: 'counter',
      unit,
      description: `${description} Summed over CPUs.`,
      attributes: ['cpu.logical_number'],
      enabled: true,
    }),
  ),
  {
    name: ENTRIES,
    kind: 'gauge',
    unit: '{entry}',
    description: "Entries in the netns' conntrack table (conntrack -C).",
    attributes: [],
    enabled: true,
  },
  {
    name: LIMIT,
    kind: 'gauge',
    unit: '{entry}',
    description: 'Conntrack table limit (nf_conntrack_max; host-wide, shared by every netns).',
    attributes: [],
    enabled: true,
  },
];

// Series key per CTA_STATS_* type (undefined: not exported), built once instead of per point.
const KEY_BY_TYPE: (SeriesKey | undefined)[] = [];
for (const [t, stat] of Object.entries(CTA_STATS)) {
  if (STATS[stat]) KEY_BY_TYPE[Number(t)] = new SeriesKey(metricName(stat));
}
const ENTRIES_KEY = new SeriesKey(ENTRIES);
const LIMIT_KEY = new SeriesKey(LIMIT);
const sums = statSumsArray(); // reused: reads are synchronous, one netns at a time

function read(sock: NetlinkSocket, netns: number, perCpu: boolean, out: MetricSink): void {
  if (perCpu) {
    const stats = conntrackStats(sock);
    const global = conntrackGlobal(sock);
    for (const c of stats.perCpu) {
      for (const [stat, value] of Object.entries(c.values)) {
        if (STATS[stat]) {
          out.point({ metric: metricName(stat), netns, attributes: { 'cpu.logical_number': c.cpu }, value });
        }
      }
    }
    pushGlobal(global, netns, out);
    return;
  }
  const global = conntrackGlobalAndSums(sock, sums);
  for (let t = 1; t < sums.length; t++) {
    const key = KEY_BY_TYPE[t];
    const value = sums[t]!;
    if (key !== undefined && !Number.isNaN(value)) out.value(key, netns, value);
  }
  pushGlobal(global, netns, out);
}

function pushGlobal(global: ConntrackGlobal, netns: number, out: MetricSink): void {
  out.value(ENTRIES_KEY, netns, global.entries);
  if (global.maxEntries !== undefined) out.value(LIMIT_KEY, netns, global.maxEntries);
}

export const conntrackProbe: ProbeSpec<ConntrackArgs> = {
  name: 'conntrack',
  description:
    'Conntrack statistics per netns via ctnetlink: per-CPU counters summed (conntrack -S), entries (conntrack -C), table limit.',
  source: 'netlink',
  defaultEnabled: true,
  metrics,
  events: [],
  args: argsSchema,
  async availability() {
    try {
      withNetlinkSocket('/proc/self/ns/net', NETLINK_NETFILTER, (sock) => conntrackGlobal(sock));
      return { available: true };
    } catch (err) {
      return {
        available: false,
        reason: `ctnetlink unusable (needs nf_conntrack and nf_conntrack_netlink): ${(err as Error).message}`,
      };
    }
  },
  async create(ctx, args) {
    return createNetlinkProbe({
      log: ctx.log,
      protocol: NETLINK_NETFILTER,
      entities: ctx.entities,
      args,
      read: (open, entity, out, a) => read(open(), entity.netnsInode, a.perCpu, out),
    });
  },
};
