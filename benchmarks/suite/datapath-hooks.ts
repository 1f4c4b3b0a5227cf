// Where the BPF time of a datapath.ts kernel-time run goes, hook by hook: podnet's programs from its
// /status (hook, chain order), BPF_STATS per program summed per hook. A tail call is not a run of its own
// in that accounting (the callee's time lands in the caller's), so a chained program shows 0 runs; a
// hook's total is exact either way, and the table names the chain's members.
import { fmt } from '../lib/stats.ts';
import type { BpfRun } from './datapath-stats.ts';

/** One program of podnet as its /status shows it: the hook it runs on and the program it is chained after. */
export interface ProgLayout {
  name: string;
  probe: string;
  hook: string;
  /** Runs by a tail call from this program (no link of its own): BPF_STATS charges its time to the head. */
  chainedAfter?: string;
}

/** The hook a program runs on, from its section ("tp_btf/net_dev_queue" → net_dev_queue; tc by name). */
function hookOf(name: string, section: string): string {
  if (section === 'tc' || section.startsWith('tcx'))
    return `tc ${/egress/.test(name) ? 'egress' : 'ingress'} (${/host/.test(name) ? 'host device' : 'veth'})`;
  const i = section.indexOf('/');
  return i < 0 ? section : section.slice(i + 1);
}

/** The programs of podnet's probes (its /status: probes[].details.programs), loaded ones only. */
// biome-ignore lint/suspicious/noExplicitAny: /status is dynamic JSON.
export function progLayout(status: any): ProgLayout[] {
  const out: ProgLayout[] = [];
  for (const p of status?.probes ?? []) {
    const progs = (p?.details?.programs ?? []) as {
      name: string;
      section: string;
      state: string;
      chainedAfter?: string;
    }[];
    for (const g of progs) {
      // a loaded program may run without a link of its own (tc filters on veths, a chain member); one
      // that does not run (a raw_tp twin) has no runs and shows nowhere
      if (g.state !== 'attached' && g.state !== 'loaded') continue;
      out.push({
        name: g.name,
        probe: String(p.name),
        hook: hookOf(g.name, g.section),
        ...(g.chainedAfter ? { chainedAfter: g.chainedAfter } : {}),
      });
    }
  }
  return out;
}

/** One hook of a run's program set: BPF_STATS summed over its programs, chain members named. */
export interface HookCost {
  hook: string;
  /** Programs in chain order ("a → b" = b runs by a's tail call), unchained ones separated by ", ". */
  programs: string;
  /** Program runs BPF_STATS counts: one per dispatch (a chain is one run, charged to its head). */
  dispatches: number;
  /** Program bodies run: dispatches plus the chain members' (one per run of the program before them). */
  bodies: number;
  ns: number;
}

/**
 * Per hook: BPF_STATS of the programs on it. Why per hook: a tail call is not a run of its own in this
 * accounting (kernel/bpf/syscall.c counts at the dispatch, the callee's time lands in the head's), so a
 * chained program shows 0 runs and its cost is inside the head's; a hook's total is exact either way.
 */
export function hookCosts(runs: readonly BpfRun[]): HookCost[] {
  const agg = new Map<string, HookCost>();
  const progRuns = new Map<string, number>();
  for (const b of runs) for (const [name, r] of b.all) progRuns.set(name, (progRuns.get(name) ?? 0) + r);
  for (const b of runs) {
    const byName = new Map(b.layout.map((l) => [l.name, l]));
    for (const [name, r, ns] of b.all) {
      const hook = byName.get(name)?.hook ?? '(not in /status)';
      const e = agg.get(hook) ?? { hook, programs: '', dispatches: 0, bodies: 0, ns: 0 };
      e.dispatches += r;
      e.bodies += r;
      e.ns += ns;
      agg.set(hook, e);
    }
    // chain members: as many bodies as the program they follow ran (every head ends in the tail call)
    for (const l of b.layout) {
      if (!l.chainedAfter) continue;
      let head = l.chainedAfter;
      const seen = new Set<string>();
      while (byName.get(head)?.chainedAfter && !seen.has(head)) {
        seen.add(head);
        head = byName.get(head)?.chainedAfter as string;
      }
      const headRuns = b.all.find(([n]) => n === head)?.[1] ?? 0;
      const e = agg.get(l.hook) ?? {
        hook: l.hook,
        programs: '',
        dispatches: 0,
        bodies: 0,
        ns: 0,
      };
      e.bodies += headRuns;
      agg.set(l.hook, e);
    }
  }
  // the program list of each hook, from the last run's layout (chains in order)
  const last = runs.at(-1)?.layout ?? [];
  for (const e of agg.values()) {
    const on = last.filter((l) => l.hook === e.hook && (l.chainedAfter || (progRuns.get(l.name) ?? 0) > 0));
    const lists = on
      .filter((l) => !l.chainedAfter)
      .map((h) => {
        const chain = [h.name];
        for (
          let cur = h.name, n = on.find((l) => l.chainedAfter === cur);
          n;
          n = on.find((l) => l.chainedAfter === cur)
        ) {
          chain.push(n.name);
          cur = n.name;
        }
        return chain.join(' → ');
      });
    e.programs = lists.join(', ');
  }
  return [...agg.values()].filter((h) => h.dispatches > 0).sort((a, b) => b.ns - a.ns);
}

/** Per hook, per packet, one tree/variant/protocol (all reps summed): the table of the quiet run's report. */
export function hookTable(
  bpfRuns: readonly BpfRun[],
  tree: 'this' | 'base',
  variant: 'default' | 'all',
  proto: BpfRun['proto'],
): { rows: (string | number)[][]; packets: number; floorNs: number } {
  const xs = bpfRuns.filter((b) => b.tree === tree && b.variant === variant && b.proto === proto);
  const packets = xs.reduce((a, b) => a + b.packets, 0);
  const fl = bpfRuns.reduce((a, b) => ({ runs: a.runs + b.floor.runs, ns: a.ns + b.floor.ns }), {
    runs: 0,
    ns: 0,
  });
  const floorNs = fl.runs > 0 ? fl.ns / fl.runs : Number.NaN;
  const total = xs.reduce((a, b) => a + b.bpfNs, 0);
  const rows = hookCosts(xs).map((h) => [
    h.hook,
    h.programs,
    fmt(h.dispatches / packets, h.dispatches < packets ? 3 : 2),
    fmt(h.bodies / packets, h.bodies < packets ? 3 : 2),
    fmt(h.ns / packets, 1),
    fmt(h.ns / h.dispatches, 0),
    Number.isFinite(floorNs) ? fmt(Math.max(0, h.ns - h.dispatches * floorNs) / packets, 1) : '–',
    total > 0 ? `${fmt((h.ns / total) * 100, 1)} %` : '–',
  ]);
  return { rows, packets, floorNs };
}

export const HOOK_HEADERS = [
  'hook',
  'programs (a → b: b runs by a’s tail call)',
  'dispatches per packet',
  'program bodies per packet',
  'BPF ns per packet',
  'ns per dispatch',
  'ns per packet above the empty-program floor',
  'share of BPF time',
] as const;

/** Prints the per-hook breakdown of every tree for one variant, per protocol. */
export function printHooks(
  bpfRuns: readonly BpfRun[],
  trees: readonly ('this' | 'base')[],
  variant: 'default' | 'all',
): void {
  for (const proto of ['tcp', 'udp', 'udp-paced'] as const) {
    for (const tree of trees) {
      const t = hookTable(bpfRuns, tree, variant, proto);
      if (t.rows.length === 0) continue;
      console.log(
        `\nper hook, ${tree} "${variant}" ${proto} (all reps; packets: ${proto === 'tcp' ? '1,448-byte segments' : 'datagrams sent'}; empty-program floor ${fmt(t.floorNs, 0)} ns per dispatch)`,
      );
      console.log(`  ${HOOK_HEADERS.slice(2).join(' | ')} | hook: programs`);
      for (const r of t.rows)
        console.log(
          `  ${r
            .slice(2)
            .map((c) => String(c).padStart(6))
            .join('  ')}   ${r[0]}: ${r[1]}`,
        );
    }
  }
}
