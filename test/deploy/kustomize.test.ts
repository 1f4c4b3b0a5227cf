// deploy/kubernetes built by the real kustomize (k8s-validate.ts: kustomizeBuild): the base, every overlay
// and each component, every object schema- and type-checked as it would reach the API server; what each
// overlay and component adds is where the DaemonSet and its tools expect it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { type K8sDoc, KUSTOMIZE, kustomizeBuild, schemaErrors, typeErrors } from './k8s-validate.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const K8S = join(ROOT, 'deploy', 'kubernetes');
const BASE = join(K8S, 'base');

// biome-ignore lint/suspicious/noExplicitAny: built objects are walked as plain data
type Any = any;

/** The base plus one component, built from a throw-away overlay (components apply from an overlay). */
function withComponent(name: string): Any[] {
  const dir = mkdtempSync(join(tmpdir(), `pnd${process.pid}-kz-`));
  try {
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `resources: [${relative(dir, BASE)}]\ncomponents: [${relative(dir, join(K8S, 'components', name))}]\n`,
    );
    return kustomizeBuild(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('kustomize builds the base and every overlay into valid objects', async () => {
  const overlays = [K8S, BASE, ...readdirSync(join(K8S, 'overlays')).map((d) => join(K8S, 'overlays', d))];
  assert.ok(overlays.length >= 4, overlays.join(' '));
  for (const dir of overlays) {
    const docs = kustomizeBuild(dir);
    for (const d of docs) {
      assert.deepEqual(await schemaErrors(d), [], `${relative(ROOT, dir)}: ${d.kind}`);
      // cluster-scoped: the Namespace and the peer-identity RBAC (base/rbac.yaml)
      const clusterScoped = ['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(d.kind);
      assert.equal(clusterScoped || d.metadata?.namespace === 'podnet', true, `${d.kind} namespace`);
    }
    const typed = [...typeErrors(docs)].map(([i, m]) => `${docs[i]?.kind}: ${m.join('; ')}`);
    assert.deepEqual(typed, [], relative(ROOT, dir));
  }
});

test('overlays: OTLP endpoint env; Prometheus Operator PodMonitor + PrometheusRule', () => {
  const otlp = kustomizeBuild(join(K8S, 'overlays', 'otlp')) as Any[];
  const env = otlp.find((d) => d.kind === 'DaemonSet').spec.template.spec.containers[0].env;
  assert.ok(env.some((e: Any) => e.name === 'OTEL_EXPORTER_OTLP_ENDPOINT'));
  const op = kustomizeBuild(join(K8S, 'overlays', 'prometheus-operator')) as Any[];
  const pm = op.find((d) => d.kind === 'PodMonitor');
  const ds = op.find((d) => d.kind === 'DaemonSet');
  assert.deepEqual(pm.spec.selector.matchLabels, ds.spec.selector.matchLabels);
  assert.equal(pm.spec.podMetricsEndpoints[0].port, 'metrics');
  const rule = op.find((d) => d.kind === 'PrometheusRule');
  assert.ok(rule.spec.groups.flatMap((g: Any) => g.rules).length >= 8);
});

test('the cri-dockerd component mounts the socket file into a valid DaemonSet', async () => {
  const ds = withComponent('cri-dockerd').find((d) => d.kind === 'DaemonSet');
  assert.deepEqual(await schemaErrors(ds as K8sDoc), []);
  const spec = ds.spec.template.spec;
  const vol = spec.volumes.find((v: Any) => v.name === 'cri-dockerd');
  assert.deepEqual(vol.hostPath, { path: '/run/cri-dockerd.sock', type: 'Socket' });
  const m = spec.containers[0].volumeMounts.find((x: Any) => x.name === 'cri-dockerd');
  assert.equal(m.mountPath, '/var/run/cri-dockerd.sock');
  assert.equal(m.readOnly, true);
});

test('the bearer-token component mounts the Secret and sets PODNET_TOKEN_FILE for agent and CLI', async () => {
  const ds = withComponent('bearer-token').find((d) => d.kind === 'DaemonSet');
  assert.deepEqual(await schemaErrors(ds as K8sDoc), []);
  const spec = ds.spec.template.spec;
  assert.equal(spec.volumes.find((v: Any) => v.name === 'token').secret.secretName, 'podnet-token');
  const c = spec.containers[0];
  const m = c.volumeMounts.find((x: Any) => x.name === 'token');
  const env = c.env.find((e: Any) => e.name === 'PODNET_TOKEN_FILE');
  assert.equal(env.value, `${m.mountPath}/token`);
  assert.equal(m.readOnly, true);
});

test('kustomize refuses a broken overlay (so the builds above can fail)', () => {
  const dir = mkdtempSync(join(tmpdir(), `pnd${process.pid}-kz-`));
  try {
    writeFileSync(join(dir, 'kustomization.yaml'), `resources: [${relative(dir, BASE)}, ./missing.yaml]\n`);
    const r = spawnSync(KUSTOMIZE, ['build', dir], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /missing\.yaml/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
