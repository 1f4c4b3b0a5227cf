// `podnet probes`: one row per probe with its availability on this host, the program variant
// probe-before-load picks here, and its minimum kernel (derived from the hooks of its variants,
// receiver/kit/ebpf/kernels.ts).
import type { AnyProbeSpec } from '../../probes/registry.ts';

export interface ProbeRow {
  readonly name: string;
  readonly source: string;
  readonly defaultEnabled: boolean;
  readonly available: boolean;
  readonly reason: string | null;
  /** eBPF probes: the program(s) that would load on this kernel. */
  readonly variant: string | null;
  /** Oldest kernel on which the probe runs at all (null: no kernel-version constraint, procfs/netlink). */
  readonly minKernel: string | null;
  /** Oldest kernel on which every hook of the probe has a variant. */
  readonly minKernelAll: string | null;
  /** What changes with the kernel (variants, features needing a newer one). */
  readonly kernelNotes: readonly string[];
  readonly description: string;
  readonly metrics: number;
  readonly events: number;
}

export async function probeTable(specs: readonly AnyProbeSpec[]): Promise<ProbeRow[]> {
  return Promise.all(
    specs.map(async (s) => {
      let available = false;
      let reason: string | null = null;
      let variant: string | null = null;
      try {
        const a = await s.availability();
        available = a.available;
        reason = a.reason ?? null;
        variant = a.variant ?? null;
      } catch (err) {
        reason = `availability check failed: ${(err as Error).message ?? String(err)}`;
      }
      let kernel: { min: string; all: string; notes: readonly string[] } | null = null;
      try {
        kernel = s.kernel?.() ?? null;
      } catch (err) {
        kernel = { min: '?', all: '?', notes: [`minimum kernel unknown: ${(err as Error).message}`] };
      }
      return {
        name: s.name,
        source: s.source,
        defaultEnabled: s.defaultEnabled,
        available,
        reason,
        variant,
        minKernel: kernel?.min ?? null,
        minKernelAll: kernel?.all ?? null,
        kernelNotes: kernel?.notes ?? [],
        description: s.description,
        metrics: s.metrics.length,
        events: s.events.length,
      };
    }),
  );
}

/** The human table of `podnet probes` (one line per probe). */
export function formatProbeTable(rows: readonly ProbeRow[]): string {
  if (rows.length === 0) return '(no probes registered)\n';
  const head = ['PROBE', 'SOURCE', 'DEFAULT', 'AVAILABLE', 'KERNEL', 'VARIANT', 'REASON'];
  const body = rows.map((r) => [
    r.name,
    r.source,
    r.defaultEnabled ? 'on' : 'off',
    r.available ? 'yes' : 'no',
    r.minKernel
      ? r.minKernel === r.minKernelAll
        ? `>=${r.minKernel}`
        : `>=${r.minKernel} (all: ${r.minKernelAll})`
      : '-',
    r.variant ?? '',
    r.reason ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body]
    .map(
      (line) =>
        `${line
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}
