// The node view's rows (deploy/grafana/podnet-node.json): every panel of the node dashboard as a table of
// titles, descriptions and PromQL. Its own file so the view reads as one table, apart from the Grafana JSON
// builder (grafana.ts) and the pod view (pod-rows.ts).
import type { Row } from './grafana.ts';
import { dnsRow, heat, heatmap, NODE, RATE, rate, ts } from './rows.ts';

export function nodeRows(): Row[] {
  const pods = `${NODE}, podnet_entity_kind="pod"`;
  return [
    {
      title: 'Traffic',
      panels: [
        ts(
          'Pod traffic by pod',
          'Bytes per second through the interfaces of each pod on the node (k8s.pod.network.io).',
          'Bps',
          [
            {
              expr: rate(
                'k8s_pod_network_io_bytes_total',
                pods,
                'k8s_namespace_name, k8s_pod_name, network_io_direction',
              ),
              legend: '{{k8s_namespace_name}}/{{k8s_pod_name}} {{network_io_direction}}',
            },
          ],
        ),
        ts(
          'Traffic by entity kind',
          'Bytes per second of pods and named/other netns (podnet.entity.kind; k8s.pod.network.io), and of the node itself (the host netns; k8s.node.network.io).',
          'Bps',
          [
            {
              expr: rate('k8s_pod_network_io_bytes_total', NODE, 'podnet_entity_kind, network_io_direction'),
              legend: '{{podnet_entity_kind}} {{network_io_direction}}',
            },
            {
              expr: rate('k8s_node_network_io_bytes_total', NODE, 'network_io_direction'),
              legend: 'node {{network_io_direction}}',
            },
          ],
        ),
        ts(
          'Interface drops and errors',
          'Packets dropped by the interfaces (podnet.network.packet.dropped) and interface errors (k8s.pod.network.errors).',
          'pps',
          [
            {
              expr: rate(
                'podnet_network_packet_dropped_total',
                NODE,
                'k8s_namespace_name, k8s_pod_name, network_io_direction',
              ),
              legend: 'dropped {{k8s_namespace_name}}/{{k8s_pod_name}} {{network_io_direction}}',
            },
            {
              expr: rate(
                'k8s_pod_network_errors_total',
                NODE,
                'k8s_namespace_name, k8s_pod_name, network_io_direction',
              ),
              legend: 'errors {{k8s_namespace_name}}/{{k8s_pod_name}} {{network_io_direction}}',
            },
          ],
        ),
      ],
    },
    {
      title: 'Drops, resets, retransmits',
      panels: [
        ts(
          'Kernel drops by reason',
          'Packets freed by the kernel with a drop reason (skb:kfree_skb), by reason name from the kernel BTF (error.type).',
          'pps',
          [{ expr: rate('podnet_kernel_drop_count_total', NODE, 'error_type'), legend: '{{error_type}}' }],
          { stack: true },
        ),
        ts(
          'TCP resets by kind',
          'RST segments sent and received, by kind (nosock, process, active, receive).',
          'short',
          [
            {
              expr: rate('podnet_tcp_reset_count_total', NODE, 'podnet_tcp_reset_kind, network_io_direction'),
              legend: '{{podnet_tcp_reset_kind}} {{network_io_direction}}',
            },
          ],
          { stack: true },
        ),
        ts('TCP retransmits', 'Retransmitted segments by kind, and retransmits that failed.', 'short', [
          {
            expr: rate('podnet_tcp_retransmit_count_total', NODE, 'podnet_tcp_retransmit_kind'),
            legend: '{{podnet_tcp_retransmit_kind}}',
          },
          { expr: `sum(rate(podnet_tcp_retransmit_failed_count_total{${NODE}}[${RATE}]))`, legend: 'failed' },
        ]),
        ts('Top pods by kernel drops', 'The pods with the most kernel drops.', 'pps', [
          {
            expr: `topk(10, ${rate('podnet_kernel_drop_count_total', pods, 'k8s_namespace_name, k8s_pod_name')})`,
            legend: '{{k8s_namespace_name}}/{{k8s_pod_name}}',
          },
        ]),
        ts(
          'UDP and socket overflows',
          'Datagrams dropped because a socket receive buffer was full, by reason.',
          'pps',
          [
            {
              expr: rate('podnet_udp_overflow_count_total', NODE, 'podnet_udp_overflow_reason'),
              legend: '{{podnet_udp_overflow_reason}}',
            },
            {
              expr: `sum(rate(podnet_socket_receive_queue_overflow_count_total{${NODE}}[${RATE}]))`,
              legend: 'receive queue overflow',
            },
          ],
        ),
      ],
    },
    {
      title: 'TCP health',
      panels: [
        ts(
          'TCP connections by state',
          'Sockets per TCP state over all entities on the node (sock_diag).',
          'short',
          [
            {
              expr: `sum by (network_connection_state) (podnet_tcp_connections{${NODE}})`,
              legend: '{{network_connection_state}}',
            },
          ],
          { stack: true },
        ),
        ts(
          'Listen queue overflows and drops',
          'SYNs or completed connections dropped because an accept queue was full (TcpExt ListenOverflows / ListenDrops).',
          'short',
          [
            {
              expr: `sum(rate(podnet_snmp_tcp_ext_listen_overflows_total{${NODE}}[${RATE}]))`,
              legend: 'overflows',
            },
            { expr: `sum(rate(podnet_snmp_tcp_ext_listen_drops_total{${NODE}}[${RATE}]))`, legend: 'drops' },
          ],
        ),
        ts(
          'Fullest listen queue',
          'The highest accept-queue fill ratio of any listening socket, per pod.',
          'percentunit',
          [
            {
              expr: `max by (k8s_namespace_name, k8s_pod_name) (podnet_tcp_listen_queue_fill_max_ratio{${NODE}})`,
              legend: '{{k8s_namespace_name}}/{{k8s_pod_name}}',
            },
          ],
        ),
        ts('Conntrack', 'Conntrack entries against the table limit, and failed inserts / drops.', 'short', [
          { expr: `sum(podnet_conntrack_entries{${NODE}})`, legend: 'entries' },
          { expr: `max(podnet_conntrack_entry_limit{${NODE}})`, legend: 'limit' },
          {
            expr: `sum(rate(podnet_conntrack_insert_failed_total{${NODE}}[${RATE}]))`,
            legend: 'insert failed /s',
          },
          { expr: `sum(rate(podnet_conntrack_drop_total{${NODE}}[${RATE}]))`, legend: 'drop /s' },
        ]),
      ],
    },
    {
      title: 'Kernel latency',
      panels: [
        heatmap(
          'NET_RX softirq delay',
          'Time from raising NET_RX to running it (podnet.softirq.delay).',
          heat('podnet_softirq_delay_seconds', `${NODE}, podnet_softirq_vector="net_rx"`),
        ),
        heatmap(
          'Softirq duration',
          'Time spent in network softirqs (podnet.softirq.duration).',
          heat('podnet_softirq_duration_seconds', NODE),
        ),
        heatmap(
          'Kernel receive latency',
          'Time a packet spends in the kernel receive path (podnet.kernel.rx.duration).',
          heat('podnet_kernel_rx_duration_seconds', NODE),
        ),
        heatmap(
          'Kernel transmit latency',
          'Time a packet spends in the kernel transmit path (podnet.kernel.tx.duration).',
          heat('podnet_kernel_tx_duration_seconds', NODE),
        ),
        ts(
          'Softnet drops and squeezes',
          'Per CPU: packets dropped from the backlog, and NET_RX runs cut short by budget (time_squeeze).',
          'short',
          [
            {
              expr: rate('podnet_softnet_dropped_total', NODE, 'cpu_logical_number'),
              legend: 'dropped cpu {{cpu_logical_number}}',
            },
            {
              expr: rate('podnet_softnet_time_squeeze_total', NODE, 'cpu_logical_number'),
              legend: 'squeeze cpu {{cpu_logical_number}}',
            },
          ],
        ),
      ],
    },
    dnsRow(pods, true),
    {
      title: 'podnet itself',
      panels: [
        ts(
          'eBPF events lost and suppressed',
          'Events lost in the kernel (ring full) and suppressed by the per-netns rate limit; counters are exact either way.',
          'short',
          [
            {
              expr: rate('podnet_ebpf_events_lost_total', NODE, 'podnet_probe_name'),
              legend: 'lost {{podnet_probe_name}}',
            },
            {
              expr: rate('podnet_ebpf_events_suppressed_total', NODE, 'podnet_probe_name'),
              legend: 'suppressed {{podnet_probe_name}}',
            },
          ],
        ),
      ],
    },
    {
      title: 'Events',
      panels: [
        {
          title: 'Anomaly events on the node',
          description:
            'podnet events (OTel log records) in Loki: drops, resets, retransmits, overflows, slow sockets and softirqs.',
          type: 'logs',
          targets: [],
          logs: '{service_name="podnet"} | k8s_node_name=~"$node"',
          w: 24,
          h: 10,
        },
      ],
    },
  ];
}
