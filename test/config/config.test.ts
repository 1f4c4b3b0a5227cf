// Config validation: defaults, env handling, and malformed configs that must each give a precise error
// (key path, the value found, what was expected).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probeSpecs } from '../../probes/registry.ts';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { parseDuration } from '../../receiver/config/duration.ts';
import {
  ConfigError,
  EMBEDDED_SOURCE,
  loadConfigFile,
  resolveConfigText,
} from '../../receiver/config/load.ts';

const specs = [syntheticSpec];

function errorOf(text: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    resolveConfigText(text, 'test.yaml', { specs, env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    return err;
  }
  assert.fail(`config was accepted:\n${text}`);
}

test('no file: the embedded default', () => {
  const c = loadConfigFile(undefined, { specs, env: {} });
  assert.equal(c.source, EMBEDDED_SOURCE);
  assert.equal(c.collectionIntervalMs, 10_000);
  assert.deepEqual(c.server, { enabled: true, address: { host: '127.0.0.1', port: 9464 } });
  assert.equal(c.prometheus, true);
  assert.equal(c.otlpMetrics, undefined);
  assert.equal(c.otlpLogs, undefined);
  assert.equal(c.cardinalityLimit, 10_000);
  assert.equal(c.kernelStacks, true);
  const synth = c.probes.find((p) => p.spec.name === 'synthetic')!;
  assert.equal(synth.enabled, false);
  assert.deepEqual(synth.args, {
    counter_step: 1,
    gauge_value: 42,
    histogram_boundaries: [0.001, 0.01, 0.1, 1],
    event_rate_per_sec: 0,
    event_threshold_ms: 0,
    unattributed: true,
  });
});

test('OTEL_* environment: endpoint enables OTLP, protocol, export interval', () => {
  const c = resolveConfigText('', 'x', {
    specs,
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_METRIC_EXPORT_INTERVAL: '15000',
    },
  });
  assert.equal(c.otlpMetrics?.protocol, 'grpc');
  assert.equal(c.otlpMetrics?.endpoint, undefined, 'env endpoints are left to the exporters');
  assert.equal(c.otlpMetrics?.intervalMs, 15_000);
  assert.equal(c.otlpLogs?.protocol, 'grpc');
  const d = resolveConfigText('exporters: { otlp: { endpoint: "http://c:4318", logs: false } }', 'x', {
    specs,
    env: {},
  });
  assert.equal(d.otlpMetrics?.protocol, 'http/protobuf');
  assert.equal(d.otlpMetrics?.intervalMs, 10_000, 'defaults to the collection interval');
  assert.equal(d.otlpLogs, undefined);
});

test('env substitution (env:VAR) and a full valid config', () => {
  const c = resolveConfigText(
    `
collection_interval: 1.5s
node_name: \${env:MY_NODE}
cardinality_limit: 500
kernel_stacks: true
probes:
  synthetic:
    enabled: true
    args: { counter_step: 3, event_rate_per_sec: 10 }
metrics:
  podnet.synthetic.disabled.count: { enabled: true }
events:
  podnet.synthetic.anomaly: { enabled: false }
pods: { cri_endpoint: unix:///run/containerd/containerd.sock, label_allowlist: [app, team] }
server: { address: "0.0.0.0:9999" }
exporters:
  otlp: { endpoint: "http://\${env:COLLECTOR:-localhost}:4318", protocol: http/json, headers: { x-token: abc }, interval: 5s }
  events_jsonl: { enabled: true, path: /tmp/events.jsonl }
event_queue: { max_queue_size: 100, max_export_batch_size: 10, schedule_delay: 200ms }
`,
    'full.yaml',
    { specs, env: { MY_NODE: 'node-7' } },
  );
  assert.equal(c.collectionIntervalMs, 1500);
  assert.equal(c.nodeName, 'node-7');
  assert.equal(c.otlpMetrics?.endpoint, 'http://localhost:4318');
  assert.equal(c.otlpMetrics?.intervalMs, 5000);
  assert.deepEqual(c.otlpMetrics?.headers, { 'x-token': 'abc' });
  assert.deepEqual(c.server.address, { host: '0.0.0.0', port: 9999 });
  assert.equal(c.metricEnabled.get('podnet.synthetic.disabled.count'), true);
  assert.equal(c.eventEnabled.get('podnet.synthetic.anomaly'), false);
  assert.deepEqual(c.eventQueue, { maxQueueSize: 100, maxExportBatchSize: 10, scheduledDelayMs: 200 });
  assert.equal((c.probes[0]!.args as { counter_step: number }).counter_step, 3);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('10'), undefined);
});

// Each malformed config: [what, yaml, expected path, fragments the message must contain].
const MALFORMED: Array<[string, string, string, string[]]> = [
  ['duration without unit', 'collection_interval: 10', 'collection_interval', ['got 10', 'expected string']],
  [
    'bad duration text',
    'collection_interval: soon',
    'collection_interval',
    ['"soon"', 'duration such as 500ms'],
  ],
  [
    'duration out of range',
    'collection_interval: 10ms',
    'collection_interval',
    ['"10ms"', 'between 100ms and 1h'],
  ],
  ['unknown top-level key', 'colection_interval: 10s', '(root)', ['unknown key "colection_interval"']],
  [
    'unknown probe',
    'probes: { synthetc: { enabled: true } }',
    'probes.synthetc',
    ['unknown probe "synthetc"', '"synthetic"'],
  ],
  [
    'enabled not a boolean',
    'probes: { synthetic: { enabled: "yes" } }',
    'probes.synthetic.enabled',
    ['got "yes"', 'expected boolean'],
  ],
  [
    'probe arg of the wrong type (probe schema)',
    'probes: { synthetic: { args: { gauge_value: high } } }',
    'probes.synthetic.args.gauge_value',
    ['got "high"', 'expected number'],
  ],
  [
    'unknown probe arg (probe schema)',
    'probes: { synthetic: { args: { rate: 5 } } }',
    'probes.synthetic.args',
    ['unknown key "rate"'],
  ],
  [
    'probe arg below its minimum',
    'probes: { synthetic: { args: { event_rate_per_sec: -1 } } }',
    'probes.synthetic.args.event_rate_per_sec',
    ['got -1', '>= 0'],
  ],
  [
    'bad OTLP protocol',
    'exporters: { otlp: { protocol: http } }',
    'exporters.otlp.protocol',
    ['got "http"', '"grpc", "http/protobuf", "http/json"'],
  ],
  [
    'bad OTLP endpoint',
    'exporters: { otlp: { endpoint: "collector:4317" } }',
    'exporters.otlp.endpoint',
    ['"collector:4317"', 'http:// or https:// URL'],
  ],
  [
    'server address without port',
    'server: { address: localhost }',
    'server.address',
    ['"localhost"', 'host:port'],
  ],
  [
    'server port out of range',
    'server: { address: "127.0.0.1:70000" }',
    'server.address',
    ['"127.0.0.1:70000"', '0 to 65535'],
  ],
  [
    'unknown metric',
    'metrics: { podnet.nope.count: { enabled: true } }',
    'metrics.podnet.nope.count',
    ['unknown metric "podnet.nope.count"'],
  ],
  [
    'unknown event',
    'events: { podnet.nope: { enabled: false } }',
    'events.podnet.nope',
    ['unknown event "podnet.nope"'],
  ],
  [
    'cardinality limit not an integer',
    'cardinality_limit: 1.5',
    'cardinality_limit',
    ['got 1.5', 'expected int'],
  ],
  [
    'label allow-list not a list',
    'pods: { label_allowlist: app }',
    'pods.label_allowlist',
    ['got "app"', 'expected array'],
  ],
  ['queue size zero', 'event_queue: { max_queue_size: 0 }', 'event_queue.max_queue_size', ['got 0', '>= 1']],
  ['YAML syntax error', 'probes: { synthetic: [', '(yaml)', ['line 1']],
  ['duplicate key', 'collection_interval: 1s\ncollection_interval: 2s', '(yaml)', ['line 2', 'unique']],
  ['document is a list', '- a\n- b', '(root)', ['expected a mapping']],
  [
    'CRI endpoint not a unix socket',
    'pods: { cri_endpoint: "tcp://10.0.0.1:1234" }',
    'pods.cri_endpoint',
    ['got "tcp://10.0.0.1:1234"', 'unix:///absolute/path.sock'],
  ],
  ['unset environment variable', `node_name: \${env:PNO_NOT_SET}`, 'node_name', ['PNO_NOT_SET is not set']],
];

for (const [what, yaml, path, fragments] of MALFORMED) {
  test(`malformed config: ${what}`, () => {
    const err = errorOf(yaml);
    const issue = err.issues.find((i) => i.path === path);
    assert.ok(issue, `no issue at ${path}; got ${JSON.stringify(err.issues)}`);
    for (const f of fragments) assert.ok(issue.message.includes(f), `"${issue.message}" lacks "${f}"`);
    assert.ok(err.message.includes('test.yaml') && err.message.includes(path));
  });
}

test('bad OTEL_EXPORTER_OTLP_PROTOCOL in the environment is an error naming the variable', () => {
  const err = errorOf('', { OTEL_EXPORTER_OTLP_PROTOCOL: 'udp' });
  assert.ok(
    err.issues.some((i) => i.path === 'env OTEL_EXPORTER_OTLP_PROTOCOL' && i.message.includes('"udp"')),
  );
});

test('a missing config file is an error naming the file', () => {
  assert.throws(
    () => loadConfigFile('/nonexistent/pno-podnet.yaml', { specs }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message.includes('/nonexistent/pno-podnet.yaml') &&
      err.message.includes('cannot read'),
  );
});

test('docs/podnet.example.yaml is a valid config and shows the defaults', () => {
  const allSpecs = [...probeSpecs, syntheticSpec];
  const c = loadConfigFile(new URL('../../docs/podnet.example.yaml', import.meta.url).pathname, {
    specs: allSpecs,
    env: { K8S_NODE_NAME: 'n1' },
  });
  const d = loadConfigFile(undefined, { specs: allSpecs, env: {} });
  assert.equal(c.nodeName, 'n1');
  assert.deepEqual(c.warnings, []);
  assert.deepEqual(
    { ...c.raw, node_name: undefined },
    { ...d.raw, node_name: undefined, probes: c.raw.probes },
  );
  // The probes it shows: their default switch and args.
  assert.ok(Object.keys(c.raw.probes).length >= 3);
  for (const name of Object.keys(c.raw.probes)) {
    const shown = c.probes.find((p) => p.spec.name === name)!;
    const dflt = d.probes.find((p) => p.spec.name === name)!;
    assert.equal(shown.enabled, dflt.enabled, name);
    assert.deepEqual(shown.args, dflt.args, name);
  }
  const e = loadConfigFile(new URL('../../docs/podnet.example.yaml', import.meta.url).pathname, {
    specs: allSpecs,
    env: {},
  });
  assert.equal(e.nodeName, undefined, 'an empty env default means unset');
});

test('metric temporality: config, OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, bad values', () => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  const t = (env: NodeJS.ProcessEnv, yaml = '') =>
    resolveConfigText(yaml, 'x', { specs, env: { ...on, ...env } }).otlpMetrics?.temporality;
  assert.equal(t({}), 'cumulative');
  assert.equal(t({ OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'DELTA' }), 'delta');
  assert.equal(t({ OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'lowmemory' }), 'cumulative');
  assert.equal(
    t(
      { OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'delta' },
      'exporters: { otlp: { temporality: cumulative } }',
    ),
    'cumulative',
  );
  const err = errorOf('', { ...on, OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'sometimes' });
  assert.ok(
    err.issues.some(
      (i) =>
        i.path === 'env OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE' &&
        i.message.includes('"sometimes"'),
    ),
  );
  const err2 = errorOf('exporters: { otlp: { temporality: deltas } }');
  assert.ok(
    err2.issues.some((i) => i.path === 'exporters.otlp.temporality' && i.message.includes('got "deltas"')),
  );
});

test('OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER, OTEL_BLRP_*, OTEL_EXPORTER_OTLP_TIMEOUT; the file wins when explicit', () => {
  const r = (env: NodeJS.ProcessEnv, yaml = '') => resolveConfigText(yaml, 'x', { specs, env });
  const ep = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
  let c = r({ ...ep, OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'otlp' });
  assert.equal(c.otlpMetrics, undefined);
  assert.equal(c.prometheus, false, 'OTEL_METRICS_EXPORTER=none turns the Prometheus endpoint off too');
  assert.ok(c.otlpLogs);
  c = r({ OTEL_METRICS_EXPORTER: 'otlp,prometheus' });
  assert.ok(c.otlpMetrics, 'otlp listed: on even without an endpoint (exporter default)');
  assert.equal(c.prometheus, true);
  assert.equal(
    r({ OTEL_METRICS_EXPORTER: 'prometheus' }, 'exporters: { prometheus: { enabled: false } }').prometheus,
    false,
  );
  assert.ok(
    r({ ...ep, OTEL_METRICS_EXPORTER: 'none' }, 'exporters: { otlp: { enabled: true } }').otlpMetrics,
  );
  c = r({
    ...ep,
    OTEL_BLRP_MAX_QUEUE_SIZE: '64',
    OTEL_BLRP_SCHEDULE_DELAY: '250',
    OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
  });
  assert.deepEqual(c.eventQueue, { maxQueueSize: 64, maxExportBatchSize: 512, scheduledDelayMs: 250 });
  assert.equal(c.otlpLogs?.timeoutMs, 3000);
  c = r(
    { ...ep, OTEL_BLRP_MAX_QUEUE_SIZE: '64', OTEL_EXPORTER_OTLP_TIMEOUT: '3000' },
    'event_queue: { max_queue_size: 5 }\nexporters: { otlp: { timeout: 2s } }',
  );
  assert.equal(c.eventQueue.maxQueueSize, 5);
  assert.equal(c.otlpMetrics?.timeoutMs, 2000);
  for (const [name, value, frag] of [
    ['OTEL_METRICS_EXPORTER', 'console', '"otlp", "prometheus", "none"'],
    ['OTEL_LOGS_EXPORTER', 'prometheus', '"otlp", "none"'],
    ['OTEL_BLRP_MAX_QUEUE_SIZE', 'lots', 'integer >= 1'],
  ] as const) {
    const err = errorOf('', { ...ep, [name]: value });
    assert.ok(
      err.issues.some(
        (i) => i.path === `env ${name}` && i.message.includes(`"${value}"`) && i.message.includes(frag),
      ),
      JSON.stringify(err.issues),
    );
  }
});
