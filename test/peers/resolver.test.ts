// The resolver's choice of the remote side of a tuple (socket events, packet events, conntrack's original
// tuple = before DNAT → the Service), loopback, node-local churn (an address moving from one pod to a new
// one between two discovery updates), the per-peer counters' cardinality bound, and the host addresses
// (read in the node's netns; a fallback to podnet's own is logged and reported).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import pino from 'pino';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { PeerCounters } from '../../receiver/peers/counters.ts';
import { KubeIndex } from '../../receiver/peers/kube/index.ts';
import { nodeAddresses } from '../../receiver/peers/local.ts';
import { PeerResolver } from '../../receiver/peers/resolver.ts';
import type { Entity } from '../../receiver/pods/entity.ts';

function podEntity(inode: number, name: string, ns: string, ips: string[]): Entity {
  return {
    kind: 'pod',
    netnsInode: inode,
    netnsPath: `/proc/${inode}/ns/net`,
    pod: {
      uid: `u-${name}`,
      name,
      namespace: ns,
      labels: {},
      ips,
      sandboxId: `s-${name}`,
      hostNetwork: false,
    },
    displayName: `${ns}/${name}`,
  };
}
const HOST: Entity = { kind: 'host', netnsInode: 1, netnsPath: '/proc/self/ns/net', displayName: 'host' };

test('remote side: socket events use network.peer.address; packet events the side that is not the entity; conntrack original tuple → Service (pre-DNAT)', () => {
  const web = podEntity(100, 'web', 'shop', ['10.0.0.5', 'fd00::5']);
  const db = podEntity(101, 'db', 'shop', ['10.0.0.6']);
  const entities = new StaticEntitySource([HOST, web, db]);
  const kube = new KubeIndex();
  kube.upsert('services', 'shop/db', { name: 'db', namespace: 'shop', ips: ['10.96.0.6'] });
  kube.upsert('endpointslices', 'shop/db-1', {
    key: 'shop/db-1',
    namespace: 'shop',
    service: 'db',
    ips: ['10.0.0.6'],
  });
  const r = new PeerResolver({
    entities,
    nodeName: 'n1',
    kube,
    refreshMs: 0,
    hostAddresses: () => ['192.168.1.10'],
  });
  const kind = (p: ReturnType<typeof r.forEvent>) => p?.display;
  // socket event
  assert.equal(
    kind(
      r.forEvent({ 'network.local.address': '10.0.0.5', 'network.peer.address': '10.0.0.6' }, web, 100, 'x'),
    ),
    'pod shop/db (service shop/db)',
  );
  // packet events, either direction
  assert.equal(
    kind(r.forEvent({ 'source.address': '10.0.0.6', 'destination.address': '10.0.0.5' }, web, 100, 'x')),
    'pod shop/db (service shop/db)',
  );
  assert.equal(
    kind(r.forEvent({ 'source.address': '10.0.0.5', 'destination.address': '192.168.1.10' }, web, 100, 'x')),
    'host (n1)',
  );
  assert.equal(
    kind(r.forEvent({ 'source.address': 'fd00::5', 'destination.address': '2001:db8::1' }, web, 100, 'x')),
    'external',
  );
  // conntrack: original tuple web → ClusterIP: the Service, not the pod behind it
  assert.equal(
    kind(
      r.forEvent(
        {
          'source.address': '10.0.0.5',
          'destination.address': '10.96.0.6',
          'source.port': 40000,
          'destination.port': 5432,
        },
        web,
        100,
        'podnet.conntrack.event',
      ),
    ),
    'service shop/db',
  );
  // on the host: the side that is not a host address
  assert.equal(
    kind(r.forEvent({ 'source.address': '10.0.0.6', 'destination.address': '192.168.1.10' }, HOST, 1, 'x')),
    'pod shop/db (service shop/db)',
  );
  // unattributed (netns 0): by direction, else the destination
  assert.equal(
    kind(
      r.forEvent(
        {
          'source.address': '10.0.0.6',
          'destination.address': '10.0.0.5',
          'network.io.direction': 'receive',
        },
        undefined,
        0,
        'x',
      ),
    ),
    'pod shop/db (service shop/db)',
  );
  assert.equal(
    kind(r.forEvent({ 'source.address': '10.0.0.6', 'destination.address': '10.0.0.5' }, undefined, 0, 'x')),
    'pod shop/web',
  );
  // loopback inside a pod: the pod itself
  assert.equal(kind(r.forEvent({ 'network.peer.address': '127.0.0.1' }, web, 100, 'x')), 'pod shop/web');
  // no tuple: no peer
  assert.equal(r.forEvent({ 'error.type': 'X' }, web, 100, 'x'), undefined);
  r.close();
});

test('node-local churn: an address that moves to a new pod resolves to it from the next discovery update on', () => {
  const entities = new StaticEntitySource([HOST, podEntity(100, 'old', 'n', ['10.0.0.9'])]);
  const r = new PeerResolver({ entities, refreshMs: 0, hostAddresses: () => [] });
  assert.equal(r.resolve('10.0.0.9').info.pod, 'old');
  entities.remove(100);
  assert.equal(r.resolve('10.0.0.9').info.kind, 'unknown', 'gone with the update that removed it');
  entities.add(podEntity(102, 'new', 'n', ['10.0.0.9']));
  assert.equal(r.resolve('10.0.0.9').info.pod, 'new');
  r.close();
});

test('the local view is built lazily: not at start, not per discovery change or refresh tick, once at the next use', async () => {
  const entities = new StaticEntitySource([HOST]);
  let reads = 0;
  const r = new PeerResolver({
    entities,
    refreshMs: 30,
    hostAddresses: () => {
      reads++;
      return ['192.168.1.10'];
    },
  });
  for (let i = 0; i < 20; i++) entities.add(podEntity(200 + i, `p${i}`, 'n', [`10.1.0.${i}`]));
  await new Promise((resolve) => setTimeout(resolve, 100)); // a few refresh ticks
  assert.equal(reads, 0, 'nothing needed a peer: no build');
  assert.equal(r.counts.rebuilds, 0);
  // an event without a tuple needs no peer
  assert.equal(r.forEvent({ 'error.type': 'X' }, HOST, 1, 'x'), undefined);
  assert.equal(reads, 0);
  // the first use builds once, with every change so far
  assert.equal(r.resolve('10.1.0.19').info.pod, 'p19');
  assert.equal(r.forEvent({ 'network.peer.address': '192.168.1.10' }, HOST, 1, 'x')?.info.kind, 'host');
  assert.equal(reads, 1);
  // a discovery change: rebuilt at the next use, not before
  entities.remove(219);
  assert.equal(reads, 1);
  assert.equal(r.resolve('10.1.0.19').info.kind, 'unknown');
  assert.equal(reads, 2);
  // refreshMs passed: the next use re-reads the addresses (they change without a discovery change)
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(reads, 2);
  r.resolve('10.1.0.1');
  r.resolve('10.1.0.2');
  assert.equal(reads, 3);
  assert.equal(r.counts.rebuilds, 3);
  r.close();
});

test('per-peer counters: at most `limit` keys per metric; the rest counted as overflow; gone netns pruned', () => {
  const entities = new StaticEntitySource([HOST]);
  const r = new PeerResolver({ entities, refreshMs: 0, hostAddresses: () => [] });
  const kube = new KubeIndex();
  for (let i = 0; i < 5; i++)
    kube.upsert('pods', `n/p${i}`, {
      uid: `${i}`,
      name: `p${i}`,
      namespace: 'n',
      node: 'x',
      workload: `w${i}`,
      ips: [`10.1.0.${i}`],
    });
  r.setKube(kube);
  const c = new PeerCounters(3);
  for (let i = 0; i < 5; i++)
    for (let k = 0; k <= i; k++) c.add('podnet.tcp.reset', 7, r.resolve(`10.1.0.${i}`));
  c.add('podnet.socket.slow', 7, r.resolve('10.1.0.1')); // not a counted event
  const pts = c.points();
  assert.equal(pts.length, 3);
  assert.deepEqual(
    pts.map((p) => [p.attributes?.['podnet.peer.k8s.workload.name'], p.value]),
    [
      ['w0', 1],
      ['w1', 2],
      ['w2', 3],
    ],
  );
  assert.equal(c.overflow.get('podnet.peer.tcp.reset.events'), 4 + 5);
  c.prune(new Set([8]));
  assert.equal(c.points().length, 0);
  r.close();
});

test('/events peer filter: pod or Service as namespace/name or name, node, netns, kind', async () => {
  const { matchesFilter } = await import('../../receiver/otel/event-pipeline.ts');
  const rec = (attributes: Record<string, string>) =>
    ({
      time: '',
      timeUnixNano: '0',
      name: 'e',
      type: 't',
      severity: 'WARN',
      body: 'e t in host',
      probe: 'p',
      entity: 'host',
      attributes,
    }) as const;
  const pod = rec({
    'podnet.peer.kind': 'pod',
    'podnet.peer.k8s.pod.name': 'api-1',
    'podnet.peer.k8s.namespace.name': 'pay',
    'podnet.peer.k8s.service.name': 'api',
  });
  for (const p of ['pay/api-1', 'api-1', 'pay/api', 'api', 'pod'])
    assert.ok(matchesFilter(pod, { peer: p }), p);
  for (const p of ['shop/api', 'api-2', 'service', 'pay']) assert.ok(!matchesFilter(pod, { peer: p }), p);
  assert.ok(
    matchesFilter(rec({ 'podnet.peer.kind': 'node', 'podnet.peer.k8s.node.name': 'n2' }), { peer: 'n2' }),
  );
  assert.ok(
    matchesFilter(rec({ 'podnet.peer.kind': 'netns', 'podnet.peer.netns.name': 'blue' }), { peer: 'blue' }),
  );
  assert.ok(!matchesFilter(rec({}), { peer: 'unknown' }), 'an event without a tuple has no peer');
});

test("host addresses: read in the node's netns; when it cannot be entered, podnet's own stand in and that is logged once and reported", () => {
  // a netns with one address: nodeAddresses reads it from inside (ip's own listing is the ground truth)
  const ns = `pnpeerh${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'add', 'pnh0', 'type', 'veth', 'peer', 'name', 'pnh1']);
    execFileSync('ip', ['-n', ns, 'addr', 'add', '10.252.7.1/24', 'dev', 'pnh0']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'pnh1', 'up']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'pnh0', 'up']);
    const want = execFileSync('ip', ['-n', ns, '-o', '-4', 'addr', 'show', 'scope', 'global'], {
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[3]!.split('/')[0]!);
    const got = nodeAddresses(`/run/netns/${ns}`);
    assert.equal(got.fallback, undefined);
    assert.deepEqual(got.addresses.filter((a) => !a.includes(':')).sort(), want.sort());
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
  // not a netns: setns(2) refuses it; the fallback is this process's netns, and it says so
  const own = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && !a.internal)
    .map((a) => a!.address.split('%')[0]!);
  const bad = nodeAddresses('/proc/self/stat');
  assert.match(bad.fallback ?? '', /cannot read the node's addresses in \/proc\/self\/stat .*own netns used/);
  assert.deepEqual(bad.addresses.sort(), own.sort());
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => warnings.push(JSON.parse(l).msg) });
  const r = new PeerResolver({
    entities: new StaticEntitySource([]),
    log,
    refreshMs: 0,
    hostNetnsPath: '/proc/self/stat',
  });
  r.rebuild();
  r.close();
  assert.match(r.hostFallback ?? '', /own netns used/);
  assert.deepEqual(
    warnings,
    ["peer resolver: host addresses from podnet's own netns"],
    'logged once, not per rebuild',
  );
});
