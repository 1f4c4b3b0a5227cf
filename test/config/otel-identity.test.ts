// Config keys and variables of the OTel identity and exporter options: cluster_name,
// resource_attributes.<name>.enabled, exporters.otlp.compression / tls, OTEL_METRIC_EXPORT_TIMEOUT,
// OTEL_SDK_DISABLED; and the agent Resource they give (host.name = node name, a service.instance.id that is
// the same for the same node on every start and differs between nodes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { type ConfigError, resolveConfigText } from '../../receiver/config/load.ts';
import { buildResource } from '../../receiver/otel/resource.ts';

const specs = [syntheticSpec];
const resolve = (yaml: string, env: NodeJS.ProcessEnv = {}) => resolveConfigText(yaml, 'x', { specs, env });
const ENDPOINT = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };

test('OTEL_SDK_DISABLED=true turns OTLP off for both signals; a bad value names the variable', () => {
  assert.ok(resolve('', ENDPOINT).otlpMetrics);
  const off = resolve('', { ...ENDPOINT, OTEL_SDK_DISABLED: 'true' });
  assert.equal(off.otlpMetrics, undefined);
  assert.equal(off.otlpLogs, undefined);
  assert.equal(off.prometheus, true, 'the local /metrics stays');
  assert.ok(resolve('', { ...ENDPOINT, OTEL_SDK_DISABLED: 'false' }).otlpLogs);
  assert.throws(
    () => resolve('', { ...ENDPOINT, OTEL_SDK_DISABLED: 'yes' }),
    (e: ConfigError) => /env OTEL_SDK_DISABLED: got "yes"/.test(e.message),
  );
});

test('OTEL_METRIC_EXPORT_TIMEOUT sets the metrics export timeout (the config key wins)', () => {
  const c = resolve('', { ...ENDPOINT, OTEL_METRIC_EXPORT_TIMEOUT: '2500' });
  assert.equal(c.otlpMetrics?.timeoutMs, 2500);
  assert.equal(c.otlpLogs?.timeoutMs, 10_000);
  const k = resolve('exporters: { otlp: { timeout: 4s } }', {
    ...ENDPOINT,
    OTEL_METRIC_EXPORT_TIMEOUT: '2500',
  });
  assert.equal(k.otlpMetrics?.timeoutMs, 4000);
});

test('exporters.otlp.compression and tls reach both signals; unreadable files and half a key pair are errors', () => {
  const c = resolve(
    `exporters: { otlp: { compression: gzip, tls: { ca_file: "${import.meta.filename}", insecure: false } } }`,
    ENDPOINT,
  );
  for (const s of [c.otlpMetrics!, c.otlpLogs!]) {
    assert.equal(s.compression, 'gzip');
    assert.equal(s.tls?.caFile, import.meta.filename);
  }
  assert.throws(
    () => resolve('exporters: { otlp: { tls: { ca_file: /nonexistent/ca.pem } } }', ENDPOINT),
    (e: ConfigError) =>
      /exporters\.otlp\.tls\.ca_file: got "\/nonexistent\/ca\.pem", cannot read it/.test(e.message),
  );
  assert.throws(
    () => resolve(`exporters: { otlp: { tls: { cert_file: "${import.meta.filename}" } } }`, ENDPOINT),
    (e: ConfigError) => /cert_file and key_file go together/.test(e.message),
  );
  assert.throws(
    () => resolve('exporters: { otlp: { compression: zstd } }', ENDPOINT),
    (e: ConfigError) => /exporters\.otlp\.compression: got "zstd"/.test(e.message),
  );
});

test('identity: host.name is the node name, service.instance.id stable per node, cluster name, switches', () => {
  const c = resolve('cluster_name: prod\nresource_attributes: { service.version: { enabled: false } }', {
    K8S_NODE_NAME: 'node-a',
  });
  assert.equal(c.clusterName, 'prod');
  const r = (node: string, cluster?: string, disabled: ReadonlySet<string> = new Set<string>()) =>
    buildResource({ nodeName: node, clusterName: cluster, disabled, env: {} }).attributes;
  const a1 = r('node-a', 'prod');
  const a2 = r('node-a', 'prod');
  assert.equal(a1['host.name'], 'node-a');
  assert.equal(a1['k8s.node.name'], 'node-a');
  assert.equal(a1['k8s.cluster.name'], 'prod');
  // python3 -c "import uuid; print(uuid.uuid5(uuid.UUID('4d63009a-8d0f-11ee-aad7-4c796ed8e320'), 'podnet/prod/node-a'))"
  assert.equal(a1['service.instance.id'], 'dddacc8e-98d2-51b3-b354-eee76cdf1f9c');
  assert.equal(a1['service.instance.id'], a2['service.instance.id'], 'same node: same id on every start');
  assert.notEqual(r('node-b', 'prod')['service.instance.id'], a1['service.instance.id']);
  assert.notEqual(r('node-a', 'staging')['service.instance.id'], a1['service.instance.id']);
  const off = r('node-a', 'prod', c.resourceAttributesDisabled);
  assert.equal(off['service.version'], undefined);
  assert.equal(off['service.name'], 'podnet');
  assert.equal(resolve('cluster_name: x', { K8S_CLUSTER_NAME: 'y' }).clusterName, 'x');
  assert.throws(
    () => resolve('resource_attributes: { k8s.pod.name: { enabled: false } }'),
    (e: ConfigError) => /resource_attributes\.k8s\.pod\.name: unknown resource attribute/.test(e.message),
  );
});
