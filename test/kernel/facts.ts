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
  'dns.auto',
  'dns.tracepoint',
];

/**
 * probe × variant × result lines for this kernel (docs/kernels.md quotes them): each probe's availability
 * fact plus the count checks of the scenarios that exercise it.
 */
export function matrix(facts: readonly Fact[]): string[] {
  const ok = (f: Fact) => (isDeepStrictEqual(f.actual, f.expected) ? 'ok' : 'FAIL');
  const out: string[] = [];
  for (const f of facts.filter((x) => x.id.startsWith('probe.'))) {
    const name = f.id.slice('probe.'.length);
    const i = (f.info ?? {}) as Record<string, unknown>;
    const checks = facts.filter(
      (x) =>
        x.id.split('.')[0] === name ||
        x.id === `raw.${name}` ||
        (name === 'netdev' && x.id === 'procfs.netdev') ||
        (name === 'snmp' && x.id === 'procfs.snmp'),
    );
    const variants = [
      ...new Set(
        checks
          .map(
            (c) =>
              (c.info as Record<string, unknown> | undefined)?.['variant'] ??
              (c.info as Record<string, unknown> | undefined)?.['attachMode'],
          )
          .filter(Boolean),
      ),
    ];
    out.push(
      `${name} | ${i['available'] ? 'available' : 'unavailable'}${i['reason'] ? ` (${String(i['reason']).slice(0, 80)})` : ''} | ${i['variant'] ?? '-'}${variants.length ? ` [tested: ${variants.join(', ')}]` : ''} | load ${ok(f)}${(i['fellBackToRawTp'] as string[] | undefined)?.length ? ` (tp_btf refused, raw_tp twin used: ${(i['fellBackToRawTp'] as string[]).join(', ')})` : ''}${(i['notLoaded'] as string[] | undefined)?.length ? ` (not loaded: ${(i['notLoaded'] as string[]).join(', ')})` : ''}${checks.length ? `, ${checks.map((c) => `${c.id} ${ok(c)}`).join(', ')}` : ''}`,
    );
  }
  return out;
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
        assert.ok(!isDeepStrictEqual(f.actual, f.expected), `${id} now passes: remove it from knownDefects`);
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
