// The pod view's rows (deploy/grafana/podnet-pod.json): every panel of the pod dashboard as a table of
// titles, descriptions and PromQL. Its own file so the view reads as one table, apart from the Grafana JSON
// builder (grafana.ts) and the node view (node-rows.ts).
import type { Row } from './grafana.ts';
import { dnsRow, heat, heatmap, POD, RATE, rate, ts } from './rows.ts';

export function podRows(): Row[] {
  return [
    {
      title: 'Traffic',
      panels: [
        ts('Traffic', 'Bytes per second by interface and direction (k8s.pod.network.io).', 'Bps', [
          {
            expr: rate('k8s_pod_network_io_bytes_total', POD, 'network_interface_name, network_io_direction'),
            legend: '{{network_interface_name}} {{network_io_direction}}',
          },
        ]),
        ts('Packets', 'Packets per second by interface and direction.', 'pps', [
          {
            expr: rate(
              'podnet_network_packet_count_total',
              POD,
              'network_interface_name, network_io_direction',
            ),
            legend: '{{network_interface_name}} {{network_io_direction}}',
          },
        ]),
        ts(
          'Interface drops and errors',
          'Packets dropped by the pod interfaces and interface errors.',
          'pps',
          [
            {
              expr: rate(
                'podnet_network_packet_dropped_total',
                POD,
                'network_interface_name, network_io_direction',
              ),
              legend: 'dropped {{network_interface_name}} {{network_io_direction}}',
            },
            {
              expr: rate('k8s_pod_network_errors_total', POD, 'network_interface_name, network_io_direction'),
              legend: 'errors {{network_interface_name}} {{network_io_direction}}',
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
          'Packets of this pod freed by the kernel with a drop reason (error.type), by transport.',
          'pps',
          [
            {
              expr: rate('podnet_kernel_drop_count_total', POD, 'error_type, network_transport'),
              legend: '{{error_type}} {{network_transport}}',
            },
          ],
          { stack: true },
        ),
        ts(
          'TCP resets by kind',
          'RST segments sent (transmit) and received (receive), by kind.',
          'short',
          [
            {
              expr: rate('podnet_tcp_reset_count_total', POD, 'podnet_tcp_reset_kind, network_io_direction'),
              legend: '{{podnet_tcp_reset_kind}} {{network_io_direction}}',
            },
          ],
          { stack: true },
        ),
        ts(
          'TCP retransmits',
          'Retransmitted segments by kind, and the retransmit ratio (RetransSegs / OutSegs).',
          'short',
          [
            {
              expr: rate('podnet_tcp_retransmit_count_total', POD, 'podnet_tcp_retransmit_kind'),
              legend: '{{podnet_tcp_retransmit_kind}}',
            },
            {
              expr: `sum(rate(podnet_snmp_tcp_retrans_segs_total{${POD}}[${RATE}])) / sum(rate(podnet_snmp_tcp_out_segs_total{${POD}}[${RATE}]))`,
              legend: 'retransmit ratio',
            },
          ],
        ),
        ts(
          'TCP errors (MIB)',
          'Resets sent, failed connection attempts, resets of established connections, segments received in error.',
          'short',
          [
            { expr: `sum(rate(podnet_snmp_tcp_out_rsts_total{${POD}}[${RATE}]))`, legend: 'OutRsts' },
            {
              expr: `sum(rate(podnet_snmp_tcp_attempt_fails_total{${POD}}[${RATE}]))`,
              legend: 'AttemptFails',
            },
            { expr: `sum(rate(podnet_snmp_tcp_estab_resets_total{${POD}}[${RATE}]))`, legend: 'EstabResets' },
            { expr: `sum(rate(podnet_snmp_tcp_in_errs_total{${POD}}[${RATE}]))`, legend: 'InErrs' },
          ],
        ),
        ts(
          'UDP receive buffer errors and overflows',
          'UDP datagrams dropped for a full receive buffer (MIB RcvbufErrors and the eBPF overflow counter by reason).',
          'pps',
          [
            {
              expr: `sum(rate(podnet_snmp_udp_rcvbuf_errors_total{${POD}}[${RATE}]))`,
              legend: 'RcvbufErrors',
            },
            {
              expr: rate('podnet_udp_overflow_count_total', POD, 'podnet_udp_overflow_reason'),
              legend: 'overflow {{podnet_udp_overflow_reason}}',
            },
          ],
        ),
      ],
    },
    {
      title: 'TCP health',
      panels: [
        ts(
          'Connections by state',
          'TCP sockets of the pod per state (sock_diag).',
          'short',
          [
            {
              expr: `sum by (network_connection_state) (podnet_tcp_connections{${POD}})`,
              legend: '{{network_connection_state}}',
            },
          ],
          { stack: true },
        ),
        ts('Socket queues', 'Bytes waiting in TCP receive and send queues of the pod.', 'bytes', [
          { expr: `sum(podnet_tcp_socket_receive_queue_bytes{${POD}})`, legend: 'receive queue' },
          { expr: `sum(podnet_tcp_socket_send_queue_bytes{${POD}})`, legend: 'send queue' },
        ]),
        ts('Socket memory', 'Receive and send buffer memory allocated to the pod TCP sockets.', 'bytes', [
          { expr: `sum(podnet_tcp_socket_memory_rmem_alloc_bytes{${POD}})`, legend: 'rmem_alloc' },
          { expr: `sum(podnet_tcp_socket_memory_wmem_queued_bytes{${POD}})`, legend: 'wmem_queued' },
        ]),
        ts(
          'Listen queues',
          'Accept-queue fill of the fullest listening socket, and listen drops.',
          'percentunit',
          [{ expr: `max(podnet_tcp_listen_queue_fill_max_ratio{${POD}})`, legend: 'max fill ratio' }],
        ),
        heatmap(
          'RTT of current connections',
          'Smoothed RTT of the TCP sockets alive at each collection (a snapshot distribution, not a rate).',
          `sum by (le) (podnet_tcp_rtt_seconds_bucket{${POD}})`,
        ),
      ],
    },
    {
      title: 'Latency',
      panels: [
        heatmap(
          'Socket read wait',
          'Time a read waited for data on the pod sockets (podnet.socket.read.wait).',
          heat('podnet_socket_read_wait_seconds', POD),
        ),
        heatmap(
          'Socket write wait',
          'Time a write waited for buffer space on the pod sockets (podnet.socket.write.wait).',
          heat('podnet_socket_write_wait_seconds', POD),
        ),
        heatmap(
          'Kernel receive latency',
          'Time the pod packets spend in the kernel receive path.',
          heat('podnet_kernel_rx_duration_seconds', POD),
        ),
        heatmap(
          'Kernel transmit latency',
          'Time the pod packets spend in the kernel transmit path.',
          heat('podnet_kernel_tx_duration_seconds', POD),
        ),
      ],
    },
    dnsRow(POD, false),
    {
      title: 'Events',
      panels: [
        {
          title: 'Anomaly events of the pod',
          description:
            'podnet events (OTel log records) of this pod in Loki, with the 5-tuple, reason and kernel stack when enabled.',
          type: 'logs',
          targets: [],
          logs: '{service_name="podnet", k8s_namespace_name="$namespace", k8s_pod_name="$pod"}',
          w: 24,
          h: 10,
        },
      ],
    },
  ];
}
