// The dashboards against a real Prometheus that scraped a real podnet: real pods (private containerd over
// CRI, busybox containers) exchange TCP traffic, hold a long-lived connection, and connect to a closed port
// (the server pod drops the SYNs, NO_SOCKET, and answers RST, counted as the server pod's nosock resets); podnet (`node receiver/cli/main.ts run`) exports /metrics; Debian's
// Prometheus runs the shipped scrape job (deploy/prometheus/scrape-podnet.yaml, its relabeling adds
// k8s_node_name) and scrapes it every second; then every query of every dashboard panel runs with the dashboard
// variables set to the server pod. podnet runs with the probes of deploy/kubernetes/base/configmap.yaml.
//
// What must hold: every query executes (Prometheus's engine accepts it), and every query whose metrics the
// registered probes export in this run returns data. Panels whose metrics need an event this scenario
// does not cause (UDP overflow, failed retransmits) are listed as diagnostics, not failures. The data
// checks follow the probe registry: with no probe registered only execution is checked.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { probeSpecs } from '../../probes/registry.ts';
import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { freePort } from '../env/prometheus.ts';
import { promSeries } from './declarations.ts';
import { promQueries, queryParts } from './promql.ts';
import { ShippedPrometheus } from './shipped-prometheus.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const BOARDS = ['podnet-node.json', 'podnet-pod.json'].map((f) => ({
  file: f,
  // biome-ignore lint/suspicious/noExplicitAny: dashboard JSON
  json: JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', f), 'utf8')) as any,
}));

let env: CriEnv;
let server: TestPod;
let podnet: ChildProcess;
let podnetLog = '';
let prom: ShippedPrometheus;
const NODE_NAME = 'e2e-node';
let dir: string;
let podnetUrl: string;

async function untilOk(url: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not answering after ${timeoutMs} ms\n${podnetLog.slice(-4000)}`);
}

before(async () => {
  env = await startCriEnv();
  server = await env.runPod({
    name: 'server',
    namespace: 'shop',
    labels: { app: 'server' },
    containers: [
      { name: 'http', command: ['httpd', '-f', '-p', '8080', '-h', '/'] },
      { name: 'hold', command: ['nc', '-l', '-p', '8081'] },
    ],
  });
  await env.runPod({
    name: 'client',
    namespace: 'shop',
    labels: { app: 'client' },
    containers: [
      // Requests, a connection that stays open (RTT, queues), and SYNs to a closed port (RST, NO_SOCKET drop).
      // No `wget -T`: the image's busybox 1.35 wget segfaults with it, before connecting.
      {
        name: 'load',
        command: [
          'sh',
          '-c',
          `while true; do wget -q -O /dev/null http://${server.ip}:8080/ 2>/dev/null; wget -q -O /dev/null http://${server.ip}:9/ 2>/dev/null; sleep 0.2; done`,
        ],
      },
      { name: 'hold', command: ['sh', '-c', `while true; do echo x; sleep 1; done | nc ${server.ip} 8081`] },
    ],
  });
  dir = mkdtempSync(join(tmpdir(), `pnd${process.pid}-e2e-`));
  const port = await freePort();
  podnetUrl = `http://127.0.0.1:${port}`;
  // The shipped ConfigMap's config (its probes, exporters, labels), with this test's server, CRI and interval.
  const cm = parseAllDocuments(
    readFileSync(join(ROOT, 'deploy', 'kubernetes', 'base', 'configmap.yaml'), 'utf8'),
  )[0]!.toJS();
  const config = parse(cm.data['config.yaml']) as Record<string, Record<string, unknown>>;
  config['collection_interval'] = '1s' as never;
  config['node_name'] = 'e2e-node' as never;
  config['server'] = { address: `127.0.0.1:${port}` };
  config['pods'] = { ...config['pods'], cri_endpoint: env.endpoint };
  writeFileSync(join(dir, 'config.yaml'), stringify(config));
  podnet = spawn(
    NODE,
    [join(ROOT, 'receiver', 'cli', 'main.ts'), 'run', '--config', join(dir, 'config.yaml')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env['PATH'] },
    },
  );
  podnet.stderr!.on('data', (d: Buffer) => {
    podnetLog = (podnetLog + d.toString()).slice(-50_000);
  });
  await untilOk(`${podnetUrl}/healthz`, 60_000);
  prom = await ShippedPrometheus.start(
    [{ target: `127.0.0.1:${port}`, nodeName: NODE_NAME, podName: 'podnet-e2e' }],
    '1s',
  );
});

after(async () => {
  if (podnet && podnet.exitCode === null) {
    const exited = new Promise((r) => podnet.once('exit', r));
    podnet.kill('SIGTERM');
    await exited;
  }
  await prom?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  const report = await env?.teardown();
  if (report) assert.deepEqual(report.leftovers, [], 'CRI env teardown left things behind');
});

function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '30s')
    .replaceAll('$node', NODE_NAME)
    .replaceAll('$namespace', server.namespace)
    .replaceAll('$pod', server.name);
}

test('every dashboard query runs on Prometheus; those over exported metrics return data', async (t) => {
  // Scrapes happen every second; wait until podnet's pod series of the client pod are in Prometheus
  // (or, with no probe registered, for a few scrapes of podnet itself).
  // The shipped scrape job's relabeling: the node name and the pod name are on every series.
  const up = await prom.waitFor('up{job="podnet"}', (r) => r.some((s) => s.value === 1), 30_000);
  assert.deepEqual(
    up.map((s) => [s.metric['k8s_node_name'], s.metric['instance']]),
    [[NODE_NAME, 'podnet-e2e']],
  );
  await new Promise((r) => setTimeout(r, 12_000));

  const registered = promSeries(probeSpecs);
  const names = async (sel: string) =>
    new Set((await prom.query(`count by (__name__) ({${sel}})`)).map((s) => s.metric['__name__']!));
  // Metrics with series at all (node view), and with series of the pod the pod view shows.
  const exported = { node: await names('job="podnet"'), pod: await names(`k8s_pod_uid="${server.uid}"`) };
  const status = (await (await fetch(`${podnetUrl}/status`)).json()) as {
    probes?: Array<{ name: string; state: string; reason?: string | null }>;
  };
  t.diagnostic(
    `registered probes: ${probeSpecs.length}; metrics exported: ${exported.node.size}, of the pod: ${exported.pod.size}`,
  );
  for (const p of status.probes ?? [])
    t.diagnostic(`probe ${p.name}: ${p.state}${p.reason ? ` (${p.reason})` : ''}`);

  const problems: string[] = [];
  let checked = 0;
  let withData = 0;
  for (const b of BOARDS) {
    for (const q of promQueries(b.json)) {
      const expr = substitute(q.expr);
      let result: Awaited<ReturnType<ShippedPrometheus['query']>>;
      try {
        result = await prom.query(expr);
      } catch (err) {
        problems.push(`${b.file} / ${q.panel}: Prometheus rejected ${expr}: ${(err as Error).message}`);
        continue;
      }
      const metrics = queryParts(q.expr).selectors.map((s) => s.metric);
      const here = b.file === 'podnet-pod.json' ? exported.pod : exported.node;
      const mustHaveData = metrics.every((m) => registered.has(m) && here.has(m));
      if (result.length > 0) withData++;
      if (!mustHaveData) {
        t.diagnostic(
          `${b.file} / ${q.panel}: ${result.length} series (not all of ${metrics.join(', ')} exported here)`,
        );
        continue;
      }
      checked++;
      if (result.length === 0) problems.push(`${b.file} / ${q.panel}: no data for ${expr}`);
    }
  }
  t.diagnostic(`queries with data: ${withData}; queries required to have data: ${checked}`);
  assert.deepEqual(problems, [], podnetLog.slice(-3000));
  if (probeSpecs.length > 0) {
    // The panels the issue names must show data for this scenario once their probes run.
    assert.ok(checked > 0, 'probes are registered but no dashboard query could be checked');
    // The scenario makes these panels' data: pod traffic, its TCP connections, the SYNs to a closed port
    // that the server pod's kernel drops (NO_SOCKET) and answers with RST, reads that wait, and softirqs.
    assert.ok(exported.node.has('podnet_softirq_delay_seconds_bucket'), 'no softirq delay histogram');
    for (const m of [
      'podnet_tcp_reset_count_total',
      'k8s_pod_network_io_bytes_total',
      'podnet_tcp_connections',
      'podnet_kernel_drop_count_total',
      'podnet_socket_read_wait_seconds_bucket',
    ])
      if (registered.has(m) && !exported.pod.has(m)) {
        const series = (await prom.query(m)).map((x) => JSON.stringify(x.metric));
        assert.fail(
          `${m} has no series of the server pod (${server.uid}); its series: ${series.join('\n') || 'none'}`,
        );
      }
    // The SYNs to the closed port are answered by the server pod's kernel (no socket): those RSTs are the
    // server pod's, not the host's and not the client's, on the pod dashboard's "TCP resets by kind" panel.
    // (The host's own series are not checked: other processes on this machine reset connections too.)
    if (registered.has('podnet_tcp_reset_count_total')) {
      const nosock = await prom.query(
        `sum by (k8s_pod_name, podnet_entity_kind) (podnet_tcp_reset_count_total{podnet_entity_kind!~"host|unattributed", podnet_tcp_reset_kind="nosock", network_io_direction="transmit"} > 0)`,
      );
      assert.deepEqual(
        nosock.map((x) => [x.metric['k8s_pod_name'], x.metric['podnet_entity_kind']]),
        [[server.name, 'pod']],
        `nosock resets: ${JSON.stringify(nosock.map((x) => x.metric))}`,
      );
    }
  }
});
