// sockstat: socket counts and socket memory from `/proc/<pid>/net/sockstat` and `sockstat6`.
// What the kernel keeps per netns is exported per entity: sockets used, TCP/UDP/UDPLITE/RAW sockets in
// use and IP fragment queues/memory (per `network.type`), TCP time-wait sockets. What the kernel keeps
// host-wide — TCP orphans, TCP sockets allocated, TCP and UDP memory — is the same number in every
// netns's file, so it is exported once per node (`scope: 'node'`) instead of being repeated per pod.
// Memory is converted from pages to bytes (page size from AT_PAGESZ). Replaces KubeSkoop's `sock`
// probe (host netns only, TCP only).
import { z } from 'zod';
import { createProcfsProbe, metricFilter } from '../../receiver/kit/procfs.ts';
import { type Entity, HOST_ENTITY } from '../../receiver/pods/entity.ts';
import { type MetricSink, SeriesKey } from '../../receiver/probe/sink.ts';
import type { Attributes, MetricDef, MetricPoint, ProbeSpec } from '../../receiver/probe/types.ts';
import { readNetFiles } from '../../receiver/procfs/netns-files.ts';
import { pageSize, procfsAvailability } from '../../receiver/procfs/read.ts';
import { forEachSockstat, parseSockstat } from './parse.ts';

const NT = ['network.type'] as const;

function def(
  name: string,
  unit: string,
  description: string,
  attributes: readonly string[],
  scope: 'entity' | 'node' = 'entity',
): MetricDef {
  return {
    name,
    kind: 'gauge',
    unit,
    description,
    attributes,
    enabled: true,
    ...(scope === 'node' ? { scope } : {}),
  };
}

export const SOCKSTAT_METRICS: readonly MetricDef[] = [
  def(
    'podnet.sockstat.sockets.used',
    '{socket}',
    'Sockets of all families in use in the netns (`sockets: used`).',
    [],
  ),
  def(
    'podnet.sockstat.tcp.inuse',
    '{socket}',
    'TCP sockets in use (`TCP: inuse`, `TCP6: inuse`), all states but TIME_WAIT.',
    NT,
  ),
  def(
    'podnet.sockstat.tcp.time_wait',
    '{socket}',
    'TCP sockets in TIME_WAIT in the netns, IPv4 and IPv6 together (`TCP: tw`).',
    [],
  ),
  def('podnet.sockstat.udp.inuse', '{socket}', 'UDP sockets in use (`UDP: inuse`, `UDP6: inuse`).', NT),
  // Off by default (not in KubeSkoop's set; 8 series per pod): UDP-Lite, raw sockets, fragment queues.
  {
    ...def(
      'podnet.sockstat.udp_lite.inuse',
      '{socket}',
      'UDP-Lite sockets in use (`UDPLITE`, `UDPLITE6`).',
      NT,
    ),
    enabled: false,
  },
  {
    ...def('podnet.sockstat.raw.inuse', '{socket}', 'Raw sockets in use (`RAW`, `RAW6`).', NT),
    enabled: false,
  },
  {
    ...def(
      'podnet.sockstat.frag.inuse',
      '{queue}',
      'IP fragment reassembly queues (`FRAG: inuse`, `FRAG6: inuse`).',
      NT,
    ),
    enabled: false,
  },
  {
    ...def(
      'podnet.sockstat.frag.memory',
      'By',
      'Memory held by IP fragment reassembly (`FRAG: memory`, `FRAG6: memory`).',
      NT,
    ),
    enabled: false,
  },
  def(
    'podnet.sockstat.tcp.orphan',
    '{socket}',
    'Orphaned TCP sockets (closed by the application, still in the kernel), host-wide (`TCP: orphan`).',
    [],
    'node',
  ),
  def(
    'podnet.sockstat.tcp.allocated',
    '{socket}',
    'TCP sockets allocated, host-wide (`TCP: alloc`).',
    [],
    'node',
  ),
  def(
    'podnet.sockstat.tcp.memory',
    'By',
    'Memory allocated to TCP socket buffers, host-wide (`TCP: mem` pages × page size).',
    [],
    'node',
  ),
  def(
    'podnet.sockstat.udp.memory',
    'By',
    'Memory allocated to UDP socket buffers, host-wide (`UDP: mem` pages × page size).',
    [],
    'node',
  ),
];

export const sockstatArgs = z
  .object({
    concurrency: z.number().int().min(1).max(64).default(4),
    /** Metric names to produce (the pipeline may pass its enabled set); default: all declared. */
    metrics: z.array(z.string()).optional(),
  })
  .strict();
export type SockstatArgs = z.infer<typeof sockstatArgs>;

const V4: Attributes = Object.freeze({ 'network.type': 'ipv4' });
const V6: Attributes = Object.freeze({ 'network.type': 'ipv6' });

/** (proto, key) → [metric, attributes, multiplier] for per-netns values. `0` multiplier = page size. */
const ENTITY_MAP: Record<string, readonly [string, Attributes | undefined, number]> = {
  'sockets|used': ['podnet.sockstat.sockets.used', undefined, 1],
  'TCP|inuse': ['podnet.sockstat.tcp.inuse', V4, 1],
  'TCP6|inuse': ['podnet.sockstat.tcp.inuse', V6, 1],
  'TCP|tw': ['podnet.sockstat.tcp.time_wait', undefined, 1],
  'UDP|inuse': ['podnet.sockstat.udp.inuse', V4, 1],
  'UDP6|inuse': ['podnet.sockstat.udp.inuse', V6, 1],
  'UDPLITE|inuse': ['podnet.sockstat.udp_lite.inuse', V4, 1],
  'UDPLITE6|inuse': ['podnet.sockstat.udp_lite.inuse', V6, 1],
  'RAW|inuse': ['podnet.sockstat.raw.inuse', V4, 1],
  'RAW6|inuse': ['podnet.sockstat.raw.inuse', V6, 1],
  'FRAG|inuse': ['podnet.sockstat.frag.inuse', V4, 1],
  'FRAG6|inuse': ['podnet.sockstat.frag.inuse', V6, 1],
  'FRAG|memory': ['podnet.sockstat.frag.memory', V4, 1],
  'FRAG6|memory': ['podnet.sockstat.frag.memory', V6, 1],
};
const NODE_MAP: Record<string, readonly [string, number]> = {
  'TCP|orphan': ['podnet.sockstat.tcp.orphan', 1],
  'TCP|alloc': ['podnet.sockstat.tcp.allocated', 1],
  'TCP|mem': ['podnet.sockstat.tcp.memory', 0],
  'UDP|mem': ['podnet.sockstat.udp.memory', 0],
};

// `shared`: the sockets probe reads the same files (probes/sockets/summarize.ts): one read per collection.
// `single`: one-record seq_files, read without the confirming read of 0 (receiver/procfs/read.ts).
const FILES = [
  { name: 'sockstat', shared: true, single: true },
  { name: 'sockstat6', optional: true, shared: true, single: true },
] as const;

/** An ENTITY_MAP entry with its series key (receiver/probe/sink.ts). */
type EntityValue = readonly [metric: string, key: SeriesKey, multiplier: number];

/** ENTITY_MAP by protocol, then key: looked up without building a `proto|key` string per value. */
const ENTITY_BY_PROTO = new Map<string, Map<string, EntityValue>>();
for (const [k, [metric, attributes, multiplier]] of Object.entries(ENTITY_MAP)) {
  const [proto, key] = k.split('|') as [string, string];
  let byKey = ENTITY_BY_PROTO.get(proto);
  if (!byKey) {
    byKey = new Map();
    ENTITY_BY_PROTO.set(proto, byKey);
  }
  byKey.set(key, [metric, new SeriesKey(metric, attributes), multiplier]);
}

// The entity `visitEntity` writes (one at a time, synchronously): one visitor for every netns instead
// of a closure per netns per collection.
const state = { out: undefined as MetricSink | undefined, netns: 0, wanted: (_m: string) => false };
const visitEntity = (proto: string, key: string, value: number): void => {
  const m = ENTITY_BY_PROTO.get(proto)?.get(key);
  if (!m || !state.wanted(m[0])) return;
  state.out!.value(m[1], state.netns, value * m[2]);
};

export function collectSockstat(
  entity: Entity,
  out: MetricSink,
  wanted: (m: string) => boolean,
  cycle?: object,
): void {
  const texts = readNetFiles(entity, FILES, cycle); // (indexed: destructuring walks an iterator)
  const v4 = texts[0]!;
  const v6 = texts[1];
  state.out = out;
  state.netns = entity.netnsInode;
  state.wanted = wanted;
  // Values are written while parsing: a malformed file throws and the procfs kit drops this entity's
  // values (receiver/kit/procfs.ts), so no partial set is emitted.
  try {
    forEachSockstat(v4, `${entity.displayName} net/sockstat`, visitEntity);
    if (v6 !== undefined) forEachSockstat(v6, `${entity.displayName} net/sockstat6`, visitEntity);
  } finally {
    state.out = undefined; // not kept past the call
  }
}

/** Host-wide values, read from the node's netns (init's: receiver/netns/setns.ts). */
export function collectSockstatNode(out: MetricPoint[], wanted: (m: string) => boolean): void {
  const [text] = readNetFiles(HOST_ENTITY, FILES.slice(0, 1));
  const page = pageSize();
  for (const { proto, key, value } of parseSockstat(text!, 'host net/sockstat')) {
    const m = NODE_MAP[`${proto}|${key}`];
    if (!m || !wanted(m[0])) continue;
    out.push({ metric: m[0], value: m[1] === 0 ? value * page : value });
  }
}

export const sockstatProbe: ProbeSpec<SockstatArgs> = {
  name: 'sockstat',
  description:
    'Sockets in use per protocol and IP version, TIME_WAIT and fragment memory per netns; TCP orphans, allocated sockets and TCP/UDP memory host-wide (/proc/<pid>/net/sockstat, sockstat6).',
  source: 'procfs',
  defaultEnabled: true,
  metrics: SOCKSTAT_METRICS,
  events: [],
  args: sockstatArgs,
  async availability() {
    return procfsAvailability(['net/sockstat']);
  },
  async create(ctx, args) {
    let wanted = metricFilter(SOCKSTAT_METRICS, args.metrics, ctx);
    return createProcfsProbe<SockstatArgs>({
      reconfigure: (a) => {
        wanted = metricFilter(SOCKSTAT_METRICS, a.metrics, ctx);
      },
      log: ctx.log.child({ probe: 'sockstat' }),
      concurrency: args.concurrency,
      writeEntity: (entity, sink, cycle) => collectSockstat(entity, sink, wanted, cycle),
      collectNode: (out) => collectSockstatNode(out, wanted),
    });
  },
};
