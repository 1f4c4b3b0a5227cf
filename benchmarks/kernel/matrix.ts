// The kernel matrix of RESULTS.md (benchmarks/kernel/vm.ts): probe × kernel × variant chosen × result,
// from the kernel-reach facts (test/kernel/scenarios.ts) of this machine's kernel and of the 6.1 VM.
import { type MatrixRow, matrixRows } from '../../test/kernel/facts.ts';
import type { Fact } from '../../test/kernel/scenarios.ts';
import type { Table } from '../lib/results.ts';

export interface KernelFacts {
  /** Column label, e.g. "6.18.0-… (host)". */
  readonly kernel: string;
  readonly facts: readonly Fact[];
}

/** Info fields that are counts (a compared number, not a time: none is taken from inside the TCG guest). */
const COUNT_INFO = ['kernel', 'podnet', 'compared'] as const;

/** A fact's compared values as `path value` pairs (`kernel 37, podnet 37`), a bare value alone (`89`). */
export function comparedCounts(f: Fact): string {
  const parts: string[] = [];
  const walk = (v: unknown, path: string): void => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
      return;
    }
    const text = typeof v === 'string' ? v || '(empty)' : JSON.stringify(v);
    parts.push(path ? `${path} ${text}` : text);
  };
  walk(f.actual, '');
  const info = (f.info ?? {}) as Record<string, unknown>;
  for (const k of COUNT_INFO) if (typeof info[k] === 'number') parts.push(`${k} ${info[k]}`);
  return parts.join(', ');
}

/** "loaded" / "degraded: reason" / "unavailable: reason" / "available" (procfs and netlink probes). */
export function resultText(r: MatrixRow): string {
  const ebpf = r.load.expected !== null && typeof r.load.expected === 'object' && 'state' in r.load.expected;
  const base = !r.available
    ? `unavailable: ${r.reason ?? 'no reason given'}`
    : r.reason?.startsWith('partly')
      ? `degraded: ${r.reason}`
      : ebpf
        ? 'loaded'
        : 'available';
  return `${base}${r.fellBackToRawTp.length ? ` (tp_btf refused at load, raw_tp twin used: ${r.fellBackToRawTp.join(', ')})` : ''}`;
}

/** One row per probe and kernel, the kernels of a probe next to each other. */
export function matrixTable(kernels: readonly KernelFacts[]): Table {
  const perKernel = kernels.map((k) => ({ kernel: k.kernel, rows: matrixRows(k.facts) }));
  const probes = [...new Set(perKernel.flatMap((k) => k.rows.map((r) => r.probe)))];
  const rows: string[][] = [];
  for (const p of probes)
    for (const k of perKernel) {
      const r = k.rows.find((x) => x.probe === p);
      if (!r) continue;
      rows.push([
        p,
        k.kernel,
        `${r.variant ?? '–'}${r.tested.length ? ` (checked: ${r.tested.join(', ')})` : ''}`,
        resultText(r),
        r.checks.map((c) => `${c.id}: ${comparedCounts(c)}`).join('; ') || '–',
      ]);
    }
  return {
    title: 'Kernel matrix: probe × kernel × variant chosen × result',
    headers: [
      'probe',
      'kernel',
      'variant chosen (podnet probes)',
      'result',
      'exact checks passed (compared values)',
    ],
    rows,
  };
}

/** The Machine table row for the VM kernel. */
export function vmMachineRow(release: string, passedAt: string, sectionTitle: string): [string, string] {
  return [
    'second kernel (VM, TCG)',
    `${release}: kernel-reach checks passed at ${passedAt} (section «${sectionTitle}»)`,
  ];
}
