// deploy/kubernetes/base/rbac.yaml: podnet gets exactly what peer identity reads (get/list/watch of pods,
// services, endpointslices, nodes) and nothing more, bound to the DaemonSet's ServiceAccount, whose token
// is mounted; the resources match the API paths the client watches (receiver/peers/kube/compact.ts). The
// schema checks of every manifest (kubernetes.test.ts) cover this file too.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { API_PATHS } from '../../receiver/peers/kube/compact.ts';

const BASE = join(import.meta.dirname, '..', '..', 'deploy', 'kubernetes', 'base');
// biome-ignore lint/suspicious/noExplicitAny: manifests are walked as plain data.
type Any = any;
const docs = (f: string): Any[] =>
  parseAllDocuments(readFileSync(join(BASE, f), 'utf8')).map((d) => d.toJS());

test('ClusterRole: read-only list/watch of exactly the four resources the peer client watches', () => {
  const [role, binding] = docs('rbac.yaml');
  assert.equal(role.kind, 'ClusterRole');
  const granted = new Set<string>();
  for (const r of role.rules) {
    assert.deepEqual([...r.verbs].sort(), ['get', 'list', 'watch'], 'read-only verbs');
    assert.equal(r.resourceNames, undefined);
    for (const g of r.apiGroups) for (const res of r.resources) granted.add(`${g}/${res}`);
  }
  const watched = Object.values(API_PATHS).map((p) => {
    const parts = p.split('/');
    return p.startsWith('/api/') ? `/${parts[3]}` : `${parts[2]}/${parts[4]}`;
  });
  assert.deepEqual([...granted].sort(), watched.sort());
  assert.equal(binding.kind, 'ClusterRoleBinding');
  assert.equal(binding.roleRef.name, role.metadata.name);
  assert.equal(binding.roleRef.kind, 'ClusterRole');
  const ds = docs('daemonset.yaml').find((d) => d.kind === 'DaemonSet');
  const sa = ds.spec.template.spec.serviceAccountName;
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa, namespace: 'podnet' }]);
  assert.equal(ds.spec.template.spec.automountServiceAccountToken, true, 'the token is mounted');
  const kz = docs('kustomization.yaml')[0];
  assert.ok(kz.resources.includes('rbac.yaml'));
  assert.equal(kz.namespace, 'podnet');
});
