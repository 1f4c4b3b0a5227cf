// The point attribute sets (and the points) a benchmark gives each metric of the default set at scale (benchmarks/scale/
// export.ts, benchmarks/otel/metric-template.ts): every combination of typical values per declared key.
import { TCP_STATES } from '../../receiver/netlink/sock-diag.ts';

/** Typical values per attribute key (one value for keys not listed). */
const VALUES: Record<string, readonly (string | number)[]> = {
  'network.connection.state': TCP_STATES.slice(1, 12),
  'network.io.direction': ['receive', 'transmit'],
  'network.type': ['ipv4', 'ipv6'],
  'podnet.io.operation': ['read', 'write'],
  'disk.io.direction': ['read', 'write'],
  'network.interface.name': ['eth0'],
};
/** Declared attributes the default probes do not put on points (summed over CPUs by default). */
const UNUSED = new Set(['cpu.logical_number']);

/** Every combination of the typical values of `attrs` (one empty set for none). */
export function combos(attrs: readonly string[]): Array<Record<string, string | number>> {
  let out: Array<Record<string, string | number>> = [{}];
  for (const k of attrs) {
    if (UNUSED.has(k)) continue;
    const vs = VALUES[k] ?? [`${k.split('.').at(-1)}-0`];
    out = out.flatMap((a) => vs.map((v) => ({ ...a, [k]: v })));
  }
  return out;
}

/** A metric definition as a probe spec of any checkout declares it (the fields used here). */
export interface SyntheticDef {
  readonly name: string;
  readonly kind?: string;
  readonly enabled?: boolean;
  readonly scope?: string;
  readonly attributes: readonly string[];
}

const BOUNDS = Array.from({ length: 20 }, (_, b) => 2 ** b / 1e6);

/**
 * The points of one probe at `pods` netns (inodes from `netns0`): every enabled per-entity metric (eBPF
 * probes' self-telemetry left out: not per pod) with `combos` of its attributes, netns after netns and
 * each netns' metrics in declaration order, as the per-netns probes report them (metric after metric
 * made an entity's series far apart in the store, unlike the agent's).
 */
export function syntheticPoints(defs: readonly SyntheticDef[], pods: number, netns0: number): unknown[] {
  const own = defs.filter(
    (def) => def.enabled && (def.scope ?? 'entity') === 'entity' && !def.name.startsWith('podnet.ebpf.'),
  );
  const cs = own.map((def) => combos(def.attributes).map((a) => Object.freeze(a)));
  const pts: unknown[] = [];
  for (let i = 0; i < pods; i++)
    for (const [d, def] of own.entries())
      for (const a of cs[d]!)
        pts.push({
          metric: def.name,
          netns: netns0 + i,
          ...(Object.keys(a).length ? { attributes: a } : {}),
          value:
            def.kind === 'histogram'
              ? { boundaries: BOUNDS, counts: BOUNDS.map(() => 1).concat([0]), sum: 1, count: 20 }
              : i * 100 + 7,
        });
  return pts;
}
