// Every dashboard query is valid PromQL to a second, independent parser: Prometheus's own grammar for the
// web UI (@prometheus-io/lezer-promql, the Lezer parser of PromQL in prometheus/web/ui). The metrics it
// finds in the syntax tree are names podnet exports (the translation with unit suffixes of the declared
// metrics, docs/reference.md). promtool checks the same queries in dashboards.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parser } from '@prometheus-io/lezer-promql';
import { probeSpecs } from '../../probes/registry.ts';
import { prometheusName } from '../../scripts/gen-docs.ts';
import { promQueries, substituteVariables } from './promql.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** Syntax errors (error nodes) and the metric names of `expr`'s vector selectors. */
function parse(expr: string): { errors: number[]; metrics: string[] } {
  const tree = parser.parse(expr);
  const errors: number[] = [];
  const metrics: string[] = [];
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) errors.push(n.from);
      if (n.name === 'Identifier' && n.node.parent?.name === 'VectorSelector')
        metrics.push(expr.slice(n.from, n.to));
    },
  });
  return { errors, metrics };
}

const declared = new Set<string>();
for (const s of probeSpecs)
  for (const m of s.metrics) {
    const n = prometheusName(m).split(' ')[0]!;
    declared.add(n);
    if (m.kind === 'histogram') for (const x of ['_sum', '_count']) declared.add(n.replace(/_bucket$/, x));
  }

test('the parser rejects broken PromQL (so the checks below can fail)', () => {
  assert.ok(parse('sum by (le) (rate(x_bucket{a="b"}[1m])').errors.length > 0);
  assert.ok(parse('rate(x{a="b"[1m])').errors.length > 0);
  assert.deepEqual(parse('sum(rate(a_total{x="1"}[1m])) / sum(b_bytes)'), {
    errors: [],
    metrics: ['a_total', 'b_bytes'],
  });
});

for (const file of ['podnet-node.json', 'podnet-pod.json']) {
  test(`${file}: every query parses and selects only metrics podnet exports`, () => {
    const json = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', file), 'utf8'));
    const queries = promQueries(json);
    assert.ok(queries.length > 5, `${file}: ${queries.length} queries`);
    for (const q of queries) {
      const expr = substituteVariables(q.expr);
      const { errors, metrics } = parse(expr);
      assert.deepEqual(errors, [], `${file} "${q.panel}": syntax error in ${expr}`);
      assert.ok(metrics.length > 0, `${file} "${q.panel}": no metric in ${expr}`);
      for (const m of metrics) assert.ok(declared.has(m), `${file} "${q.panel}": ${m} is not exported`);
    }
  });
}
