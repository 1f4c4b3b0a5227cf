// The metric and event reference is generated from the ProbeSpec declarations; the committed file must be
// current, and the declarations must respect the pipeline's contract.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { probeSpecs } from '../../probes/registry.ts';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { definitionConflict } from '../../receiver/otel/metric-store.ts';
import { SELF_METRICS } from '../../receiver/otel/self-telemetry.ts';
import { ENTITY_KEYS } from '../../receiver/otel/semconv.ts';
import type { MetricDef } from '../../receiver/probe/types.ts';
import { prometheusName, REFERENCE_PATH, renderReference } from '../../scripts/gen-docs.ts';

test('docs/reference.md is current (regenerate: node scripts/gen-docs.ts)', () => {
  const committed = readFileSync(REFERENCE_PATH, 'utf8');
  assert.ok(
    committed === renderReference(),
    'docs/reference.md is stale: run `node scripts/gen-docs.ts` and commit it',
  );
});

test('the reference changes when a declaration changes (the staleness check can fail)', () => {
  const changed = {
    ...syntheticSpec,
    name: 'pno-extra',
    metrics: [{ ...syntheticSpec.metrics[0]!, name: 'podnet.pno.extra.count' }],
  };
  const text = renderReference([...probeSpecs, changed]);
  assert.notEqual(text, renderReference());
  assert.match(
    text,
    /\| `podnet\.pno\.extra\.count` \| `podnet_pno_extra_count_total` \| cumulative monotonic sum \| `\{packet\}` \|/,
  );
});

test('every declared metric and event is in the reference, with its Prometheus name', () => {
  const text = renderReference();
  for (const spec of [...probeSpecs, syntheticSpec]) {
    for (const m of spec.metrics) {
      assert.ok(text.includes(`\`${m.name}\``), m.name);
      assert.ok(text.includes(prometheusName(m)), prometheusName(m));
    }
    for (const e of spec.events) assert.ok(text.includes(`\`${e.name}\``), e.name);
  }
  for (const m of SELF_METRICS) assert.ok(text.includes(`\`${m.name}\``), m.name);
});

test('declarations respect the contract: consistent names, no entity keys, podnet. or known semconv names', () => {
  const all = [...probeSpecs, syntheticSpec];
  const seen = new Map<string, { by: string; def: MetricDef }>();
  for (const m of SELF_METRICS) seen.set(m.name, { by: 'self-telemetry', def: m });
  const problems: string[] = [];
  for (const spec of all) {
    for (const m of spec.metrics) {
      const other = seen.get(m.name);
      // Shared names (e.g. eBPF self-telemetry declared by every eBPF probe) must agree.
      const conflict =
        other && (other.by === 'self-telemetry' ? 'a self-telemetry name' : definitionConflict(other.def, m));
      if (conflict) problems.push(`${spec.name}: metric ${m.name} conflicts with ${other.by}: ${conflict}`);
      if (!other) seen.set(m.name, { by: spec.name, def: m });
      for (const a of m.attributes)
        if (ENTITY_KEYS.includes(a)) problems.push(`${spec.name}: ${m.name} declares entity key ${a}`);
      if (!m.name.startsWith('podnet.') && !/^k8s\.(pod|node)\.network\./.test(m.name))
        problems.push(
          `${spec.name}: ${m.name} is neither under podnet. nor a semconv k8s.{pod,node}.network.* name`,
        );
      if (m.unit === '') problems.push(`${spec.name}: ${m.name} has no unit`);
    }
    for (const e of spec.events) {
      if (!e.name.startsWith('podnet.')) problems.push(`${spec.name}: event ${e.name} not under podnet.`);
      for (const a of e.attributes)
        if (ENTITY_KEYS.includes(a)) problems.push(`${spec.name}: event ${e.name} declares entity key ${a}`);
    }
  }
  assert.deepEqual(problems, []);
});
