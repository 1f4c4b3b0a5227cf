import assert from 'node:assert/strict';

// Just enough PromQL reading for the dashboard checks: the metric names a query selects, the label matchers
// of each selector, and the labels named in `by (...)` / `without (...)`. Syntax itself is checked by
// promtool (Prometheus's own parser) in the dashboard test.

export interface Selector {
  readonly metric: string;
  readonly labels: readonly string[];
}

export interface QueryParts {
  readonly selectors: readonly Selector[];
  readonly groupingLabels: readonly string[];
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/** Grafana variables → values that make the query valid PromQL and select everything. */
export function substituteVariables(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '1h')
    .replace(/\$\{?(\w+)\}?/g, '.+');
}

export function queryParts(expr: string): QueryParts {
  const grouping: string[] = [];
  let s = expr.replace(
    /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g,
    (_m, _k, list: string) => {
      for (const l of list
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean))
        grouping.push(l);
      return ' ';
    },
  );
  s = s.replace(/\[[^\]]*\]/g, ' '); // range selectors
  const selectors: Selector[] = [];
  // metric{matchers}
  s = s.replace(
    /([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}/g,
    (_m, metric: string | undefined, body: string) => {
      const labels = [...body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"/g)].map(
        (x) => x[1]!,
      );
      selectors.push({ metric: metric ?? '', labels });
      return ' ';
    },
  );
  s = s.replace(/"(?:[^"\\]|\\.)*"/g, ' ');
  // bare metric names: identifiers not followed by '(' and not keywords or numbers
  for (const m of s.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    selectors.push({ metric: m[1]!, labels: [] });
  }
  return { selectors, groupingLabels: grouping };
}

// biome-ignore lint/suspicious/noExplicitAny: dashboard JSON is walked as plain data.
type Any = any;

/** Every PromQL query of a dashboard: panel targets on a Prometheus datasource and query variables. */
export function promQueries(board: Any): Array<{ panel: string; expr: string; legend: string }> {
  const out: Array<{ panel: string; expr: string; legend: string }> = [];
  for (const p of board.panels)
    for (const t of p.targets ?? [])
      if ((t.datasource?.type ?? p.datasource?.type) === 'prometheus')
        out.push({ panel: p.title, expr: t.expr, legend: t.legendFormat ?? '' });
  for (const v of board.templating.list)
    if (v.type === 'query') {
      const m = /^label_values\((.*),\s*(\w+)\)$/.exec(v.query.query);
      assert.ok(m, `variable ${v.name}: ${v.query.query}`);
      out.push({ panel: `variable ${v.name}`, expr: m[1]!, legend: `{{${m[2]}}}` });
    }
  return out;
}
