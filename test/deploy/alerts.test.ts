// The shipped alert rules (deploy/alerts.ts → deploy/prometheus/podnet-alerts.yaml and the PrometheusRule):
// - the generated files are what the table generates, promtool accepts them, every alert has a runbook;
// - every metric and label they use is one podnet declares (so a rename cannot silently break an alert);
// - `promtool test rules` on test/deploy/alerts/podnet-alerts.promtool.yaml (each alert fires with its
//   exact labels and annotations, and stays quiet under its threshold), and a broken copy fails;
// - end to end: Debian's Prometheus scrapes a real podnet watching real CRI pods and evaluates the shipped
//   rules; an nft drop rule in the server pod makes PodnetPodPacketDrops go pending, then firing, for that
//   pod and NETFILTER_DROP. Only `for:` is shortened (10m → 2s) so the test takes seconds.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ALERT_GROUPS, PROMETHEUS_RULE, RULE_FILE } from '../../deploy/alerts.ts';
import { type AnyProbeSpec, probeSpecs } from '../../probes/registry.ts';
import { SELF_METRICS } from '../../receiver/otel/self-telemetry.ts';

import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { PodnetProcess } from '../reliability/lib.ts';
import { promSeries } from './declarations.ts';
import { ShippedPrometheus } from './shipped-prometheus.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const UNIT_TESTS = join(import.meta.dirname, 'alerts', 'podnet-alerts.promtool.yaml');
const rules = ALERT_GROUPS.flatMap((g) => g.rules);

describe('the shipped alert rules', () => {
  test('the committed rule file and PrometheusRule are what deploy/alerts.ts generates', () => {
    const r = spawnSync(NODE, [join(ROOT, 'deploy', 'alerts.ts'), '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const pr = parseAllDocuments(readFileSync(PROMETHEUS_RULE, 'utf8'))[0]!.toJS();
    assert.deepEqual(pr.spec.groups, parse(readFileSync(RULE_FILE, 'utf8')).groups);
  });

  test('promtool check rules accepts them', () => {
    const r = spawnSync('promtool', ['check', 'rules', RULE_FILE], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  test('every alert has a runbook section in docs/alerts.md', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'alerts.md'), 'utf8');
    for (const r of rules) assert.match(doc, new RegExp(`^### ${r.alert}$`, 'm'), r.alert);
  });

  test('every metric and label the rules use is declared by a probe or the self-telemetry', () => {
    // podnet's own metrics are declared as a pseudo-probe, as docs/reference.md lists them.
    const self = { ...probeSpecs[0]!, name: 'self', metrics: SELF_METRICS } as AnyProbeSpec;
    const declared = promSeries([...probeSpecs, self]);
    const names = new Set(declared.keys());
    const labels = new Set([...declared.values()].flatMap((s) => [...s.labels]));
    // Labels every series carries that are not probe attributes: entity keys and the scrape job's node name.
    for (const l of ['k8s_node_name', 'k8s_namespace_name', 'k8s_pod_name', 'podnet_entity_kind'])
      labels.add(l);
    for (const r of rules) {
      for (const m of r.expr.matchAll(/\b(podnet_[a-z0-9_]+|k8s_pod_[a-z0-9_]+)(?=[{[])/g))
        assert.ok(names.has(m[1]!), `${r.alert}: metric ${m[1]} is not exported by podnet`);
      for (const m of r.expr.matchAll(/by \(([^)]*)\)/g))
        for (const l of m[1]!.split(',').map((x) => x.trim()))
          assert.ok(labels.has(l), `${r.alert}: label ${l} is on no podnet series`);
    }
  });

  test('promtool test rules: each alert fires as specified, and a wrong expectation fails', () => {
    const ok = spawnSync('promtool', ['test', 'rules', UNIT_TESTS], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    for (const r of rules)
      assert.match(readFileSync(UNIT_TESTS, 'utf8'), new RegExp(`alertname: ${r.alert}$`, 'm'));
    const dir = mkdtempSync(join(tmpdir(), `pnd${process.pid}-rules-`));
    try {
      const broken = readFileSync(UNIT_TESTS, 'utf8')
        .replace('../../../deploy/prometheus/podnet-alerts.yaml', RULE_FILE)
        .replace('dropped 2 packets/s', 'dropped 3 packets/s');
      writeFileSync(join(dir, 'broken.yaml'), broken);
      const bad = spawnSync('promtool', ['test', 'rules', join(dir, 'broken.yaml')], { encoding: 'utf8' });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stdout + bad.stderr, /dropped 2 packets\/s/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('alerts in a real Prometheus scraping a real podnet', () => {
  let env: CriEnv;
  let server: TestPod;
  let podnet: PodnetProcess | undefined;
  let sender: ChildProcess | undefined;
  let prom: ShippedPrometheus;
  let dir: string;
  const table = `podnet_alerts_${process.pid}`;

  before(async () => {
    env = await startCriEnv();
    server = await env.runPod({
      name: 'server',
      namespace: 'shop',
      labels: { app: 'server' },
      containers: [{ name: 'udp', command: ['nc', '-u', '-l', '-p', '7777'] }],
    });
    const client = await env.runPod({
      name: 'client',
      namespace: 'shop',
      labels: { app: 'client' },
      containers: [{ name: 'idle', command: ['sleep', '3600'] }],
    });
    // ~20 datagrams/s from the client pod's netns to the server pod (bash's /dev/udp, run from the host in
    // the pod's network namespace): over the alert's 1 drop/s once the drop rule is in place.
    sender = spawn(
      'nsenter',
      [
        `--net=/proc/${client.pid}/ns/net`,
        'bash',
        '-c',
        `while :; do echo x > /dev/udp/${server.ip}/7777; sleep 0.05; done`,
      ],
      { stdio: 'ignore' },
    );
    dir = mkdtempSync(join(tmpdir(), `pnd${process.pid}-alerts-`));
    const shipped = parse(readFileSync(RULE_FILE, 'utf8'));
    for (const g of shipped.groups) for (const r of g.rules) r.for = '2s';
    writeFileSync(join(dir, 'rules.yaml'), stringify(shipped));
    podnet = await PodnetProcess.start(
      stringify({
        collection_interval: '1s',
        node_name: 'alert-node',
        server: { address: '127.0.0.1:0' },
        pods: { cri_endpoint: env.endpoint },
      }),
      { withSynthetic: false },
    );
    const port = new URL(podnet.url).port;
    prom = await ShippedPrometheus.start(
      [{ target: `127.0.0.1:${port}`, nodeName: 'alert-node', podName: 'podnet-alerts' }],
      '1s',
      [join(dir, 'rules.yaml')],
    );
  });

  after(async () => {
    if (sender?.pid !== undefined && sender.exitCode === null) sender.kill('SIGKILL');
    if (server)
      spawnSync('nsenter', [`--net=/proc/${server.pid}/ns/net`, 'nft', 'delete', 'table', 'inet', table]);
    await podnet?.stop();
    await prom?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    const report = await env?.teardown();
    if (report) assert.deepEqual(report.leftovers, [], 'CRI env teardown left things behind');
  });

  test('an nft drop rule in a pod makes PodnetPodPacketDrops pending, then firing, for that pod', async () => {
    const mine = async () =>
      (await prom.alerts()).filter(
        (a) => a.labels['alertname'] === 'PodnetPodPacketDrops' && a.labels['k8s_pod_name'] === server.name,
      );
    // The datagrams reach the open port: no drop alert before the fault.
    await prom.waitFor('up{job="podnet"}', (r) => r.some((s) => s.value === 1), 30_000);
    await new Promise((r) => setTimeout(r, 5_000));
    assert.deepEqual(await mine(), [], 'no drop alert before the fault');

    execFileSync('nsenter', [
      `--net=/proc/${server.pid}/ns/net`,
      'nft',
      `add table inet ${table}; add chain inet ${table} in { type filter hook input priority 0; }; add rule inet ${table} in udp dport 7777 counter drop`,
    ]);
    const states = new Set<string>();
    const end = Date.now() + 60_000;
    while (Date.now() < end && !states.has('firing')) {
      for (const a of await mine()) {
        states.add(a.state);
        assert.equal(a.labels['error_type'], 'NETFILTER_DROP');
        assert.equal(a.labels['k8s_namespace_name'], server.namespace);
        assert.equal(a.labels['k8s_node_name'], 'alert-node');
        assert.ok(Number(a.value) > 1, `value ${a.value}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const seen = async () =>
      JSON.stringify(await prom.query('sum by (k8s_pod_name, error_type) (podnet_kernel_drop_count_total)')) +
      execFileSync('nsenter', [`--net=/proc/${server.pid}/ns/net`, 'nft', 'list', 'table', 'inet', table], {
        encoding: 'utf8',
      });
    assert.ok(
      states.has('pending'),
      `never pending: ${[...states]}\n${await seen()}\n${podnet?.stderr.slice(-3000)}`,
    );
    assert.ok(states.has('firing'), `never firing: ${[...states]}\n${prom.log}`);
    // The nft rule counter proves the drops were real and in this pod.
    const counters = execFileSync(
      'nsenter',
      [`--net=/proc/${server.pid}/ns/net`, 'nft', 'list', 'table', 'inet', table],
      {
        encoding: 'utf8',
      },
    );
    assert.ok(Number(/packets (\d+)/.exec(counters)?.[1]) > 10, counters);
  });
});
