// The helpers the dashboard row tables are written with (selectors, rate/heatmap queries, panel
// shorthands) and the DNS row both views share. Its own file so node-rows.ts and pod-rows.ts depend on it
// and not on each other.
import type { PanelSpec, Row, Target } from './grafana.ts';

export const RATE = '$__rate_interval';
export const NODE = 'k8s_node_name=~"$node"';
export const POD = 'k8s_namespace_name="$namespace", k8s_pod_name="$pod"';

export const rate = (metric: string, sel: string, by: string) =>
  `sum by (${by}) (rate(${metric}{${sel}}[${RATE}]))`;
export const heat = (metric: string, sel: string) => `sum by (le) (rate(${metric}_bucket{${sel}}[${RATE}]))`;
export const ts = (
  title: string,
  description: string,
  unit: string,
  targets: Target[],
  extra: Partial<PanelSpec> = {},
) => ({ title, description, type: 'timeseries', unit, targets, ...extra }) as PanelSpec;
export const heatmap = (title: string, description: string, expr: string) =>
  ({
    title,
    description,
    type: 'heatmap',
    unit: 's',
    targets: [{ expr, legend: '{{le}}', format: 'heatmap' }],
  }) as PanelSpec;

/** DNS (probes/dns): latency quantiles, response codes, timeouts; per pod on the node view. */
export function dnsRow(sel: string, byPod: boolean): Row {
  const by = byPod ? 'k8s_namespace_name, k8s_pod_name, ' : '';
  const who = byPod ? '{{k8s_namespace_name}}/{{k8s_pod_name}} ' : '';
  const q = (p: string) =>
    `histogram_quantile(${p}, sum by (${by}le) (rate(podnet_dns_request_duration_seconds_bucket{${sel}}[${RATE}])))`;
  return {
    title: 'DNS',
    panels: [
      ts(
        'DNS latency p50 / p99',
        'Time from a query to its response, seen in the kernel (podnet.dns.request.duration), per pod.',
        's',
        [
          { expr: q('0.5'), legend: `${who}p50` },
          { expr: q('0.99'), legend: `${who}p99` },
        ],
      ),
      ts(
        'DNS responses by response code',
        'Responses per second by response code (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...).',
        'short',
        [
          {
            expr: rate('podnet_dns_response_count_total', sel, `${by}podnet_dns_response_code`),
            legend: `${who}{{podnet_dns_response_code}}`,
          },
        ],
        { stack: true },
      ),
      ts(
        'DNS timeouts and truncated answers',
        'Queries with no response within the window (default 5 s) and responses with the TC bit. Timed-out queries with their names and a conntrack-race diagnosis are podnet.dns.timeout events.',
        'short',
        [
          {
            expr: rate('podnet_dns_timeout_count_total', sel, `${by}podnet_dns_question_type`),
            legend: `${who}timeout {{podnet_dns_question_type}}`,
          },
          {
            expr: `sum${byPod ? ' by (k8s_namespace_name, k8s_pod_name)' : ''} (rate(podnet_dns_truncated_count_total{${sel}}[${RATE}]))`,
            legend: `${who}truncated`,
          },
        ],
      ),
    ],
  };
}
