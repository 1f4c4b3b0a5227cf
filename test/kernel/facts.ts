// Declares one node:test test per kernel-reach fact (scenarios.ts), for a source of facts computed once
// in before() — the host's kernel (host.test.ts) or the 6.1 VM (vm.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { probeSpecs } from '../../probes/registry.ts';
import type { Fact } from './scenarios.ts';

/** Every fact id allFacts() produces, in order. */
export const FACT_IDS: readonly string[] = [
  ...probeSpecs.map((s) => `probe.${s.name}`),
  // eBPF probes with an `attach` arg (every tracing probe; flow has none)
  ...probeSpecs.filter((s) => s.source === 'ebpf' && s.name !== 'flow').map((s) => `raw.${s.name}`),
  ...['reason', 'location'].flatMap((v) =>
    ['udp4.noports', 'udp6.noports', 'nft', 'udp.only'].map((c) => `packetloss.${v}.${c}`),
  ),
  'tcpreset.nosock',
  'tcpreset.receive',
  'tcpreset.active',
  'tcpretrans.segs',
  'procfs.netdev',
  'procfs.snmp',
  'flow.auto',
  'flow.auto.detached',
  'flow.tc',
  'flow.tc.detached',
  'dns.tc',
  'dns.auto',
  'dns.tracepoint',
  'agent.states',
  'agent.flow',
  'agent.dns',
  'agent.detached',
];

/** One probe on one kernel: its availability fact and the count checks of the scenarios exercising it. */
export interface MatrixRow {
  readonly probe: string;
  readonly available: boolean;
  readonly reason: string | null;
  /** The variant availability chose (`podnet probes`), null for procfs/netlink probes. */
  readonly variant: string | null;
  /** Variants / attach modes the checks ran (forced ones included). */
  readonly tested: readonly string[];
  /** The availability fact (loads and attaches what availability promised). */
  readonly load: Fact;
  /** tp_btf programs the kernel refused at load whose raw_tp twin ran instead. */
  readonly fellBackToRawTp: readonly string[];
  readonly notLoaded: readonly string[];
  readonly checks: readonly Fact[];
}

/** Whether a fact holds (what the tests assert). */
export const holds = (f: Fact): boolean => isDeepStrictEqual(f.actual, f.expected);

/** probe × variant × checks, one row per probe, in the order of the availability facts. */
export function matrixRows(facts: readonly Fact[]): MatrixRow[] {
  return facts
    .filter((x) => x.id.startsWith('probe.'))
    .map((f) => {
      const name = f.id.slice('probe.'.length);
      const i = (f.info ?? {}) as Record<string, unknown>;
      const checks = facts.filter(
        (x) =>
          x.id.split('.')[0] === name ||
          x.id === `raw.${name}` ||
          (name === 'netdev' && x.id === 'procfs.netdev') ||
          (name === 'snmp' && x.id === 'procfs.snmp'),
      );
      const tested = [
        ...new Set(
          checks
            .map((c) => {
              const ci = c.info as Record<string, unknown> | undefined;
              return ci?.['variant'] ?? ci?.['attachMode'];
            })
            .filter(Boolean)
            .map(String),
        ),
      ];
      return {
        probe: name,
        available: Boolean(i['available']),
        reason: i['reason'] ? String(i['reason']) : null,
        variant: i['variant'] ? String(i['variant']) : null,
        tested,
        load: f,
        fellBackToRawTp: (i['fellBackToRawTp'] as string[] | undefined) ?? [],
        notLoaded: (i['notLoaded'] as string[] | undefined) ?? [],
        checks,
      };
    });
}

/** probe × variant × result lines for this kernel (docs/kernels.md quotes them). */
export function matrix(facts: readonly Fact[]): string[] {
  const ok = (f: Fact) => (holds(f) ? 'ok' : 'FAIL');
  return matrixRows(facts).map(
    (r) =>
      `${r.probe} | ${r.available ? 'available' : 'unavailable'}${r.reason ? ` (${r.reason.slice(0, 80)})` : ''} | ${r.variant ?? '-'}${r.tested.length ? ` [tested: ${r.tested.join(', ')}]` : ''} | load ${ok(r.load)}${r.fellBackToRawTp.length ? ` (tp_btf refused, raw_tp twin used: ${r.fellBackToRawTp.join(', ')})` : ''}${r.notLoaded.length ? ` (not loaded: ${r.notLoaded.join(', ')})` : ''}${r.checks.length ? `, ${r.checks.map((c) => `${c.id} ${ok(c)}`).join(', ')}` : ''}`,
  );
}

/**
 * Declares one test per fact. `knownDefects` (fact id → what is wrong) are defects found on this kernel
 * and not fixed yet: their test asserts that the fact still differs, so it fails once the defect is fixed
 * and the entry must go.
 */
export function factTests(
  label: string,
  facts: () => readonly Fact[] | undefined,
  knownDefects: Readonly<Record<string, string>> = {},
): void {
  for (const id of FACT_IDS) {
    test(`${label}: ${id}${knownDefects[id] ? ` (known defect: ${knownDefects[id]})` : ''}`, () => {
      const all = facts();
      assert.ok(all, 'the scenarios did not run (see the first test)');
      const f = all.find((x) => x.id === id);
      assert.ok(f, `fact ${id} missing (the scenario run stopped before it)`);
      if (knownDefects[id]) {
        assert.ok(!holds(f), `${id} now passes: remove it from knownDefects`);
        return;
      }
      assert.deepEqual(f.actual, f.expected, `${f.what} — ${JSON.stringify(f.info ?? {})}`);
    });
  }
  test(`${label}: matrix (probe | availability | variant | result)`, () => {
    const all = facts();
    assert.ok(all);
    for (const line of matrix(all)) process.stdout.write(`# matrix ${label} | ${line}\n`);
  });
}
