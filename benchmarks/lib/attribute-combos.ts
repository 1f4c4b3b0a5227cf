// The point attribute sets a benchmark gives each metric of the default set at scale (benchmarks/scale/
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
