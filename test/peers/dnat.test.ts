// The Service on the pre-DNAT address, with the real kernel: a client netns connects to a "ClusterIP"
// that an nft DNAT rule (what kube-proxy does) translates to the server netns. Conntrack's original tuple
// (ctevents) and the client socket (a reset it receives) carry the ClusterIP → the Service; the server
// side sees the translated tuple → the client pod. Identities: the two netns as pods (as CRI would give
// them) and a cluster view with the Service and its EndpointSlice (as the API would give them).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cteventsProbe } from '../../probes/ctevents/ctevents.ts';
import { tcpresetProbe } from '../../probes/tcpreset/tcpreset.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { EventPipeline, type EventRecord } from '../../receiver/otel/event-pipeline.ts';
import { SelfTelemetry } from '../../receiver/otel/self-telemetry.ts';
import { KubeIndex } from '../../receiver/peers/kube/index.ts';
import { PeerResolver } from '../../receiver/peers/resolver.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { tcpFixture, waitFor } from '../ebpf/env.ts';
import { createNetnsPair, type NetnsPair, type NetnsSide, removeStaleNetns } from '../env/netns.ts';

const CLUSTER_IP = '10.96.77.7';
const log = childLogger('test-peers-dnat');
let pair: NetnsPair;
const probes: Probe<unknown>[] = [];
let resolver: PeerResolver | undefined;

before(() => {
  removeStaleNetns('pnq');
  pair = createNetnsPair({ prefix: 'pnq', tag: 'dn', ipv4Net: '10.251.8' });
});
after(async () => {
  for (const p of probes) await p.close();
  resolver?.close();
  pair?.cleanup();
});

const podOf = (side: NetnsSide, name: string, namespace: string): Entity => ({
  kind: 'pod',
  netnsInode: side.inode,
  netnsPath: side.path,
  pod: {
    uid: `u-${name}`,
    name,
    namespace,
    labels: {},
    ips: [side.ipv4],
    sandboxId: `s-${name}`,
    hostNetwork: false,
  },
  displayName: `${namespace}/${name}`,
});

test('conntrack original tuple and the client socket name the Service; the server sees the client pod', async () => {
  const { a, b } = pair;
  // kube-proxy's job, in the client netns: ClusterIP:80 → the server's 7501 (closed: it answers with a reset)
  a.exec('ip', ['route', 'add', `${CLUSTER_IP}/32`, 'dev', a.ifname]);
  a.exec('nft', [
    `add table ip pnqdnat; add chain ip pnqdnat out { type nat hook output priority -100; }; add rule ip pnqdnat out ip daddr ${CLUSTER_IP} tcp dport 80 counter dnat to ${b.ipv4}:7501`,
  ]);
  const entities = new StaticEntitySource([podOf(a, 'web-1', 'shop'), podOf(b, 'api-1', 'pay')]);
  const kube = new KubeIndex();
  kube.upsert('services', 'pay/api', { name: 'api', namespace: 'pay', ips: [CLUSTER_IP] });
  kube.upsert('endpointslices', 'pay/api-x', {
    key: 'pay/api-x',
    namespace: 'pay',
    service: 'api',
    ips: [b.ipv4],
  });
  resolver = new PeerResolver({ entities, nodeName: 'n1', kube, refreshMs: 0 });
  const events = new EventPipeline({ entities, self: new SelfTelemetry(), log, recent: 0 });
  events.configure({
    peers: resolver,
    defs: [cteventsProbe, tcpresetProbe].flatMap((s) =>
      s.events.map((def) => ({ def, probe: s.name, enabled: true })),
    ),
  });
  const records: EventRecord[] = [];
  events.subscribe((r) => records.push(r));
  for (const spec of [cteventsProbe, tcpresetProbe] as const) {
    const ctx = {
      log,
      entities,
      emit: (ev: Parameters<EventPipeline['emit']>[1]) => events.emit(spec.name, ev),
    };
    probes.push((await spec.create(ctx, spec.args.parse({ rateLimit: 0 }) as never)) as Probe<unknown>);
  }
  const n = 4;
  const { result } = await tcpFixture(a, ['refused', CLUSTER_IP, '80', String(n), '45000']);
  assert.equal(result['refused'], n);
  const of = (entity: string, type: string) => records.filter((r) => r.entity === entity && r.type === type);
  // client side: conntrack NEW with the original tuple (before DNAT)
  assert.ok(
    await waitFor(
      () =>
        of('shop/web-1', 'ConntrackNew').filter((r) => r.attributes['destination.port'] === 80).length >= n,
    ),
  );
  for (const r of of('shop/web-1', 'ConntrackNew').filter((r) => r.attributes['destination.port'] === 80)) {
    assert.equal(r.attributes['destination.address'], CLUSTER_IP);
    assert.equal(r.attributes['podnet.conntrack.reply.source.address'], b.ipv4, 'the kernel did DNAT');
    assert.equal(r.attributes['podnet.peer.kind'], 'service');
    assert.equal(r.attributes['podnet.peer.k8s.service.name'], 'api');
    assert.equal(r.attributes['podnet.peer.k8s.namespace.name'], 'pay');
  }
  // client side: the reset its socket received names the address it connected to: the Service
  assert.ok(await waitFor(() => of('shop/web-1', 'TCPRESET_RECEIVE').length >= n));
  for (const r of of('shop/web-1', 'TCPRESET_RECEIVE')) {
    assert.equal(r.attributes['network.peer.address'], CLUSTER_IP);
    assert.equal(r.peer, 'service pay/api');
  }
  // server side: the translated tuple, from the client pod
  assert.ok(await waitFor(() => of('pay/api-1', 'TCPRESET_NOSOCK').length >= n));
  for (const r of of('pay/api-1', 'TCPRESET_NOSOCK')) {
    assert.equal(r.attributes['network.peer.address'], a.ipv4);
    assert.equal(r.peer, 'pod shop/web-1');
  }
  // exactly as many as the kernel translated: a nat chain sees the first packet of each connection, so the
  // DNAT rule's counter is the number of connections to the ClusterIP
  const dnatted = nftRuleCounter(a, 'pnqdnat');
  assert.equal(dnatted, n);
  const ct80 = of('shop/web-1', 'ConntrackNew').filter((r) => r.attributes['destination.port'] === 80);
  assert.equal(ct80.length, dnatted);
  assert.equal(of('shop/web-1', 'TCPRESET_RECEIVE').length, dnatted);
  assert.equal(of('pay/api-1', 'TCPRESET_NOSOCK').length, dnatted);
});

/** Packets counted by the one counter rule of an nft table (nft's JSON listing). */
function nftRuleCounter(side: NetnsSide, table: string): number {
  const doc = JSON.parse(side.exec('nft', ['-j', 'list', 'table', 'ip', table])) as {
    nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[];
  };
  const counters = doc.nftables.flatMap(
    (o) => o.rule?.expr.flatMap((e) => (e.counter ? [e.counter] : [])) ?? [],
  );
  assert.equal(counters.length, 1, JSON.stringify(doc));
  return counters[0]!.packets;
}
