// Peer resolution cost (receiver/peers):
//   node --expose-gc benchmarks/peers/resolver.ts [--pods 10000] [--services 2000] [--events 1000000] [--json]
// 1. Memory of the cluster view at N pods + M Services (+ one EndpointSlice per Service, 5 endpoints each,
//    and 100 nodes), listed and watched from the protocol-fake API server (test/env/kube-api/server.ts) over
//    real HTTP: heap held by the index, against a baseline in the same run = the same lists kept as parsed
//    API objects (what an informer's cache holds).
// 2. Lookup cost per event: PeerResolver.forEvent on socket and packet event attributes (addresses of
//    pods, Services, unknown), against a plain Map lookup of the same addresses (baseline); and the whole
//    EventPipeline.emit with peer resolution on vs off.
// Exits non-zero when the view does not sync or a lookup resolves wrongly.
import { parseArgs } from 'node:util';
import { finish } from '../lib/finish.ts';

process.env['PODNET_LOG_LEVEL'] ??= 'warn';
const { StaticEntitySource } = await import('../../receiver/agent/static-entities.ts');
const { childLogger } = await import('../../receiver/log/logger.ts');
const { EventPipeline } = await import('../../receiver/otel/event-pipeline.ts');
const { SelfTelemetry } = await import('../../receiver/otel/self-telemetry.ts');
const { KubeSource } = await import('../../receiver/peers/kube/source.ts');
const { PeerResolver } = await import('../../receiver/peers/resolver.ts');
const { FakeKubeApi, endpointSlice, node, pod, service } = await import('../../test/env/kube-api/server.ts');

const { values } = parseArgs({
  options: {
    pods: { type: 'string', default: '10000' },
    services: { type: 'string', default: '2000' },
    events: { type: 'string', default: '1000000' },
    json: { type: 'boolean', default: false },
  },
});
const nPods = Number(values.pods);
const nSvc = Number(values.services);
const nEvents = Number(values.events);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const heap = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const mb = (b: number): number => Math.round((b / 1024 / 1024) * 10) / 10;
const log = childLogger('bench-peers');
const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) failures.push(`expected, did not hold: ${what}`);
};

const podIp = (i: number) => `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const svcIp = (i: number) => `10.96.${(i >> 8) & 255}.${i & 255}`;

// ---- 1. memory ----
const api = await FakeKubeApi.start({ token: 'b' });
for (let i = 0; i < nPods; i++) {
  const p = pod({
    name: `app${i % 500}-7d9f8c6b5-${i.toString(36)}`,
    namespace: `ns${i % 50}`,
    ips: [podIp(i)],
    node: `node-${i % 100}`,
    replicaSet: { name: `app${i % 500}-7d9f8c6b5`, hash: '7d9f8c6b5' },
  });
  // realistic bulk an API pod carries (labels, annotations, a container spec, conditions)
  Object.assign(p.metadata, {
    labels: {
      ...(p.metadata['labels'] as object),
      app: `app${i % 500}`,
      tier: 'web',
      'app.kubernetes.io/part-of': 'shop',
    },
    annotations: {
      'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z',
      'prometheus.io/scrape': 'true',
    },
    creationTimestamp: '2026-01-01T00:00:00Z',
  });
  (p['spec'] as Record<string, unknown>)['containers'] = [
    {
      name: 'app',
      image: `registry.example.com/shop/app${i % 500}:1.2.3`,
      ports: [{ containerPort: 8080, protocol: 'TCP' }],
      env: [{ name: 'MODE', value: 'production' }],
      resources: { requests: { cpu: '100m', memory: '128Mi' } },
    },
  ];
  (p['status'] as Record<string, unknown>)['conditions'] = [
    'Initialized',
    'Ready',
    'ContainersReady',
    'PodScheduled',
  ].map((type) => ({ type, status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }));
  api.apply('pods', p);
}
for (let i = 0; i < nSvc; i++) {
  api.apply('services', service({ name: `svc${i}`, namespace: `ns${i % 50}`, clusterIPs: [svcIp(i)] }));
  api.apply(
    'endpointslices',
    endpointSlice({
      name: `svc${i}-abcde`,
      namespace: `ns${i % 50}`,
      service: `svc${i}`,
      addresses: Array.from({ length: 5 }, (_, k) => podIp((i * 5 + k) % nPods)),
    }),
  );
}
for (let i = 0; i < 100; i++)
  api.apply('nodes', node({ name: `node-${i}`, internalIP: `192.168.${i >> 8}.${i & 255}` }));

const tokenFile = `/tmp/podnet-bench-peers-${process.pid}`;
const { writeFileSync, rmSync } = await import('node:fs');
writeFileSync(tokenFile, 'b');
const h0 = heap();
const t0 = performance.now();
const src = new KubeSource({ apiServer: api.url, tokenFile, log, maxAddresses: 10_000_000 });
src.start();
while (!src.synced && performance.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 20));
const syncMs = performance.now() - t0;
check(src.synced, 'the cluster view synced');
const h1 = heap();
const viewBytes = h1 - h0;
const st = src.status();
check(
  st.objects.pods === nPods && st.objects.services === nSvc,
  `objects indexed: ${JSON.stringify(st.objects)}`,
);

// baseline: the same lists kept as parsed API objects (an informer cache)
const full: unknown[] = [];
const b0 = heap();
for (const path of [
  '/api/v1/pods',
  '/api/v1/services',
  '/apis/discovery.k8s.io/v1/endpointslices',
  '/api/v1/nodes',
]) {
  const r = await fetch(`${api.url}${path}`, { headers: { Authorization: 'Bearer b' } });
  full.push(((await r.json()) as { items: unknown[] }).items);
}
const fullBytes = heap() - b0;

// ---- 2. lookups ----
const entities = new StaticEntitySource([]);
const resolver = new PeerResolver({
  entities,
  nodeName: 'node-0',
  kube: src.index,
  refreshMs: 0,
  hostAddresses: () => ['192.168.0.0'],
});
const N_ATTR = 4096;
const attrs: Record<string, string | number>[] = [];
for (let i = 0; i < N_ATTR; i++) {
  const r = i % 4;
  const ip = r === 0 ? svcIp(i % nSvc) : r === 3 ? `172.16.${i & 255}.1` : podIp((i * 7919) % nPods);
  attrs.push(
    i % 2 === 0
      ? {
          'network.local.address': '10.200.0.1',
          'network.peer.address': ip,
          'network.local.port': 80,
          'network.peer.port': 40000 + i,
        }
      : {
          'source.address': ip,
          'destination.address': '10.200.0.1',
          'source.port': 40000 + i,
          'destination.port': 80,
        },
  );
}
check(resolver.resolve(svcIp(1)).info.service === 'svc1', 'a ClusterIP resolves to its Service');
check(resolver.resolve(podIp(123)).info.pod !== undefined, 'a pod address resolves to its pod');
const peerOf = (a: Record<string, string | number>) =>
  (a['network.peer.address'] ?? a['source.address']) as string;
const baseline = new Map<string, object>();
for (const a of attrs) baseline.set(peerOf(a), { kind: 'x' });

function timeIt(fn: (i: number) => unknown): number {
  let sink = 0;
  for (let i = 0; i < 200_000; i++) if (fn(i)) sink++; // warm-up
  const t = process.hrtime.bigint();
  for (let i = 0; i < nEvents; i++) if (fn(i)) sink++;
  const ns = Number(process.hrtime.bigint() - t) / nEvents;
  if (sink < 0) console.log(sink);
  return ns;
}
const mask = N_ATTR - 1;
const rounds: { resolver: number; map: number }[] = [];
for (let r = 0; r < 5; r++) {
  const map = timeIt((i) => {
    const a = attrs[i & mask]!;
    const ip = a['network.peer.address'] ?? a['source.address'];
    return baseline.get(ip as string);
  });
  const res = timeIt((i) => resolver.forEvent(attrs[i & mask]!, undefined, 0, 'podnet.tcp.reset'));
  rounds.push({ resolver: res, map });
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const resolverNs = med(rounds.map((r) => r.resolver));
const mapNs = med(rounds.map((r) => r.map));

// the whole event path: EventPipeline.emit with and without peer resolution (recent ring on, no export)
const self = new SelfTelemetry();
const def = {
  name: 'podnet.tcp.reset',
  description: '',
  severity: 'WARN' as const,
  attributes: [],
  types: [],
  enabled: true,
};
const pipe = new EventPipeline({ entities, self, log, recent: 200 });
pipe.configure({ defs: [{ def, probe: 'p', enabled: true }] });
const evs = attrs.map((a) => ({
  name: 'podnet.tcp.reset',
  type: 'TCPRESET_NOSOCK',
  netns: 0,
  timeUnixNano: 1n,
  attributes: a,
}));
const emitRounds: { on: number; off: number }[] = [];
for (let r = 0; r < 5; r++) {
  pipe.configure({ peers: null });
  const off = timeIt((i) => pipe.emit('p', evs[i & mask]!));
  pipe.configure({ peers: resolver });
  const on = timeIt((i) => pipe.emit('p', evs[i & mask]!));
  emitRounds.push({ on, off });
}
const emitOn = med(emitRounds.map((r) => r.on));
const emitOff = med(emitRounds.map((r) => r.off));

resolver.close();
await src.stop();
await api.close();
rmSync(tokenFile, { force: true });

const r2 = (x: number) => Math.round(x * 100) / 100;
const result = {
  pods: nPods,
  services: nSvc,
  endpointSlices: nSvc,
  nodes: 100,
  addresses: st.addresses,
  syncMs: Math.round(syncMs),
  viewHeapMB: mb(viewBytes),
  viewBytesPerPod: Math.round(viewBytes / (nPods + nSvc)),
  fullObjectsHeapMB: mb(fullBytes),
  memoryRatio: r2(viewBytes / fullBytes),
  lookupNsPerEvent: r2(resolverNs),
  plainMapNsPerEvent: r2(mapNs),
  lookupRatio: r2(resolverNs / mapNs),
  emitNsPeersOn: r2(emitOn),
  emitNsPeersOff: r2(emitOff),
  emitNsAddedByPeers: r2(emitOn - emitOff),
};
const lines: string[] = [];
if (values.json) lines.push(JSON.stringify(result));
else {
  lines.push(
    `Peer resolution (${nPods} pods, ${nSvc} Services + ${nSvc} EndpointSlices x 5 endpoints, 100 nodes; ${st.addresses} addresses)`,
  );
  lines.push(`  cluster view: synced in ${result.syncMs} ms over HTTP from the protocol fake`);
  lines.push(
    `  heap held by the view        ${result.viewHeapMB} MB (${result.viewBytesPerPod} B per pod/Service)`,
  );
  lines.push(
    `  baseline: parsed API objects ${result.fullObjectsHeapMB} MB   ratio view/baseline ${result.memoryRatio}`,
  );
  lines.push(
    `  lookup per event (forEvent)  ${result.lookupNsPerEvent} ns; baseline Map.get ${result.plainMapNsPerEvent} ns; ratio ${result.lookupRatio}`,
  );
  lines.push(
    `  EventPipeline.emit           ${result.emitNsPeersOn} ns with peers, ${result.emitNsPeersOff} ns without (+${result.emitNsAddedByPeers} ns)`,
  );
}
finish(lines.join('\n'), failures);
