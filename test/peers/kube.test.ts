// The Kubernetes list+watch client and the resolver against a PROTOCOL FAKE of the API server
// (test/env/kube-api/server.ts: written from the API documentation; no kube-apiserver runs here): paged
// lists with resourceVersion, chunked watch streams, bookmarks, 410 Gone as an ERROR event and as an HTTP
// status, bearer auth and RBAC refusals; IP reuse after a pod is deleted (churn).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { KubeSource } from '../../receiver/peers/kube/source.ts';
import { PeerResolver } from '../../receiver/peers/resolver.ts';
import { Peers } from '../../receiver/peers/service.ts';
import { endpointSlice, FakeKubeApi, node, pod, service } from '../env/kube-api/server.ts';

const log = childLogger('test-peers-kube');
const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function waitFor(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

async function setup(opts: Parameters<typeof FakeKubeApi.start>[0] = {}) {
  const api = await FakeKubeApi.start({ token: 'sekret', bookmarkMs: 50, ...opts });
  cleanup.push(() => api.close());
  const tokenFile = `/tmp/podnet-peers-token-${process.pid}`;
  const { writeFileSync, rmSync } = await import('node:fs');
  writeFileSync(tokenFile, 'sekret\n');
  cleanup.push(() => rmSync(tokenFile, { force: true }));
  return { api, tokenFile };
}

function source(
  api: FakeKubeApi,
  tokenFile: string,
  extra: Partial<ConstructorParameters<typeof KubeSource>[0]> = {},
) {
  const src = new KubeSource({
    apiServer: api.url,
    tokenFile,
    log,
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    ...extra,
  });
  const resolver = new PeerResolver({
    entities: new StaticEntitySource([]),
    nodeName: 'node-a',
    kube: src.index,
    refreshMs: 0,
    hostAddresses: () => ['192.0.2.1'],
  });
  src.start();
  cleanup.push(async () => {
    resolver.close();
    await src.stop();
  });
  return { src, resolver };
}

test('list (paged) then watch: pods, ClusterIP and headless Services (EndpointSlices), nodes resolve; new objects arrive over the watch', async () => {
  const { api, tokenFile } = await setup();
  for (let i = 0; i < 5; i++)
    api.apply(
      'pods',
      pod({ name: `web-${i}`, namespace: 'shop', ips: [`10.244.1.${10 + i}`, `fd00::${10 + i}`] }),
    );
  api.apply(
    'pods',
    pod({
      name: 'api-7d9-x1',
      namespace: 'pay',
      ips: ['10.244.2.7'],
      node: 'node-b',
      replicaSet: { name: 'api-7d9', hash: '7d9' },
    }),
  );
  api.apply('services', service({ name: 'api', namespace: 'pay', clusterIPs: ['10.96.0.20', 'fd96::20'] }));
  api.apply('services', service({ name: 'db', namespace: 'pay', clusterIPs: 'None' }));
  api.apply(
    'endpointslices',
    endpointSlice({ name: 'api-abc', namespace: 'pay', service: 'api', addresses: ['10.244.2.7'] }),
  );
  api.apply(
    'endpointslices',
    endpointSlice({ name: 'db-xyz', namespace: 'pay', service: 'db', addresses: ['10.244.3.9'] }),
  );
  api.apply('nodes', node({ name: 'node-b', internalIP: '192.168.50.12' }));
  api.apply('nodes', node({ name: 'node-a', internalIP: '192.168.50.11' }));
  const { src, resolver } = source(api, tokenFile, {});
  assert.ok(await waitFor(() => src.synced));
  const podLists = api.requests.filter((r) => r.path === '/api/v1/pods' && r.query['watch'] === undefined);
  assert.equal(podLists.length, 1, 'default page size fits 6 pods in one page');

  const a = (ip: string) => resolver.resolve(ip).attributes;
  assert.deepEqual(a('10.244.1.12'), {
    'podnet.peer.kind': 'pod',
    'podnet.peer.k8s.pod.name': 'web-2',
    'podnet.peer.k8s.namespace.name': 'shop',
    'podnet.peer.k8s.node.name': 'node-a',
  });
  assert.equal(a('fd00::12')['podnet.peer.k8s.pod.name'], 'web-2', 'IPv6 pod address');
  assert.deepEqual(a('10.96.0.20'), {
    'podnet.peer.kind': 'service',
    'podnet.peer.k8s.namespace.name': 'pay',
    'podnet.peer.k8s.service.name': 'api',
  });
  assert.equal(a('fd96::20')['podnet.peer.k8s.service.name'], 'api');
  // a pod behind a Service: the pod, with its Service; its workload from the ReplicaSet owner
  assert.equal(a('10.244.2.7')['podnet.peer.kind'], 'pod');
  assert.equal(a('10.244.2.7')['podnet.peer.k8s.service.name'], 'api');
  assert.equal(resolver.resolve('10.244.2.7').info.workload, 'api', 'ReplicaSet api-7d9 → Deployment api');
  // headless Service endpoint that is no known pod
  assert.deepEqual(a('10.244.3.9'), {
    'podnet.peer.kind': 'service',
    'podnet.peer.k8s.namespace.name': 'pay',
    'podnet.peer.k8s.service.name': 'db',
  });
  assert.deepEqual(a('192.168.50.12'), { 'podnet.peer.kind': 'node', 'podnet.peer.k8s.node.name': 'node-b' });
  assert.equal(a('192.168.50.11')['podnet.peer.kind'], 'host', 'this node is the host');
  assert.equal(a('10.244.9.9')['podnet.peer.kind'], 'unknown', 'private address nobody knows');
  assert.equal(a('8.8.8.8')['podnet.peer.kind'], 'external');

  // watch: a new pod and a new Service arrive
  assert.ok(await waitFor(() => api.watchers() === 4));
  api.apply('pods', pod({ name: 'late', namespace: 'shop', ips: ['10.244.1.99'] }));
  api.apply('services', service({ name: 'late', namespace: 'shop', clusterIPs: ['10.96.0.99'] }));
  assert.ok(await waitFor(() => a('10.244.1.99')['podnet.peer.k8s.pod.name'] === 'late'));
  assert.ok(await waitFor(() => a('10.96.0.99')['podnet.peer.k8s.service.name'] === 'late'));
  // bookmarks move the resourceVersion on without events
  const rv0 = api.resourceVersion;
  assert.ok(await waitFor(() => src.status().watches.every((w) => w.bookmarks >= 2)));
  for (const w of src.status().watches) assert.equal(w.resourceVersion, String(rv0));
  for (const r of api.requests.filter((r) => r.query['watch'] === '1'))
    assert.equal(r.query['allowWatchBookmarks'], 'true');
});

test('paged list: continue tokens until the last page; every object indexed', async () => {
  const { api, tokenFile } = await setup();
  for (let i = 0; i < 7; i++)
    api.apply('pods', pod({ name: `p${i}`, namespace: 'n', ips: [`10.1.0.${i + 1}`] }));
  const { src, resolver } = source(api, tokenFile);
  // the source uses pages of 500; use a small one through the ListWatch directly
  const { ListWatch } = await import('../../receiver/peers/kube/watch.ts');
  let listed: unknown[] = [];
  const lw = new ListWatch({
    conn: { server: api.url, token: () => 'sekret' },
    path: '/api/v1/pods',
    log,
    pageSize: 3,
    reduce: (o) => (o as { metadata: { name: string } }).metadata.name,
    onList: (items) => {
      listed = [...items];
    },
    onEvent: () => {},
  });
  lw.start();
  cleanup.push(() => lw.stop());
  assert.ok(await waitFor(() => lw.synced));
  assert.deepEqual(listed, ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
  const pages = api.requests.filter((r) => r.path === '/api/v1/pods' && r.query['limit'] === '3');
  assert.equal(pages.length, 3);
  assert.ok(pages[1]!.query['continue'] && pages[2]!.query['continue']);
  assert.ok(await waitFor(() => src.synced));
  assert.equal(resolver.resolve('10.1.0.7').info.pod, 'p6');
});

test('churn: a deleted pod stops resolving at once; its address reused by a new pod resolves to the new pod', async () => {
  const { api, tokenFile } = await setup();
  api.apply('pods', pod({ name: 'old', namespace: 'n', ips: ['10.2.0.5'], uid: 'u-old' }));
  const { src, resolver } = source(api, tokenFile);
  assert.ok(await waitFor(() => src.synced && api.watchers('pods') === 1));
  assert.equal(resolver.resolve('10.2.0.5').info.pod, 'old');
  api.delete('pods', 'n/old');
  assert.ok(
    await waitFor(() => resolver.resolve('10.2.0.5').info.kind === 'unknown'),
    'no stale identity after the delete',
  );
  api.apply('pods', pod({ name: 'new', namespace: 'n', ips: ['10.2.0.5'], uid: 'u-new' }));
  assert.ok(await waitFor(() => resolver.resolve('10.2.0.5').info.pod === 'new'));
  // the new pod claims the address before the old one's deletion arrives: the deletion does not take it
  api.apply('pods', pod({ name: 'b1', namespace: 'n', ips: ['10.2.0.6'] }));
  assert.ok(await waitFor(() => resolver.resolve('10.2.0.6').info.pod === 'b1'));
  api.apply('pods', pod({ name: 'b2', namespace: 'n', ips: ['10.2.0.6'] }));
  api.delete('pods', 'n/b1');
  api.apply('pods', pod({ name: 'marker', namespace: 'n', ips: ['10.2.0.7'] }));
  assert.ok(await waitFor(() => resolver.resolve('10.2.0.7').info.pod === 'marker'));
  assert.equal(resolver.resolve('10.2.0.6').info.pod, 'b2');
  // a finished pod frees its address
  api.apply(
    'pods',
    pod({ name: 'new', namespace: 'n', ips: ['10.2.0.5'], uid: 'u-new', phase: 'Succeeded' }),
  );
  assert.ok(await waitFor(() => resolver.resolve('10.2.0.5').info.kind === 'unknown'));
});

for (const mode of ['ERROR event', 'HTTP status'] as const) {
  test(`410 Gone (${mode}) → relist; changes made while the watch was gone are in the new view`, async () => {
    const { api, tokenFile } = await setup({ goneAsHttpStatus: mode === 'HTTP status' });
    api.apply('pods', pod({ name: 'stay', namespace: 'n', ips: ['10.3.0.1'] }));
    api.apply('pods', pod({ name: 'goes', namespace: 'n', ips: ['10.3.0.2'] }));
    const { src, resolver } = source(api, tokenFile);
    assert.ok(await waitFor(() => src.synced && api.watchers('pods') === 1));
    assert.equal(resolver.resolve('10.3.0.2').info.pod, 'goes');
    // the watch ends; meanwhile objects change and the history is compacted away
    api.endWatches();
    api.delete('pods', 'n/goes');
    api.apply('pods', pod({ name: 'came', namespace: 'n', ips: ['10.3.0.3'] }));
    api.compact();
    if (mode === 'ERROR event') api.expireWatches();
    assert.ok(
      await waitFor(() => (src.status().watches.find((w) => w.path === '/api/v1/pods')?.relists ?? 0) >= 1),
    );
    assert.ok(await waitFor(() => resolver.resolve('10.3.0.3').info.pod === 'came'));
    assert.equal(
      resolver.resolve('10.3.0.2').info.kind,
      'unknown',
      'deleted during the gap: gone after the relist',
    );
    assert.equal(resolver.resolve('10.3.0.1').info.pod, 'stay');
    const gone = api.requests.filter((r) => r.path === '/api/v1/pods' && r.query['watch'] === '1');
    if (mode === 'HTTP status') assert.ok(gone.some((r) => r.status === 410));
  });
}

test('no or wrong credentials / RBAC refused: errors with backoff, counted and named in the status; the node-local view keeps working', async () => {
  const { api, tokenFile } = await setup({ forbidden: ['endpointslices'] });
  const { src } = source(api, tokenFile);
  assert.ok(
    await waitFor(
      () => (src.status().watches.find((w) => w.path.endsWith('endpointslices'))?.errors ?? 0) >= 3,
    ),
  );
  const es = src.status().watches.find((w) => w.path.endsWith('endpointslices'))!;
  assert.match(es.lastError ?? '', /403.*endpointslices.*rbac/i);
  assert.equal(src.synced, false);
  // backoff: 20 ms doubling to 200 ms → a handful of attempts per second, not a busy loop
  const n0 = api.requests.filter((r) => r.path.endsWith('endpointslices')).length;
  await new Promise((r) => setTimeout(r, 1000));
  const n1 = api.requests.filter((r) => r.path.endsWith('endpointslices')).length;
  assert.ok(n1 - n0 <= 8, `${n1 - n0} attempts in 1 s`);

  const bad = await FakeKubeApi.start({ token: 'other' });
  cleanup.push(() => bad.close());
  const peers = new Peers({ entities: new StaticEntitySource([]), log, env: {}, refreshMs: 0 });
  cleanup.push(() => peers.close());
  await peers.configure({ enabled: true, kubernetes: { mode: 'auto', max_addresses: 1000 } }, 100);
  assert.equal(peers.status()['view'], 'node-local');
  assert.match(String((peers.status()['kubernetes'] as { reason: string }).reason), /not in a cluster/);
  await peers.configure(
    {
      enabled: true,
      kubernetes: { mode: 'on', api_server: bad.url, token_file: tokenFile, max_addresses: 1000 },
    },
    100,
  );
  assert.ok(await waitFor(() => bad.requests.some((r) => r.status === 401)));
  assert.equal(peers.status()['view'], 'node-local', 'unauthorized: still node-local');
  await peers.configure(
    {
      enabled: true,
      kubernetes: { mode: 'on', api_server: api.url, token_file: tokenFile, max_addresses: 1000 },
    },
    100,
  );
  const k = () => peers.status()['kubernetes'] as { watches: { synced: boolean }[] };
  assert.ok(
    await waitFor(() => k().watches.filter((w) => w.synced).length === 3),
    'the three allowed lists sync',
  );
});

test('bounded memory: past max_addresses objects are counted, not indexed', async () => {
  const { api, tokenFile } = await setup();
  for (let i = 0; i < 20; i++)
    api.apply('pods', pod({ name: `p${i}`, namespace: 'n', ips: [`10.4.0.${i + 1}`] }));
  const { src } = source(api, tokenFile, { maxAddresses: 10 });
  assert.ok(await waitFor(() => src.synced));
  assert.equal(src.status().addresses, 10);
  assert.equal(src.status().overflow, 10);
});

test('in-cluster: server from KUBERNETES_SERVICE_HOST/PORT, HTTPS verified with the CA file, bearer token from the token file', async () => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/podnet-peers-tls-');
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=kubernetes',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      `${dir}/key.pem`,
      '-out',
      `${dir}/ca.crt`,
    ],
    { stdio: 'ignore' },
  );
  writeFileSync(`${dir}/token`, 'sa-token\n');
  const api = await FakeKubeApi.start({
    token: 'sa-token',
    tls: { cert: readFileSync(`${dir}/ca.crt`), key: readFileSync(`${dir}/key.pem`) },
  });
  cleanup.push(() => api.close());
  api.apply('services', service({ name: 'kubernetes', namespace: 'default', clusterIPs: ['10.96.0.1'] }));
  const port = new URL(api.url).port;
  const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port };
  const peers = new Peers({ entities: new StaticEntitySource([]), log, env, refreshMs: 0 });
  cleanup.push(() => peers.close());
  // mode auto: in a cluster because KUBERNETES_SERVICE_HOST is set; the files stand in for the mount
  await peers.configure(
    {
      enabled: true,
      kubernetes: { mode: 'auto', token_file: `${dir}/token`, ca_file: `${dir}/ca.crt`, max_addresses: 1000 },
    },
    100,
  );
  assert.ok(await waitFor(() => peers.status()['view'] === 'cluster'));
  assert.equal((peers.status()['kubernetes'] as { server: string }).server, `https://127.0.0.1:${port}`);
  assert.equal(peers.resolve('10.96.0.1').info.service, 'kubernetes');
  // without the CA the server's certificate is refused: nothing is read
  const untrusted = new KubeSource({
    log,
    env,
    tokenFile: `${dir}/token`,
    caFile: '/dev/null',
    backoffInitialMs: 20,
  });
  untrusted.start();
  cleanup.push(() => untrusted.stop());
  assert.ok(await waitFor(() => untrusted.status().watches.every((w) => w.errors >= 1)));
  assert.match(untrusted.status().watches[0]!.lastError ?? '', /certificate|self.signed/i);
  assert.equal(untrusted.synced, false);
});

test('a watch that ends at once without events is backed off, not re-requested in a loop', async () => {
  const { api, tokenFile } = await setup({ emptyWatches: true });
  const { src } = source(api, tokenFile);
  assert.ok(await waitFor(() => src.synced));
  const watches = () =>
    api.requests.filter((r) => r.path === '/api/v1/pods' && r.query['watch'] === '1').length;
  await new Promise((r) => setTimeout(r, 1000));
  // backoff 20 ms doubling to 200 ms: well under 15 in a second (a loop would make hundreds)
  assert.ok(watches() <= 15, `${watches()} watch requests in 1 s`);
  assert.match(src.status().watches[0]!.lastError ?? '', /ended at once/);
});

test('a pod lifecycle watch stream: only changes of an address or of its identity re-fire, not status-only MODIFIED events', async () => {
  // test/peers/fixtures/pod-lifecycle.watch.jsonl: one pod's watch events in the API's format (full
  // objects: conditions, containerStatuses, restarts, annotations, deletionTimestamp), served in order
  const events = readFileSync(new URL('./fixtures/pod-lifecycle.watch.jsonl', import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; object: Parameters<FakeKubeApi['apply']>[1] });
  const { api, tokenFile } = await setup();
  const src = new KubeSource({ apiServer: api.url, tokenFile, log, backoffInitialMs: 20 });
  const changes: string[] = [];
  src.index.onChange = (ip) => changes.push(ip);
  src.start();
  cleanup.push(() => src.stop());
  assert.ok(await waitFor(() => src.synced && api.watchers('pods') === 1));
  for (const ev of events) {
    if (ev.type === 'DELETED') api.delete('pods', 'shop/web-7d9c5b-x2k4q');
    else api.apply('pods', ev.object);
  }
  // one watch delivers in order: once the marker is in, every event of the stream was applied
  api.apply('pods', pod({ name: 'marker', namespace: 'n', ips: ['10.2.9.9'] }));
  assert.ok(await waitFor(() => changes.includes('10.2.9.9')));
  const ips = ['10.244.1.23', 'fd00:10:244:1::17'];
  // indexed when the sandbox got its IPs, freed when the pod finished; the 4 status- or metadata-only
  // updates and the terminating update in between (same addresses, same pod) change nothing
  assert.deepEqual(changes, [...ips, ...ips, '10.2.9.9']);
  assert.equal(src.index.count('pods'), 1);
});

test('a watch connection cut mid-stream is an error (counted, backed off), then the watch resumes', async () => {
  const { api, tokenFile } = await setup();
  const { src, resolver } = source(api, tokenFile);
  assert.ok(await waitFor(() => src.synced && api.watchers('pods') === 1));
  const pods = () => src.status().watches.find((w) => w.path === '/api/v1/pods')!;
  const before = pods();
  api.cutWatches();
  assert.ok(await waitFor(() => pods().errors === before.errors + 1), JSON.stringify(pods()));
  assert.match(pods().lastError ?? '', /aborted|socket hang up|ECONNRESET/);
  assert.ok(await waitFor(() => api.watchers('pods') === 1), 'the watch resumed');
  api.apply('pods', pod({ name: 'after-cut', namespace: 'n', ips: ['10.2.8.8'] }));
  assert.ok(await waitFor(() => resolver.resolve('10.2.8.8').info.pod === 'after-cut'));
});
