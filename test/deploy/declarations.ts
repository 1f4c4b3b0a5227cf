// The metrics podnet declares, as Prometheus sees them, for checking the dashboards.
//
// Source: the probe registry (`probes/registry.ts` probeSpecs) — what podnet runs. While the registry is
// still empty the specs exported by the probe modules (probes/<name>/<name>.ts) are used instead, so the
// dashboards are checked against the declarations either way and the check follows the registry (and
// becomes exactly what runs) as soon as probes are registered.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type AnyProbeSpec, probeSpecs } from '../../probes/registry.ts';
import { prometheusName } from '../../receiver/otel/prometheus-names.ts';
import type { MetricDef } from '../../receiver/probe/types.ts';

const PROBES = join(import.meta.dirname, '..', '..', 'probes');

/** Probes that exist for tests only and never run in a deployment. */
const TEST_ONLY = new Set(['synthetic', 'selftest']);

function isSpec(v: unknown): v is AnyProbeSpec {
  const s = v as AnyProbeSpec;
  return (
    !!s &&
    typeof s === 'object' &&
    typeof s.name === 'string' &&
    Array.isArray(s.metrics) &&
    typeof s.create === 'function'
  );
}

export async function declaredSpecs(): Promise<{ source: 'registry' | 'modules'; specs: AnyProbeSpec[] }> {
  if (probeSpecs.length > 0)
    return { source: 'registry', specs: probeSpecs.filter((s) => !TEST_ONLY.has(s.name)) };
  const specs: AnyProbeSpec[] = [];
  for (const d of readdirSync(PROBES, { withFileTypes: true })) {
    if (!d.isDirectory() || TEST_ONLY.has(d.name)) continue;
    const file = join(PROBES, d.name, `${d.name}.ts`);
    if (!existsSync(file)) continue;
    const mod = (await import(file)) as Record<string, unknown>;
    for (const v of Object.values(mod)) if (isSpec(v) && v.name === d.name) specs.push(v);
  }
  return { source: 'modules', specs };
}

/** OTel name / attribute key → Prometheus name (the JS exporter's sanitizing: invalid chars → `_`). */
export function promSanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_:]/g, '_').replace(/_+/g, '_');
}

/** Attributes the pipeline adds to every per-entity point (receiver/otel/entity-attributes.ts). */
export const ENTITY_LABELS = [
  'podnet_entity_kind',
  'podnet_netns_inode',
  'podnet_netns_name',
  'k8s_pod_uid',
  'k8s_pod_name',
  'k8s_namespace_name',
];
/** Added outside podnet: the node (scrape relabeling or resource_to_telemetry_conversion), the target. */
export const TARGET_LABELS = ['k8s_node_name', 'job', 'instance'];

export interface PromSeries {
  readonly def: MetricDef;
  /** The first probe declaring it. */
  readonly probe: string;
  /** Every probe declaring it (the eBPF self-telemetry metrics are declared by each eBPF probe). */
  readonly probes: readonly string[];
  /** Labels a series of this name can carry. */
  readonly labels: ReadonlySet<string>;
}

/** Every Prometheus series name podnet can export (the translation with unit suffixes) → its declaration. */
export function promSeries(specs: readonly AnyProbeSpec[]): Map<string, PromSeries> {
  const out = new Map<string, PromSeries>();
  for (const spec of specs) {
    for (const def of spec.metrics) {
      const base = prometheusName(
        def.name,
        def.unit,
        def.kind === 'counter'
          ? 'counter'
          : def.kind === 'histogram'
            ? 'histogram'
            : def.kind === 'gauge'
              ? 'gauge'
              : 'updowncounter',
      );
      const labels = new Set([
        ...def.attributes.map(promSanitize),
        ...(def.scope === 'node' ? [] : ENTITY_LABELS),
        ...TARGET_LABELS,
      ]);
      const add = (name: string, extra: string[] = []) => {
        const prev = out.get(name);
        if (prev) {
          for (const l of [...labels, ...extra]) (prev.labels as Set<string>).add(l);
          if (!prev.probes.includes(spec.name)) (prev.probes as string[]).push(spec.name);
        } else
          out.set(name, {
            def,
            probe: spec.name,
            probes: [spec.name],
            labels: new Set([...labels, ...extra]),
          });
      };
      if (def.kind === 'counter') add(base);
      else if (def.kind === 'histogram') {
        add(`${base}_bucket`, ['le']);
        add(`${base}_sum`);
        add(`${base}_count`);
      } else add(base);
    }
  }
  return out;
}
