// Generates the Grafana dashboards in deploy/grafana/ (a node view and a pod view) from one readable table.
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

type Target = {
  expr: string;
  legend?: string;
  format?: 'time_series' | 'heatmap' | 'table';
  instant?: boolean;
};
interface PanelSpec {
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
interface Row {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

const RATE = '$__rate_interval';
const NODE = 'k8s_node_name=~"$node"';
const POD = 'k8s_namespace_name="$namespace", k8s_pod_name="$pod"';

const rate = (metric: string, sel: string, by: string) => `sum by (${by}) (rate(${metric}{${sel}}[${RATE}]))`;
const heat = (metric: string, sel: string) => `sum by (le) (rate(${metric}_bucket{${sel}}[${RATE}]))`;
const ts = (
  title: string,
  description: string,
  unit: string,
  targets: Target[],
  extra: Partial<PanelSpec> = {},
) => ({ title, description, type: 'timeseries', unit, targets, ...extra }) as PanelSpec;
const heatmap = (title: string, description: string, expr: string) =>
  ({
    title,
    description,
    type: 'heatmap',
    unit: 's',
    targets: [{ expr, legend: '{{le}}', format: 'heatmap' }],
  }) as PanelSpec;

/** DNS (probes/dns): latency quantiles, response codes, timeouts; per pod on the node view. */
function dnsRow(sel: string, byPod: boolean): Row {
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

function nodeRows(): Row[] {
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

function podRows(): Row[] {
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

const PROM = { type: 'prometheus', uid: `${'$'}{datasource}` };
const LOKI = { type: 'loki', uid: `${'$'}{loki}` };

function panels(rows: readonly Row[]): unknown[] {
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

function variable(name: string, label: string, query: string, opts: { all: boolean }): unknown {
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

function dashboard(uid: string, title: string, description: string, vars: unknown[], rows: Row[]): unknown {
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

export function render(d: unknown): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

if (import.meta.main) {
  for (const [file, d] of Object.entries(dashboards())) writeFileSync(join(GRAFANA_DIR, file), render(d));
}
