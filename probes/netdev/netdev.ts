// netdev: per-interface traffic of each netns from `/proc/<pid>/net/dev` — bytes (`k8s.pod.network.io`;
// the host netns: `k8s.node.network.io`), errors (`k8s.pod.network.errors` / `k8s.node.network.errors`),
// packets and drops, per `network.interface.name` and
// `network.io.direction`. Replaces KubeSkoop's `netdev` probe, which summed all interfaces but `lo`.
import { z } from 'zod';
import { createProcfsProbe, metricFilter } from '../../receiver/kit/procfs.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { type MetricSink, SeriesKey } from '../../receiver/probe/sink.ts';
import type { MetricDef, ProbeSpec } from '../../receiver/probe/types.ts';
import { readNetBytes } from '../../receiver/procfs/netns-files.ts';
import { procfsAvailability } from '../../receiver/procfs/read.ts';
import { type NetDevRows, netDevRows, parseNetDevBytes } from './parse.ts';

const ATTRS = ['network.interface.name', 'network.io.direction'] as const;

export const NETDEV_METRICS: readonly MetricDef[] = [
  {
    name: 'k8s.pod.network.io',
    kind: 'counter',
    unit: 'By',
    description:
      'Bytes received/transmitted on the interface (`/proc/net/dev` bytes), per pod or netns (the host netns: k8s.node.network.io).',
    attributes: ATTRS,
    enabled: true,
  },
  {
    name: 'k8s.pod.network.errors',
    kind: 'counter',
    unit: '{error}',
    description: 'Receive/transmit errors on the interface (`/proc/net/dev` errs).',
    attributes: ATTRS,
    enabled: true,
  },
  // The host netns is the node's network: its traffic under the node names of the semconv.
  {
    name: 'k8s.node.network.io',
    kind: 'counter',
    unit: 'By',
    description:
      'Bytes received/transmitted on the interface of the host netns (the node; `/proc/net/dev` bytes).',
    attributes: ATTRS,
    enabled: true,
  },
  {
    name: 'k8s.node.network.errors',
    kind: 'counter',
    unit: '{error}',
    description:
      'Receive/transmit errors on the interface of the host netns (the node; `/proc/net/dev` errs).',
    attributes: ATTRS,
    enabled: true,
  },
  {
    name: 'podnet.network.packet.count',
    kind: 'counter',
    unit: '{packet}',
    description: 'Packets received/transmitted on the interface (mirrors `system.network.packet.count`).',
    attributes: ATTRS,
    enabled: true,
  },
  {
    name: 'podnet.network.packet.dropped',
    kind: 'counter',
    unit: '{packet}',
    description:
      'Packets dropped by the interface although there was no error (`/proc/net/dev` drop: rx_dropped + rx_missed_errors on receive, tx_dropped on transmit; mirrors `system.network.packet.dropped`).',
    attributes: ATTRS,
    enabled: true,
  },
  {
    name: 'podnet.network.multicast',
    kind: 'counter',
    unit: '{packet}',
    description: 'Multicast packets received (`/proc/net/dev` receive multicast; receive direction only).',
    attributes: ATTRS,
    enabled: false,
  },
  {
    name: 'podnet.network.fifo_errors',
    kind: 'counter',
    unit: '{error}',
    description: 'FIFO (ring buffer) overruns on receive / transmit (`/proc/net/dev` fifo).',
    attributes: ATTRS,
    enabled: false,
  },
  {
    name: 'podnet.network.frame_errors',
    kind: 'counter',
    unit: '{error}',
    description:
      'Receive framing errors: length + overrun + CRC + frame (`/proc/net/dev` frame; receive only).',
    attributes: ATTRS,
    enabled: false,
  },
  {
    name: 'podnet.network.carrier_errors',
    kind: 'counter',
    unit: '{error}',
    description:
      'Transmit carrier errors: carrier + aborted + window + heartbeat (`/proc/net/dev` carrier; transmit only).',
    attributes: ATTRS,
    enabled: false,
  },
  {
    name: 'podnet.network.collisions',
    kind: 'counter',
    unit: '{collision}',
    description: 'Transmit collisions (`/proc/net/dev` colls; transmit only).',
    attributes: ATTRS,
    enabled: false,
  },
  {
    name: 'podnet.network.compressed',
    kind: 'counter',
    unit: '{packet}',
    description: 'Compressed packets received / transmitted (`/proc/net/dev` compressed; CSLIP/PPP only).',
    attributes: ATTRS,
    enabled: false,
  },
];

/** The host netns reports these under the node's names. */
const NODE_NAMES: Readonly<Record<string, string>> = {
  'k8s.pod.network.io': 'k8s.node.network.io',
  'k8s.pod.network.errors': 'k8s.node.network.errors',
};

// Column index in NETDEV_COLUMNS for [receive, transmit] of each metric; -1: no such direction.
const COLUMNS: readonly (readonly [string, number, number])[] = [
  ['k8s.pod.network.io', 0, 8],
  ['k8s.pod.network.errors', 2, 10],
  ['podnet.network.packet.count', 1, 9],
  ['podnet.network.packet.dropped', 3, 11],
  ['podnet.network.multicast', 7, -1],
  ['podnet.network.fifo_errors', 4, 12],
  ['podnet.network.frame_errors', 5, -1],
  ['podnet.network.carrier_errors', -1, 14],
  ['podnet.network.collisions', -1, 13],
  ['podnet.network.compressed', 6, 15],
];

export const netdevArgs = z
  .object({
    /** Interface names not reported; a trailing `*` matches a prefix (`veth*`). */
    excludeInterfaces: z.array(z.string()).default(['lo']),
    /** Accepted, no effect: reads are synchronous, entities are read one after another (receiver/kit/procfs.ts). */
    concurrency: z.number().int().min(1).max(64).default(4),
    /** Metric names to produce (the pipeline may pass its enabled set); default: all declared. */
    metrics: z.array(z.string()).optional(),
  })
  .strict();
export type NetdevArgs = z.infer<typeof netdevArgs>;

function excluder(patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')));
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (name) => {
    if (exact.has(name)) return true;
    for (const p of prefixes) if (name.startsWith(p)) return true;
    return false;
  };
}

// Series keys are shared between collections: per interface name, for each column and direction (the
// attribute objects one per interface name and direction), for pods and for the host's node names.
const keyCache = new Map<string, readonly SeriesKey[]>();
function keysFor(ifname: string): readonly SeriesKey[] {
  let keys = keyCache.get(ifname);
  if (!keys) {
    const rx = Object.freeze({ 'network.interface.name': ifname, 'network.io.direction': 'receive' });
    const tx = Object.freeze({ 'network.interface.name': ifname, 'network.io.direction': 'transmit' });
    const list: SeriesKey[] = [];
    for (const node of [false, true])
      for (const [m] of COLUMNS) {
        const metric = node ? (NODE_NAMES[m] ?? m) : m;
        list.push(new SeriesKey(metric, rx), new SeriesKey(metric, tx));
      }
    keys = list;
    if (keyCache.size < 65536) keyCache.set(ifname, keys);
  }
  return keys;
}

// Its records are at most 353 bytes: a short read well below a page is its end (receiver/procfs/read.ts).
const FILES = [{ name: 'dev', maxRecord: 512 }] as const;
// Reused: one entity is parsed and written at a time (synchronously).
const rows = netDevRows();

/** Per column of COLUMNS: 1 when its metric is wanted in this call (reused, not an array per netns). */
const wantedCols = new Uint8Array(COLUMNS.length);

/** Writes the values of parsed `rows` (all parsed first: a malformed file writes nothing). */
function writeRows(
  rows: NetDevRows,
  netns: number,
  out: MetricSink,
  excluded: (name: string) => boolean,
  wanted: (metric: string) => boolean,
  node: boolean,
): void {
  for (let c = 0; c < COLUMNS.length; c++) {
    const m = COLUMNS[c]![0];
    wantedCols[c] = wanted(node ? (NODE_NAMES[m] ?? m) : m) ? 1 : 0;
  }
  const base = node ? COLUMNS.length * 2 : 0;
  for (let i = 0; i < rows.count; i++) {
    const name = rows.names[i]!;
    if (excluded(name)) continue;
    const keys = keysFor(name);
    for (let c = 0; c < COLUMNS.length; c++) {
      if (wantedCols[c] === 0) continue;
      const col = COLUMNS[c]!;
      const r = col[1];
      const t = col[2];
      if (r >= 0) out.value(keys[base + 2 * c]!, netns, rows.values[16 * i + r]!);
      if (t >= 0) out.value(keys[base + 2 * c + 1]!, netns, rows.values[16 * i + t]!);
    }
  }
}

/** Points of one net/dev text (exported for tests of the column mapping). */
export function netdevPoints(
  text: string,
  netns: number,
  out: MetricSink,
  excluded: (name: string) => boolean,
  wanted: (metric: string) => boolean,
  file = 'net/dev',
  node = false,
): void {
  const parsed = netDevRows();
  parseNetDevBytes(Buffer.from(text, 'latin1'), 0, text.length, file, parsed);
  writeRows(parsed, netns, out, excluded, wanted, node);
}

export function collectNetdev(
  entity: Entity,
  out: MetricSink,
  excluded: (name: string) => boolean,
  wanted: (metric: string) => boolean,
  cycle?: object,
): void {
  // The file's bytes, parsed in place (no string per file); valid until the next read.
  const bytes = readNetBytes(entity, FILES, cycle);
  parseNetDevBytes(bytes.buf, bytes.start[0]!, bytes.end[0]!, `${entity.displayName} net/dev`, rows);
  writeRows(rows, entity.netnsInode, out, excluded, wanted, entity.kind === 'host');
}

export const netdevProbe: ProbeSpec<NetdevArgs> = {
  name: 'netdev',
  description:
    'Per-interface bytes, packets, errors and drops of each netns from /proc/<pid>/net/dev (lo excluded by default).',
  source: 'procfs',
  defaultEnabled: true,
  metrics: NETDEV_METRICS,
  events: [],
  args: netdevArgs,
  async availability() {
    return procfsAvailability(['net/dev']);
  },
  async create(ctx, args) {
    let excluded = excluder(args.excludeInterfaces);
    let wanted = metricFilter(NETDEV_METRICS, args.metrics, ctx);
    return createProcfsProbe<NetdevArgs>({
      reconfigure: (a) => {
        excluded = excluder(a.excludeInterfaces);
        wanted = metricFilter(NETDEV_METRICS, a.metrics, ctx);
      },
      log: ctx.log.child({ probe: 'netdev' }),
      concurrency: args.concurrency,
      writeEntity: (entity, sink, cycle) => collectNetdev(entity, sink, excluded, wanted, cycle),
    });
  },
};
