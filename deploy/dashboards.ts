// Generates the Grafana dashboards in deploy/grafana/ (a node view and a pod view) from one readable table
// per view: deploy/dashboards/node-rows.ts and pod-rows.ts (written with the helpers in rows.ts), rendered
// by deploy/dashboards/grafana.ts; this file puts them together and writes the JSON.
//
//   node deploy/dashboards.ts          rewrite deploy/grafana/*.json
//
// Every PromQL query uses the Prometheus names podnet exports: the OTel→Prometheus translation with unit
// suffixes (`_bytes`, `_seconds`), `_total` on counters, `_bucket`/`_sum`/`_count` on histograms — what
// /metrics serves and what Prometheus 3, Mimir and the Collector's Prometheus exporters name the same data
// received over OTLP, so one query works on every path. Labels are the
// attributes of the probe declarations (dots → underscores) plus `k8s_node_name`, which the scrape config
// (docs/deploy.md) or the Collector's resource_to_telemetry_conversion puts on every series.
// test/deploy/dashboards.test.ts checks every metric and label against the probe declarations, and that the
// committed JSON is what this script generates.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dashboard, render, variable } from './dashboards/grafana.ts';
import { nodeRows } from './dashboards/node-rows.ts';
import { podRows } from './dashboards/pod-rows.ts';

export { render } from './dashboards/grafana.ts';

export function dashboards(): Record<string, unknown> {
  return {
    'podnet-node.json': dashboard(
      'podnet-node',
      'podnet / Node',
      'Network health of one or more nodes as podnet sees it: pod traffic, kernel drops by reason, TCP resets and retransmits, TCP health, kernel latency heatmaps, and the anomaly events from Loki.',
      [
        variable('node', 'Node', 'label_values(podnet_network_packet_count_total, k8s_node_name)', {
          all: true,
        }),
      ],
      nodeRows(),
    ),
    'podnet-pod.json': dashboard(
      'podnet-pod',
      'podnet / Pod',
      'Network health of one pod: traffic, drops by reason, resets by kind, retransmits, TCP state and queues, latency heatmaps, and its anomaly events from Loki.',
      [
        variable(
          'namespace',
          'Namespace',
          'label_values(podnet_network_packet_count_total, k8s_namespace_name)',
          { all: false },
        ),
        variable(
          'pod',
          'Pod',
          'label_values(podnet_network_packet_count_total{k8s_namespace_name="$namespace"}, k8s_pod_name)',
          { all: false },
        ),
      ],
      podRows(),
    ),
  };
}

export const GRAFANA_DIR = join(import.meta.dirname, 'grafana');

if (import.meta.main) {
  for (const [file, d] of Object.entries(dashboards())) writeFileSync(join(GRAFANA_DIR, file), render(d));
}
