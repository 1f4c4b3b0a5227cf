// The deployable Collector (deploy/kubernetes/components/collector, in overlays/otlp): kustomize builds the
// `podnet-collector` Service the DaemonSet's OTEL_EXPORTER_OTLP_ENDPOINT names, with the OTLP ports, and a
// Deployment that mounts the ConfigMap whose config.yaml is otel-config/collector-mimir-loki.yaml verbatim
// (a valid Collector config: collector-schema.ts) and sets every variable that config reads.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { envReferences, validateCollectorConfig } from './collector-schema.ts';
import { kustomizeBuild } from './k8s-validate.ts';

const ROOT = join(import.meta.dirname, '..', '..');

// biome-ignore lint/suspicious/noExplicitAny: built Kubernetes objects
type Any = any;

test('overlays/otlp deploys the podnet-collector Service and Deployment podnet sends to', () => {
  const docs = kustomizeBuild(join(ROOT, 'deploy', 'kubernetes', 'overlays', 'otlp')) as Any[];
  const ds = docs.find((d) => d.kind === 'DaemonSet');
  const endpoint = new URL(
    ds.spec.template.spec.containers[0].env.find((e: Any) => e.name === 'OTEL_EXPORTER_OTLP_ENDPOINT').value,
  );
  const [svcName, svcNs] = endpoint.hostname.split('.');
  const svc = docs.find((d) => d.kind === 'Service' && d.metadata.name === svcName);
  assert.ok(svc, `Service ${svcName}`);
  assert.equal(svc.metadata.namespace, svcNs);
  assert.ok(svc.spec.ports.some((p: Any) => p.port === Number(endpoint.port)));
  const dep = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'podnet-collector');
  assert.ok(dep);
  assert.equal(dep.metadata.namespace, svcNs);
  for (const [k, v] of Object.entries(svc.spec.selector))
    assert.equal(dep.spec.template.metadata.labels[k], v, `selector ${k}`);
  const c = dep.spec.template.spec.containers[0];
  const portNames = new Set(c.ports.map((p: Any) => p.name));
  for (const p of svc.spec.ports) assert.ok(portNames.has(p.targetPort), `port ${p.targetPort}`);
  const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'podnet-collector');
  assert.equal(
    cm.data['config.yaml'],
    readFileSync(join(ROOT, 'otel-config', 'collector-mimir-loki.yaml'), 'utf8'),
  );
  const config = parse(cm.data['config.yaml']);
  assert.deepEqual(validateCollectorConfig(config), []);
  const set = new Set(c.env.map((e: Any) => e.name));
  for (const n of envReferences(config)) assert.ok(set.has(n), `the Deployment sets ${n}`);
  assert.ok(c.args.includes('--config=/conf/config.yaml'));
  assert.equal(dep.spec.template.spec.volumes[0].configMap.name, 'podnet-collector');
});
