// `ProbeContext.enabledMetrics` for one probe: the names of its metrics enabled by the config
// (`metrics.<name>.enabled`) or by their declared default. The Set is rebuilt only when the config's
// override map changes (a reload), so probes can compare it by identity.
import type { MetricDef } from './types.ts';

export function enabledMetricsOf(
  spec: { readonly metrics: readonly MetricDef[] },
  overrides: () => ReadonlyMap<string, boolean>,
): () => ReadonlySet<string> {
  let basis: ReadonlyMap<string, boolean> | undefined;
  let names: ReadonlySet<string> = new Set();
  // The rebuild is a function of its own: its arrow functions capture `now`, and a variable captured by
  // a closure lives in a context the function allocates on every call — the returned function is called
  // per metric per netns (receiver/kit/procfs.ts metricFilter), ~40 B of garbage a call when it held them.
  const rebuild = (now: ReadonlyMap<string, boolean>): void => {
    basis = now;
    names = new Set(spec.metrics.filter((d) => now.get(d.name) ?? d.enabled).map((d) => d.name));
  };
  return () => {
    const now = overrides();
    if (now !== basis) rebuild(now);
    return names;
  };
}
