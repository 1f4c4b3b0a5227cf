// deploy/grafana: the dashboards are what deploy/dashboards.ts generates, every PromQL query parses
// (promtool, Prometheus's own parser) and uses only metrics and labels podnet declares (probe registry, or
// the probe modules while the registry is empty), and every Loki query selects podnet's events.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { dashboards, GRAFANA_DIR, render } from '../../deploy/dashboards.ts';
import { declaredSpecs, type PromSeries, promSeries } from './declarations.ts';
import { promQueries, queryParts, substituteVariables } from './promql.ts';

// biome-ignore lint/suspicious/noExplicitAny: dashboard JSON is walked as plain data.
type Any = any;

const files = readdirSync(GRAFANA_DIR).filter((f) => f.endsWith('.json'));
const boards = files.map((f) => ({
  file: f,
  json: JSON.parse(readFileSync(join(GRAFANA_DIR, f), 'utf8')) as Any,
}));

let series: Map<string, PromSeries>;
let source: string;

before(async () => {
  const d = await declaredSpecs();
  source = d.source;
  series = promSeries(d.specs);
  assert.ok(series.size > 50, `declarations found: ${series.size}`);
});

test('the committed dashboards are what deploy/dashboards.ts generates', () => {
  const gen = dashboards();
  assert.deepEqual(files.sort(), Object.keys(gen).sort());
  for (const [f, d] of Object.entries(gen))
    assert.equal(
      readFileSync(join(GRAFANA_DIR, f), 'utf8'),
      render(d),
      `${f} is stale: run node deploy/dashboards.ts`,
    );
});

describe('dashboards', () => {
  test('a node view and a pod view with the required panels', () => {
    const titles = (f: string) =>
      boards
        .find((b) => b.file === f)!
        .json.panels.map((p: Any) => `${p.type}:${p.title}`)
        .join('\n');
    for (const f of ['podnet-node.json', 'podnet-pod.json']) {
      const t = titles(f);
      assert.match(t, /timeseries:.*[Tt]raffic/);
      assert.match(t, /timeseries:Kernel drops by reason/);
      assert.match(t, /timeseries:TCP resets by kind/);
      assert.match(t, /timeseries:TCP retransmits/);
      assert.match(t, /heatmap:/);
      assert.match(t, /logs:Anomaly events/);
    }
    assert.match(titles('podnet-pod.json'), /Connections by state/);
  });

  for (const { file, json } of boards) {
    test(`${file}: every query uses metrics podnet declares (${'registry or probe modules'})`, () => {
      const problems: string[] = [];
      for (const q of promQueries(json)) {
        const parts = queryParts(q.expr);
        assert.ok(parts.selectors.length > 0, `${q.panel}: no metric in ${q.expr}`);
        const allowed = new Set<string>();
        for (const sel of parts.selectors) {
          const s = series.get(sel.metric);
          if (!s) {
            problems.push(`${q.panel}: ${sel.metric} is not declared by any probe (${source})`);
            continue;
          }
          if (!s.def.enabled) problems.push(`${q.panel}: ${sel.metric} is disabled by default`);
          for (const l of s.labels) allowed.add(l);
          for (const l of sel.labels)
            if (!s.labels.has(l)) problems.push(`${q.panel}: ${sel.metric} has no label ${l}`);
        }
        for (const l of parts.groupingLabels)
          if (!allowed.has(l)) problems.push(`${q.panel}: grouping label ${l} is on none of its metrics`);
        for (const m of q.legend.matchAll(/\{\{(\w+)\}\}/g))
          if (!allowed.has(m[1]!) && m[1] !== 'le')
            problems.push(`${q.panel}: legend label ${m[1]} is on none of its metrics`);
      }
      assert.deepEqual(problems, []);
    });

    test(`${file}: every PromQL query parses (promtool)`, () => {
      const dir = mkdtempSync(join(tmpdir(), `pnd${process.pid}-promtool-`));
      try {
        const rules = promQueries(json).map(
          (q, i) =>
            `      - record: podnet:dashboard:q${i}\n        expr: ${JSON.stringify(substituteVariables(q.expr))}`,
        );
        writeFileSync(
          join(dir, 'rules.yml'),
          `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`,
        );
        const out = execFileSync('promtool', ['check', 'rules', join(dir, 'rules.yml')], {
          encoding: 'utf8',
        });
        assert.match(out, new RegExp(`SUCCESS: ${rules.length} rules found`));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test(`${file}: Loki panels select podnet's events by labels Loki has`, () => {
      const logs = json.panels.filter((p: Any) => p.type === 'logs');
      assert.ok(logs.length > 0);
      const known = new Set([
        'service_name',
        'k8s_node_name',
        'k8s_namespace_name',
        'k8s_pod_name',
        'podnet_event_type',
        'error_type',
      ]);
      for (const p of logs) {
        assert.equal(p.datasource.type, 'loki');
        const expr: string = p.targets[0].expr;
        assert.match(expr, /^\{service_name="podnet"[^}]*\}/);
        for (const m of expr.matchAll(/\b([a-z][a-z0-9_]*)\s*(=~|!=|!~|=)\s*"/g))
          assert.ok(known.has(m[1]!), `${p.title}: label ${m[1]}`);
      }
    });

    test(`${file}: panels lie on the grid without overlapping`, () => {
      const cells = new Set<string>();
      for (const p of json.panels) {
        const g = p.gridPos;
        assert.ok(g.x >= 0 && g.x + g.w <= 24, `${p.title} x`);
        for (let x = g.x; x < g.x + g.w; x++)
          for (let y = g.y; y < g.y + g.h; y++) {
            assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`);
            cells.add(`${x},${y}`);
          }
      }
      const ids = json.panels.map((p: Any) => p.id);
      assert.equal(new Set(ids).size, ids.length);
    });
  }

  test('every panel metric comes from a probe the shipped ConfigMap enables', async () => {
    const { parseAllDocuments } = await import('yaml');
    const { resolveConfigText } = await import('../../receiver/config/load.ts');
    const { probeSpecs } = await import('../../probes/registry.ts');
    const cm = parseAllDocuments(
      readFileSync(join(GRAFANA_DIR, '..', 'kubernetes', 'base', 'configmap.yaml'), 'utf8'),
    )[0]!.toJS();
    const config = resolveConfigText(cm.data['config.yaml'], 'configmap.yaml', {
      specs: probeSpecs,
      env: { K8S_NODE_NAME: 'n' },
    });
    const enabled = new Set(config.probes.filter((p) => p.enabled).map((p) => p.spec.name));
    const off: string[] = [];
    for (const { json } of boards)
      for (const q of promQueries(json))
        for (const sel of queryParts(q.expr).selectors) {
          const s = series.get(sel.metric);
          if (s && source === 'registry' && !s.probes.some((p) => enabled.has(p)))
            off.push(`${q.panel}: ${sel.metric} (probes ${s.probes.join(', ')})`);
        }
    assert.deepEqual([...new Set(off)], []);
  });

  test('the checks reject an undeclared metric, a wrong label and a PromQL syntax error', () => {
    const bad = queryParts(
      'sum by (k8s_pod_name, reason) (rate(podnet_kernel_drops_total{error_type="X"}[1m]))',
    );
    assert.ok(!series.has(bad.selectors[0]!.metric));
    const s = series.get('podnet_kernel_drop_count_total')!;
    assert.ok(s.labels.has('error_type') && s.labels.has('k8s_pod_name') && !s.labels.has('reason'));
    assert.ok(
      series.has('podnet_softirq_delay_seconds_bucket') &&
        !series.get('podnet_softirq_delay_seconds_sum')!.labels.has('le'),
    );
    const dir = mkdtempSync(join(tmpdir(), `pnd${process.pid}-promtool-`));
    try {
      writeFileSync(
        join(dir, 'r.yml'),
        'groups:\n  - name: x\n    rules:\n      - record: x\n        expr: "sum by (a (rate(x[1m]))"\n',
      );
      assert.throws(() =>
        execFileSync('promtool', ['check', 'rules', join(dir, 'r.yml')], { stdio: 'pipe' }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
