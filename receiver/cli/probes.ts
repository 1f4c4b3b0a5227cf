// `podnet probes`: one row per probe with its availability on this host.
import type { AnyProbeSpec } from '../../probes/registry.ts';

export interface ProbeRow {
  readonly name: string;
  readonly source: string;
  readonly defaultEnabled: boolean;
  readonly available: boolean;
  readonly reason: string | null;
  readonly description: string;
  readonly metrics: number;
  readonly events: number;
}

export async function probeTable(specs: readonly AnyProbeSpec[]): Promise<ProbeRow[]> {
  return Promise.all(
    specs.map(async (s) => {
      let available = false;
      let reason: string | null = null;
      try {
        const a = await s.availability();
        available = a.available;
        reason = a.reason ?? null;
      } catch (err) {
        reason = `availability check failed: ${(err as Error).message ?? String(err)}`;
      }
      return {
        name: s.name,
        source: s.source,
        defaultEnabled: s.defaultEnabled,
        available,
        reason,
        description: s.description,
        metrics: s.metrics.length,
        events: s.events.length,
      };
    }),
  );
}
