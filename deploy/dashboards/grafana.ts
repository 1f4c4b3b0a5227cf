// The Grafana JSON builder of the dashboards: the panel/row table types and their rendering into
// Grafana's dashboard model (panel grid layout, Prometheus and Loki targets, template variables). Its own
// file so the row tables (node-rows.ts, pod-rows.ts) hold only what each view shows, and the Grafana
// schema details live in one place; deploy/dashboards.ts puts them together and writes deploy/grafana/.

export type Target = {
  expr: string;
  legend?: string;
  format?: 'time_series' | 'heatmap' | 'table';
  instant?: boolean;
};
export interface PanelSpec {
  readonly title: string;
  readonly description: string;
  readonly type: 'timeseries' | 'heatmap' | 'logs' | 'stat';
  readonly unit?: string;
  readonly targets: readonly Target[];
  /** Loki query for `logs` panels. */
  readonly logs?: string;
  readonly w?: number;
  readonly h?: number;
  readonly stack?: boolean;
}
export interface Row {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

const PROM = { type: 'prometheus', uid: `${'$'}{datasource}` };
const LOKI = { type: 'loki', uid: `${'$'}{loki}` };

export function panels(rows: readonly Row[]): unknown[] {
  const out: unknown[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    out.push({
      type: 'row',
      id: id++,
      title: row.title,
      collapsed: false,
      gridPos: { x: 0, y, w: 24, h: 1 },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowH = 0;
    for (const p of row.panels) {
      const w = p.w ?? 8;
      const h = p.h ?? 8;
      if (x + w > 24) {
        x = 0;
        y += rowH;
        rowH = 0;
      }
      const base = {
        id: id++,
        type: p.type,
        title: p.title,
        description: p.description,
        gridPos: { x, y, w, h },
      };
      if (p.type === 'logs') {
        out.push({
          ...base,
          datasource: LOKI,
          targets: [{ refId: 'A', datasource: LOKI, expr: p.logs, queryType: 'range' }],
          options: { showTime: true, wrapLogMessage: true, sortOrder: 'Descending', enableLogDetails: true },
        });
      } else {
        const targets = p.targets.map((t, i) => ({
          refId: String.fromCharCode(65 + i),
          datasource: PROM,
          expr: t.expr,
          legendFormat: t.legend ?? '__auto',
          format: t.format ?? 'time_series',
          range: true,
        }));
        if (p.type === 'heatmap') {
          out.push({
            ...base,
            datasource: PROM,
            targets,
            options: {
              calculate: false,
              yAxis: { unit: p.unit ?? 's' },
              color: { mode: 'scheme', scheme: 'Oranges' },
              cellGap: 1,
              tooltip: { mode: 'single', yHistogram: true },
            },
          });
        } else {
          out.push({
            ...base,
            datasource: PROM,
            targets,
            fieldConfig: {
              defaults: {
                unit: p.unit ?? 'short',
                custom: {
                  drawStyle: 'line',
                  fillOpacity: p.stack ? 30 : 10,
                  stacking: { mode: p.stack ? 'normal' : 'none' },
                },
              },
              overrides: [],
            },
            options: {
              legend: { displayMode: 'list', placement: 'bottom' },
              tooltip: { mode: 'multi', sort: 'desc' },
            },
          });
        }
      }
      x += w;
      rowH = Math.max(rowH, h);
    }
    y += rowH;
  }
  return out;
}

export function variable(name: string, label: string, query: string, opts: { all: boolean }): unknown {
  return {
    name,
    label,
    type: 'query',
    datasource: PROM,
    query: { query, refId: `${name}-var` },
    definition: query,
    refresh: 2,
    sort: 1,
    includeAll: opts.all,
    multi: opts.all,
    ...(opts.all ? { allValue: '.*', current: { text: 'All', value: '$__all' } } : {}),
  };
}

export function dashboard(
  uid: string,
  title: string,
  description: string,
  vars: unknown[],
  rows: Row[],
): unknown {
  return {
    uid,
    title,
    description,
    tags: ['podnet', 'network', 'kubernetes'],
    editable: true,
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-1h', to: 'now' },
    refresh: '30s',
    graphTooltip: 1,
    annotations: { list: [] },
    links: [{ title: 'podnet dashboards', type: 'dashboards', tags: ['podnet'], asDropdown: true }],
    templating: {
      list: [
        { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', refresh: 1 },
        { name: 'loki', label: 'Loki', type: 'datasource', query: 'loki', refresh: 1 },
        ...vars,
      ],
    },
    panels: panels(rows),
  };
}

export function render(d: unknown): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}
