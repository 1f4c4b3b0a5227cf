// Generates podnet's alert rules from one readable table, in the two forms Prometheus setups load:
//
//   node deploy/alerts.ts            rewrite both files
//   node deploy/alerts.ts --check    exit 1 when a committed file differs from what this script generates
//
// - deploy/prometheus/podnet-alerts.yaml: a rule file (`rule_files:` of a plain Prometheus, promtool);
// - deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml: the same groups as a
//   PrometheusRule for the Prometheus Operator.
//
// Each rule's runbook (what it means, what to look at, what usually fixes it) is the section of
// docs/alerts.md named after the alert; test/deploy/alerts.test.ts checks that every alert has one, runs
// `promtool test rules` on test/deploy/alerts/*.yaml and fires the rules in a real Prometheus that scrapes
// a real podnet while a fault is injected.
//
// Metric names are the Prometheus names of the probe declarations (docs/reference.md). Per-pod alerts
// select `podnet_entity_kind="pod"` and keep the pod keys, so one alert names one pod.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface AlertSpec {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly severity: 'warning' | 'critical' | 'info';
  readonly summary: string;
  readonly description: string;
}

const POD = 'podnet_entity_kind="pod"';
const BY_POD = 'k8s_node_name, k8s_namespace_name, k8s_pod_name';
const rate = (metric: string, sel: string, by: string, window = '5m') =>
  `sum by (${by}) (rate(${metric}{${sel}}[${window}]))`;

export const ALERT_GROUPS: ReadonlyArray<{ readonly name: string; readonly rules: readonly AlertSpec[] }> = [
  {
    name: 'podnet.pod-network',
    rules: [
      {
        alert: 'PodnetPodPacketDrops',
        // Drops happen on healthy nodes (a UDP datagram to a closed port is NO_SOCKET); a pod that loses more
        // than one packet per second for ten minutes for one reason is not healthy.
        expr: `${rate('podnet_kernel_drop_count_total', POD, `${BY_POD}, error_type`)} > 1`,
        for: '10m',
        severity: 'warning',
        summary:
          'Pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} drops packets ({{ $labels.error_type }})',
        description:
          'The kernel dropped {{ $value | humanize }} packets/s of pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} on node {{ $labels.k8s_node_name }} for drop reason {{ $labels.error_type }} over the last 10 minutes.',
      },
      {
        alert: 'PodnetPodTcpResets',
        expr: `${rate('podnet_tcp_reset_count_total', POD, `${BY_POD}, podnet_tcp_reset_kind`)} > 5`,
        for: '10m',
        severity: 'warning',
        summary:
          'Pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} sends or receives TCP resets',
        description:
          '{{ $value | humanize }} TCP resets/s of kind {{ $labels.podnet_tcp_reset_kind }} in pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} on node {{ $labels.k8s_node_name }}.',
      },
      {
        alert: 'PodnetPodTcpRetransmits',
        // Ratio of retransmitted to sent segments; the floor of 10 segments/s keeps an idle pod whose one
        // keepalive was retransmitted from alerting.
        expr: `(${rate('podnet_tcp_retransmit_count_total', POD, BY_POD)} / ${rate('podnet_snmp_tcp_out_segs_total', POD, BY_POD)} > 0.05) and ${rate('podnet_snmp_tcp_out_segs_total', POD, BY_POD)} > 10`,
        for: '10m',
        severity: 'warning',
        summary:
          'Pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} retransmits over 5 % of its TCP segments',
        description:
          '{{ $value | humanizePercentage }} of the TCP segments pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} sent on node {{ $labels.k8s_node_name }} were retransmissions.',
      },
      {
        alert: 'PodnetPodListenQueueOverflow',
        expr: `${rate('podnet_snmp_tcp_ext_listen_overflows_total', POD, BY_POD)} > 0`,
        for: '5m',
        severity: 'warning',
        summary:
          'Pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} drops connections: listen queue full',
        description:
          'A listening socket of pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} on node {{ $labels.k8s_node_name }} overflowed its accept queue ({{ $value | humanize }}/s): clients see SYN timeouts or resets.',
      },
      {
        alert: 'PodnetPodSocketReceiveBufferOverflow',
        expr: `${rate('podnet_udp_overflow_count_total', POD, `${BY_POD}, podnet_udp_overflow_reason`)} > 0`,
        for: '5m',
        severity: 'warning',
        summary:
          'Pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} loses datagrams: socket buffer full',
        description:
          'UDP sockets of pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} on node {{ $labels.k8s_node_name }} could not queue {{ $value | humanize }} datagrams/s ({{ $labels.podnet_udp_overflow_reason }}).',
      },
    ],
  },
  {
    name: 'podnet.dns',
    rules: [
      {
        alert: 'PodnetPodDnsTimeouts',
        // Every timeout is a lookup the application waited the resolver's full timeout for (5 s with glibc).
        expr: `${rate('podnet_dns_timeout_count_total', POD, BY_POD)} > 0`,
        for: '5m',
        severity: 'warning',
        summary: 'DNS queries of pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} time out',
        description:
          'DNS queries of pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} on node {{ $labels.k8s_node_name }} time out ({{ $value | humanize }}/s): each is a multi-second stall. The podnet.dns.timeout events name the query, the server and, for the conntrack race, the cause.',
      },
      {
        alert: 'PodnetPodDnsFailures',
        // SERVFAIL/REFUSED over all answers; the floor of 0.1 answers/s keeps one failed lookup of an idle
        // pod from alerting.
        expr: `(${rate('podnet_dns_response_count_total', `${POD}, podnet_dns_response_code=~"SERVFAIL|REFUSED"`, BY_POD)} / ${rate('podnet_dns_response_count_total', POD, BY_POD)} > 0.05) and ${rate('podnet_dns_response_count_total', POD, BY_POD)} > 0.1`,
        for: '10m',
        severity: 'warning',
        summary:
          'DNS lookups of pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} fail (SERVFAIL/REFUSED)',
        description:
          '{{ $value | humanizePercentage }} of the DNS answers pod {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} got on node {{ $labels.k8s_node_name }} were SERVFAIL or REFUSED.',
      },
    ],
  },
  {
    name: 'podnet.conntrack',
    rules: [
      {
        alert: 'PodnetConntrackTableNearFull',
        // nf_conntrack_max is one host-wide number, but the kernel compares each netns' own entry count with
        // it (a pod can fill it alone), so the fill level is per entity.
        expr: 'max by (k8s_node_name, podnet_entity_kind, k8s_namespace_name, k8s_pod_name) (podnet_conntrack_entries / podnet_conntrack_entry_limit) > 0.9',
        for: '5m',
        severity: 'critical',
        summary:
          'Conntrack table of {{ $labels.podnet_entity_kind }} {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} on node {{ $labels.k8s_node_name }} is over 90 % full',
        description:
          'The conntrack entries of {{ $labels.podnet_entity_kind }} {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} on node {{ $labels.k8s_node_name }} reach {{ $value | humanizePercentage }} of nf_conntrack_max; at 100 % new connections are dropped.',
      },
      {
        alert: 'PodnetConntrackInsertFailures',
        expr: `sum by (k8s_node_name, podnet_entity_kind, k8s_namespace_name, k8s_pod_name) (rate(podnet_conntrack_insert_failed_total[5m])) > 0`,
        for: '5m',
        severity: 'warning',
        summary: 'Conntrack insertions fail on node {{ $labels.k8s_node_name }}',
        description:
          '{{ $value | humanize }} conntrack insertions/s failed in {{ $labels.podnet_entity_kind }} {{ $labels.k8s_namespace_name }}/{{ $labels.k8s_pod_name }} on node {{ $labels.k8s_node_name }}: packets are dropped (typically the parallel A/AAAA DNS race).',
      },
    ],
  },
  {
    name: 'podnet.self',
    rules: [
      {
        alert: 'PodnetEventsLost',
        expr: 'sum by (k8s_node_name, podnet_event_outcome) (rate(podnet_event_count_total{podnet_event_outcome=~"lost.*"}[5m])) > 0 or sum by (k8s_node_name, podnet_probe_name) (rate(podnet_ebpf_events_lost_total[5m])) > 0',
        for: '10m',
        severity: 'warning',
        summary: 'podnet on node {{ $labels.k8s_node_name }} loses anomaly events',
        description:
          'podnet on node {{ $labels.k8s_node_name }} lost {{ $value | humanize }} events/s ({{ $labels.podnet_event_outcome }}{{ $labels.podnet_probe_name }}). Counters stay exact; only event context is missing.',
      },
      {
        alert: 'PodnetCollectionFailing',
        expr: 'sum by (k8s_node_name, podnet_probe_name) (rate(podnet_probe_collection_errors_total[5m])) > 0',
        for: '15m',
        severity: 'warning',
        summary: 'podnet probe {{ $labels.podnet_probe_name }} fails on node {{ $labels.k8s_node_name }}',
        description:
          'Collections of probe {{ $labels.podnet_probe_name }} on node {{ $labels.k8s_node_name }} keep failing; its series are stale. /status on that agent names the error.',
      },
      {
        alert: 'PodnetExportFailing',
        expr: 'sum by (k8s_node_name, podnet_export_signal) (rate(podnet_export_failure_count_total[5m])) > 0',
        for: '15m',
        severity: 'warning',
        summary:
          'podnet on node {{ $labels.k8s_node_name }} cannot export {{ $labels.podnet_export_signal }} over OTLP',
        description:
          'OTLP export requests of {{ $labels.podnet_export_signal }} from node {{ $labels.k8s_node_name }} fail ({{ $value | humanize }}/s); data beyond the bounded queue is dropped and counted.',
      },
    ],
  },
];

const ROOT = join(import.meta.dirname, '..');
export const RULE_FILE = join(ROOT, 'deploy', 'prometheus', 'podnet-alerts.yaml');
export const PROMETHEUS_RULE = join(
  ROOT,
  'deploy',
  'kubernetes',
  'components',
  'prometheus-operator',
  'prometheusrule.yaml',
);

function groups(): unknown[] {
  return ALERT_GROUPS.map((g) => ({
    name: g.name,
    rules: g.rules.map((r) => ({
      alert: r.alert,
      expr: r.expr,
      for: r.for,
      labels: { severity: r.severity },
      annotations: {
        summary: r.summary,
        description: r.description,
        runbook: `docs/alerts.md#${r.alert.toLowerCase()}`,
      },
    })),
  }));
}

const HEADER =
  '# Generated by deploy/alerts.ts from its table; edit there and run `node deploy/alerts.ts`.\n';

export function renderRuleFile(): string {
  return HEADER + stringify({ groups: groups() }, { lineWidth: 0 });
}

export function renderPrometheusRule(): string {
  const doc = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'podnet', labels: { 'app.kubernetes.io/name': 'podnet' } },
    spec: { groups: groups() },
  };
  return HEADER + stringify(doc, { lineWidth: 0 });
}

if (import.meta.main) {
  const files: Array<[string, string]> = [
    [RULE_FILE, renderRuleFile()],
    [PROMETHEUS_RULE, renderPrometheusRule()],
  ];
  if (process.argv.includes('--check')) {
    const stale = files.filter(([f, text]) => {
      try {
        return readFileSync(f, 'utf8') !== text;
      } catch {
        return true;
      }
    });
    for (const [f] of stale) console.error(`${f} is stale: run node deploy/alerts.ts`);
    process.exit(stale.length ? 1 : 0);
  }
  for (const [f, text] of files) writeFileSync(f, text);
}
