// Prometheus names (receiver/otel/prometheus-names.ts) against the expectations of the reference
// implementation, prometheus/otlptranslator's metric_namer_test.go (UTF8Allowed=false,
// WithMetricSuffixes=true: the `UnderscoreEscapingWithSuffixes` strategy Prometheus 3 and Mimir use for
// OTLP), and the names the contract gives (docs/reference.md, DESIGN naming).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type PrometheusMetricType, prometheusName } from '../../receiver/otel/prometheus-names.ts';

const CASES: Array<[name: string, unit: string, type: PrometheusMetricType, want: string]> = [
  // otlptranslator metric_namer_test.go, WithMetricSuffixes=true, UTF8Allowed=false, no namespace
  ['requests', '', 'counter', 'requests_total'],
  ['cpu_usage', '1', 'gauge', 'cpu_usage_ratio'],
  ['items', '1', 'counter', 'items_total'],
  ['response_time', 'ms', 'gauge', 'response_time_milliseconds'],
  ['memory_usage', 'By', 'gauge', 'memory_usage_bytes'],
  ['requests', '1/s', 'gauge', 'requests_per_second'],
  ['throughput', 'By/s', 'gauge', 'throughput_bytes_per_second'],
  ['custom_metric', 'custom_unit', 'gauge', 'custom_metric_custom_unit'],
  ['custom_metric', '{custom}', 'gauge', 'custom_metric'],
  ['custom_metric', 'By/{custom}', 'gauge', 'custom_metric_bytes'],
  ['requests_total', '', 'counter', 'requests_total'],
  ['cpu_usage_ratio', '1', 'gauge', 'cpu_usage_ratio'],
  ['response_time_seconds', 's', 'gauge', 'response_time_seconds'],
  ['requests', '1/s', 'counter', 'requests_per_second_total'],
  [
    'metric__with__multiple__underscores',
    'unit__multiple__underscores',
    'gauge',
    'metric_with_multiple_underscores_unit_multiple_underscores',
  ],
  ['custom_metric', 'unit@with#special/chars', 'gauge', 'custom_metric_unit_with_special_per_chars'],
  ['@#$%', '', 'gauge', ''],
  ['request_duration', 's', 'histogram', 'request_duration_seconds'],
  ['active_connections', '', 'updowncounter', 'active_connections'],
  ['uptime', 'd', 'gauge', 'uptime_days'],
  ['duration', 'h', 'gauge', 'duration_hours'],
  ['123metric', '', 'gauge', '_123metric'],
  // podnet's contract (DESIGN.md naming, issue 13)
  ['k8s.pod.network.io', 'By', 'counter', 'k8s_pod_network_io_bytes_total'],
  ['podnet.tcp.rtt', 's', 'histogram', 'podnet_tcp_rtt_seconds'],
  ['podnet.dns.request.duration', 's', 'histogram', 'podnet_dns_request_duration_seconds'],
  ['podnet.kernel.drop.count', '{packet}', 'counter', 'podnet_kernel_drop_count_total'],
  // `total` anywhere moves to the end; `ratio` likewise for gauges of unit 1
  ['podnet.odd-name.total', '', 'counter', 'podnet_odd_name_total'],
  ['podnet.total.x', '', 'counter', 'podnet_x_total'],
  ['podnet.tcp.listen.queue.fill_ratio.max', '1', 'gauge', 'podnet_tcp_listen_queue_fill_max_ratio'],
];

test('prometheusName: the otlptranslator expectations and the contract names', () => {
  for (const [name, unit, type, want] of CASES)
    assert.equal(prometheusName(name, unit, type), want, `${name} [${unit}] ${type}`);
});
