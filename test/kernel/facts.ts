// Declares one node:test test per kernel-reach fact (scenarios.ts), for a source of facts computed once
// in before() — the host's kernel (host.test.ts) or the 6.1 VM (vm.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probeSpecs } from '../../probes/registry.ts';
import type { Fact } from './scenarios.ts';

/** Every fact id allFacts() produces, in order. */
export const FACT_IDS: readonly string[] = [
  ...probeSpecs.map((s) => `probe.${s.name}`),
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
];

export function factTests(label: string, facts: () => readonly Fact[] | undefined): void {
  for (const id of FACT_IDS) {
    test(`${label}: ${id}`, () => {
      const all = facts();
      assert.ok(all, 'the scenarios did not run (see the first test)');
      const f = all.find((x) => x.id === id);
      assert.ok(f, `fact ${id} missing (the scenario run stopped before it)`);
      assert.deepEqual(f.actual, f.expected, `${f.what} — ${JSON.stringify(f.info ?? {})}`);
    });
  }
}
