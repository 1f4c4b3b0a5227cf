// snmp: every kernel MIB counter of each netns — `Ip`, `Icmp`, `IcmpMsg`, `Tcp`, `Udp`, `UdpLite`
// (`/proc/<pid>/net/snmp`), `TcpExt`, `IpExt`, `MPTcpExt` (`net/netstat`) and `Ip6`, `Icmp6`, `Udp6`,
// `UdpLite6` (`net/snmp6`) — as `podnet.snmp.<group>.<field>` (snake_case). Levels are gauges
// (`Ip Forwarding/DefaultTTL`, `Tcp RtoAlgorithm/RtoMin/RtoMax/MaxConn/CurrEstab`, `MPTcpExt MPCurrEstab`),
// the rest cumulative counters, exactly as `nstat -az` shows them (ms values converted to s).
// Default-on: the fields KubeSkoop's tcp/udp/ip/tcpext probes export; the rest by config.
import { z } from 'zod';
import { createProcfsProbe } from '../../receiver/kit/procfs.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { type MetricSink, SeriesKey } from '../../receiver/probe/sink.ts';
import type { Attributes, MetricDef, ProbeSpec } from '../../receiver/probe/types.ts';
import { readNetBytes } from '../../receiver/procfs/netns-files.ts';
import { type NetFile, procfsAvailability } from '../../receiver/procfs/read.ts';
import type { SnmpField } from './field.ts';
import { SNMP_FIELDS } from './fields.ts';
import { type NameValues, parseNameValueLines, parseSnmpBytes, type SnmpGroup } from './parse.ts';

const FILE_PATH: Record<SnmpField[0], string> = {
  snmp: '/proc/<pid>/net/snmp',
  netstat: '/proc/<pid>/net/netstat',
  snmp6: '/proc/<pid>/net/snmp6',
};

function fieldDescription(f: SnmpField): string {
  const src = f[0] === 'snmp6' ? `\`${f[1]}${f[2]}\`` : `\`${f[1]}: ${f[2]}\``;
  const what = f[4] === 'gauge' ? 'Kernel MIB value (a level)' : 'Kernel MIB counter';
  const scaled = f[7] !== undefined ? ' (kernel value in ms, exported in s)' : '';
  return `${what} ${src} from ${FILE_PATH[f[0]]}, per netns (\`nstat -az\` name \`${f[1]}${f[2]}\`)${scaled}.`;
}

const ICMP_MSG_METRICS: readonly MetricDef[] = [
  ['icmp_msg', 'in', 'IcmpMsg: InType<N>', 'received', 'snmp'],
  ['icmp_msg', 'out', 'IcmpMsg: OutType<N>', 'sent', 'snmp'],
  ['icmp6_msg', 'in', 'Icmp6InType<N>', 'received', 'snmp6'],
  ['icmp6_msg', 'out', 'Icmp6OutType<N>', 'sent', 'snmp6'],
].map(([g, d, src, verb, file]) => ({
  name: `podnet.snmp.${g}.${d}`,
  kind: 'counter' as const,
  unit: '{message}',
  description: `ICMP${g === 'icmp6_msg' ? 'v6' : ''} messages ${verb} per ICMP type (\`${src}\` from /proc/<pid>/net/${file}; a type appears once the netns has seen one).`,
  attributes: ['podnet.icmp.type'],
  enabled: false,
}));

const UNLISTED: MetricDef = {
  name: 'podnet.snmp.unlisted',
  kind: 'counter',
  unit: '{event}',
  description:
    'Kernel MIB fields this podnet release does not list (added by a newer kernel), exported only with the `dynamic` arg: attribute `podnet.snmp.group` is the kernel group (`TcpExt`), `podnet.snmp.field` the kernel field name. Treated as counters.',
  attributes: ['podnet.snmp.group', 'podnet.snmp.field'],
  enabled: false,
};

export const SNMP_METRICS: readonly MetricDef[] = [
  ...SNMP_FIELDS.map(
    (f): MetricDef => ({
      name: f[3],
      kind: f[4],
      unit: f[5],
      description: fieldDescription(f),
      attributes: [],
      enabled: f[6],
    }),
  ),
  ...ICMP_MSG_METRICS,
  UNLISTED,
];

export const snmpArgs = z
  .object({
    /**
     * Also export fields this kernel prints that are not in the static table (a newer kernel's
     * additions), as `podnet.snmp.unlisted` with the kernel group and field as attributes (metric
     * names are declared statically, so new fields cannot get names of their own at run time).
     */
    dynamic: z.boolean().default(false),
    concurrency: z.number().int().min(1).max(64).default(4),
    /** Metric names to produce (the pipeline may pass its enabled set); default: all declared. */
    metrics: z.array(z.string()).optional(),
  })
  .strict();
export type SnmpArgs = z.infer<typeof snmpArgs>;

/** What a kernel column becomes: a metric with an optional scale and attributes, or nothing. */
interface Resolved {
  readonly metric: string;
  readonly scale: number;
  readonly attributes: Attributes | undefined;
  /** `metric` and `attributes` as the sink's series key (receiver/probe/sink.ts). */
  readonly key: SeriesKey;
}

function resolved(metric: string, scale: number, attributes: Attributes | undefined): Resolved {
  return { metric, scale, attributes, key: new SeriesKey(metric, attributes) };
}

// One-record seq_files (`single`, receiver/procfs/read.ts): read without the confirming read of 0.
const FILES: readonly (NetFile & { name: SnmpField[0] })[] = [
  { name: 'snmp', single: true },
  { name: 'netstat', single: true },
  { name: 'snmp6', optional: true, single: true },
];

const byKernelName = new Map<string, SnmpField>();
for (const f of SNMP_FIELDS) byKernelName.set(`${f[1]}|${f[2]}`, f);

const icmpTypeAttrs = new Map<number, Attributes>();
function icmpAttrs(type: number): Attributes {
  let a = icmpTypeAttrs.get(type);
  if (!a) {
    a = Object.freeze({ 'podnet.icmp.type': type });
    icmpTypeAttrs.set(type, a);
  }
  return a;
}

export class SnmpResolver {
  readonly #wanted: (name: string) => boolean;
  readonly #dynamic: boolean;
  readonly #columns = new WeakMap<readonly string[], readonly (Resolved | null)[]>();
  readonly #snmp6 = new Map<string, Resolved | null>();

  /** Files holding at least one wanted metric (all of them with `dynamic`). */
  readonly files: readonly NetFile[];

  constructor(wanted: (name: string) => boolean, dynamic: boolean) {
    this.#wanted = wanted;
    this.#dynamic = dynamic;
    const need = (file: SnmpField[0]): boolean =>
      (dynamic && wanted(UNLISTED.name)) ||
      SNMP_FIELDS.some((f) => f[0] === file && wanted(f[3])) ||
      (file === 'snmp' && (wanted('podnet.snmp.icmp_msg.in') || wanted('podnet.snmp.icmp_msg.out'))) ||
      (file === 'snmp6' && (wanted('podnet.snmp.icmp6_msg.in') || wanted('podnet.snmp.icmp6_msg.out')));
    this.files = FILES.filter((f) => need(f.name));
  }

  resolve(group: string, field: string): Resolved | null {
    const msg = /^(In|Out)Type([0-9]+)$/.exec(field);
    if (msg && (group === 'IcmpMsg' || group === 'Icmp6')) {
      const metric = `podnet.snmp.${group === 'IcmpMsg' ? 'icmp_msg' : 'icmp6_msg'}.${msg[1] === 'In' ? 'in' : 'out'}`;
      return this.#wanted(metric) ? resolved(metric, 1, icmpAttrs(Number(msg[2]))) : null;
    }
    const f = byKernelName.get(`${group}|${field}`);
    if (f) return this.#wanted(f[3]) ? resolved(f[3], f[7] ?? 1, undefined) : null;
    if (!this.#dynamic || !this.#wanted(UNLISTED.name)) return null;
    return resolved(
      UNLISTED.name,
      1,
      Object.freeze({ 'podnet.snmp.group': group, 'podnet.snmp.field': field }),
    );
  }

  readonly #skip = new WeakMap<readonly string[], boolean>();

  /** True when no column of this group is wanted: its values need not be parsed. */
  readonly skipGroup = (group: string, fields: readonly string[]): boolean => {
    let v = this.#skip.get(fields);
    if (v === undefined) {
      v = this.columns(group, fields).every((c) => c === null);
      this.#skip.set(fields, v);
    }
    return v;
  };

  /** Resolutions for a snmp/netstat header (cached per distinct header line). */
  columns(group: string, fields: readonly string[]): readonly (Resolved | null)[] {
    let cols = this.#columns.get(fields);
    if (!cols) {
      cols = fields.map((f) => this.resolve(group, f));
      this.#columns.set(fields, cols);
    }
    return cols;
  }

  snmp6(name: string): Resolved | null {
    let r = this.#snmp6.get(name);
    if (r === undefined) {
      const m = /^(Ip6|Icmp6|UdpLite6|Udp6)(.+)$/.exec(name);
      r = m ? this.resolve(m[1]!, m[2]!) : null;
      if (this.#snmp6.size < 4096) this.#snmp6.set(name, r);
    }
    return r;
  }
}

function push(out: MetricSink, netns: number, r: Resolved, raw: number): void {
  out.value(r.key, netns, r.scale === 1 ? raw : raw * r.scale);
}

// Reused per entity (collections of one probe run one entity at a time, synchronously).
const groups: SnmpGroup[] = [];

export function collectSnmp(entity: Entity, out: MetricSink, resolver: SnmpResolver, cycle?: object): void {
  const files = resolver.files;
  if (files.length === 0) return;
  // The files' bytes, parsed in place (no string per file); valid until the next read.
  const bytes = readNetBytes(entity, files, cycle);
  const netns = entity.netnsInode;
  // Parse everything before emitting: a malformed file fails the entity without partial points.
  groups.length = 0;
  let v6: NameValues | undefined;
  for (let i = 0; i < files.length; i++) {
    const name = files[i]!.name;
    const s = bytes.start[i]!;
    if (s < 0) continue; // snmp6 without IPv6
    const e = bytes.end[i]!;
    if (name === 'snmp6')
      v6 = parseNameValueLines(bytes.buf.toString('latin1', s, e), `${entity.displayName} net/snmp6`);
    else parseSnmpBytes(bytes.buf, s, e, `${entity.displayName} net/${name}`, resolver.skipGroup, groups);
  }
  for (const g of groups) {
    const cols = resolver.columns(g.group, g.fields);
    for (let i = 0; i < cols.length; i++) {
      const r = cols[i];
      if (r) push(out, netns, r, g.values[i]!);
    }
  }
  if (v6) {
    for (let i = 0; i < v6.names.length; i++) {
      const r = resolver.snmp6(v6.names[i]!);
      if (r) push(out, netns, r, v6.values[i]!);
    }
  }
}

export const snmpProbe: ProbeSpec<SnmpArgs> = {
  name: 'snmp',
  description:
    'Kernel MIB counters of each netns (Ip, Icmp, Tcp, Udp, UdpLite, TcpExt, IpExt, MPTcpExt, Ip6, Icmp6, Udp6, UdpLite6) from /proc/<pid>/net/{snmp,netstat,snmp6}, as podnet.snmp.<group>.<field>.',
  source: 'procfs',
  defaultEnabled: true,
  metrics: SNMP_METRICS,
  events: [],
  args: snmpArgs,
  async availability() {
    return procfsAvailability(['net/snmp', 'net/netstat']);
  },
  async create(ctx, initial) {
    let args = initial;
    // The resolver decides once which files to read: rebuilt when the args or the enabled set change.
    let basis: ReadonlySet<string> | undefined;
    const resolverFor = (a: SnmpArgs): SnmpResolver => {
      basis = ctx.enabledMetrics?.();
      const names = a.metrics ? new Set(a.metrics) : basis;
      return new SnmpResolver(names ? (n) => names.has(n) : () => true, a.dynamic);
    };
    let resolver = resolverFor(args);
    return createProcfsProbe<SnmpArgs>({
      reconfigure: (a) => {
        args = a;
        resolver = resolverFor(a);
      },
      prepare: () => {
        if (!args.metrics && ctx.enabledMetrics?.() !== basis) resolver = resolverFor(args);
      },
      log: ctx.log.child({ probe: 'snmp' }),
      concurrency: args.concurrency,
      writeEntity: (entity, sink, cycle) => collectSnmp(entity, sink, resolver, cycle),
    });
  },
};
