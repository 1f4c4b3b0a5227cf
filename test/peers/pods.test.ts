// Peer identity on real events: real pods (private containerd + CRI on a bridge, test/env/cri), the real
// packetloss and tcpreset probes, pod discovery over CRI and the event pipeline with the peer resolver.
// Ground truth is what the test did (which pod connected where), the pod names CRI gave the pods and the
// addresses the kernel shows inside each pod; plus the per-peer counters against the kernel's own
// counters of the server pod (Tcp OutRsts, Udp NoPorts). The netns mode (no CRI) names named netns.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { peersProbe } from '../../probes/peers/peers.ts';
import { tcpresetProbe } from '../../probes/tcpreset/tcpreset.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { EventPipeline, type EventRecord } from '../../receiver/otel/event-pipeline.ts';
import { SelfTelemetry } from '../../receiver/otel/self-telemetry.ts';
import { Peers } from '../../receiver/peers/service.ts';
import type { EntitySource } from '../../receiver/pods/entity.ts';
import { EntityRegistry } from '../../receiver/pods/registry.ts';
import type { MetricPoint, Probe, ProbeContext } from '../../receiver/probe/types.ts';
import { firstJsonLine, killChild, waitFor } from '../ebpf/env.ts';
import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';

const FIXTURE = new URL('../ebpf/fixtures/traffic.ts', import.meta.url).pathname;
const log = childLogger('test-peers-pods');
let env: CriEnv | undefined;
let pair: NetnsPair | undefined;
const probes: Probe<unknown>[] = [];
const closers: (() => unknown)[] = [];
const children: ChildProcess[] = [];

before(async () => {
  env = await startCriEnv();
});
after(async () => {
  for (const c of children) killChild(c);
  for (const p of probes) await p.close();
  for (const c of closers) await c();
  pair?.cleanup();
  const report = await env?.teardown();
  if (report) assert.deepEqual(report.leftovers, []);
});

/** Event pipeline + peers over `entities`, and the anomaly probes feeding it. */
async function pipeline(entities: EntitySource, nodeName: string) {
  const peers = new Peers({ entities, nodeName, log, env: {}, refreshMs: 0 });
  closers.push(() => peers.close());
  await peers.configure({ enabled: true, kubernetes: { mode: 'off', max_addresses: 1000 } }, 1000);
  const events = new EventPipeline({ entities, self: new SelfTelemetry(), log, recent: 0 });
  const specs = [packetlossProbe, tcpresetProbe];
  events.configure({
    peers: peers.resolver,
    defs: specs.flatMap((s) => s.events.map((def) => ({ def, probe: s.name, enabled: true }))),
  });
  const records: EventRecord[] = [];
  events.subscribe((r) => records.push(r));
  const ctxOf = (probe: string): ProbeContext => ({
    log,
    entities,
    emit: (ev) => events.emit(probe, ev),
    peers,
  });
  const pl = await packetlossProbe.create(ctxOf('packetloss'), packetlossProbe.args.parse({ rateLimit: 0 }));
  const rs = await tcpresetProbe.create(ctxOf('tcpreset'), tcpresetProbe.args.parse({ rateLimit: 0 }));
  const counters = await peersProbe.create(ctxOf('peers'), {});
  probes.push(pl as Probe<unknown>, rs as Probe<unknown>, counters as Probe<unknown>);
  return { records, peers, counters };
}

function snmp(pid: number, group: string, field: string): number {
  const lines = readFileSync(`/proc/${pid}/net/snmp`, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${group}:`));
  const i = lines[0]!.split(/\s+/).indexOf(field);
  return Number(lines[1]!.split(/\s+/)[i]);
}

async function inPod(pod: TestPod, args: string[]): Promise<Record<string, unknown>> {
  const child = spawn('nsenter', [`--net=/proc/${pod.pid}/ns/net`, process.execPath, FIXTURE, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return firstJsonLine(child, `fixture ${args.join(' ')}`);
}

const sum = (points: readonly MetricPoint[], metric: string, netns: number, attrs: Record<string, string>) =>
  points
    .filter(
      (p) =>
        p.metric === metric &&
        p.netns === netns &&
        Object.entries(attrs).every(([k, v]) => p.attributes?.[k] === v),
    )
    .reduce((s, p) => s + (p.value as number), 0);

test('real pods: a reset and a drop between two pods carry each other as peers; traffic to the host shows host; per-peer counters == the kernel counters', async () => {
  const e = env!;
  const server = await e.runPod({ name: 'pp-server', namespace: 'shop' });
  const client = await e.runPod({ name: 'pp-client', namespace: 'web' });
  const reg = new EntityRegistry({ criEndpoint: e.endpoint, refreshIntervalMs: 60_000 });
  closers.push(() => reg.stop());
  await reg.start();
  const { records, counters, peers } = await pipeline(reg, 'node-test');
  const of = (pod: TestPod, type: string) =>
    records.filter((r) => r.entity === `${pod.namespace}/${pod.name}` && r.type === type);
  const peerKeys = { 'podnet.peer.kind': 'pod', 'podnet.peer.k8s.workload.name': 'pp-client' };
  // UDP first, alone: every datagram to the closed port is one drop the kernel counts in the server pod's
  // Udp NoPorts, so the per-peer drop counter must equal that counter's increase (nothing else from the
  // client is dropped in the server pod meanwhile; the TCP resets below come after the count is taken)
  const noports0 = snmp(server.pid, 'Udp', 'NoPorts');
  assert.equal((await inPod(client, ['udpsend', server.ip, '9', '7']))['sent'], 7);
  const udpDrops = () =>
    of(server, 'PACKETLOSS').filter(
      (r) => r.attributes['error.type'] === 'NO_SOCKET' && r.attributes['destination.port'] === 9,
    );
  assert.ok(await waitFor(() => udpDrops().length >= 7));
  const noports = snmp(server.pid, 'Udp', 'NoPorts') - noports0;
  assert.equal(noports, 7);
  assert.equal(udpDrops().length, noports);
  assert.equal(
    sum(
      await counters.collect(reg.entities()),
      'podnet.peer.packet.drop.events',
      server.netnsInode,
      peerKeys,
    ),
    noports,
  );
  for (const r of udpDrops()) {
    // a packet event: the peer is the side that is not the pod's own address
    assert.equal(r.attributes['source.address'], client.ip);
    assert.equal(r.attributes['podnet.peer.k8s.pod.name'], 'pp-client');
  }

  const rst0 = snmp(server.pid, 'Tcp', 'OutRsts');
  const n = 5;
  assert.equal((await inPod(client, ['refused', server.ip, '7101', String(n), '43000']))['refused'], n);
  assert.ok(await waitFor(() => of(server, 'TCPRESET_NOSOCK').length >= n));
  assert.ok(await waitFor(() => of(client, 'TCPRESET_RECEIVE').length >= n));
  for (const r of of(server, 'TCPRESET_NOSOCK')) {
    assert.equal(r.attributes['network.peer.address'], client.ip);
    assert.equal(r.attributes['podnet.peer.kind'], 'pod');
    assert.equal(r.attributes['podnet.peer.k8s.pod.name'], 'pp-client');
    assert.equal(r.attributes['podnet.peer.k8s.namespace.name'], 'web');
    assert.equal(r.attributes['podnet.peer.k8s.node.name'], 'node-test');
    assert.equal(r.peer, 'pod web/pp-client');
  }
  for (const r of of(client, 'TCPRESET_RECEIVE')) {
    assert.equal(r.attributes['podnet.peer.k8s.pod.name'], 'pp-server');
    assert.equal(r.attributes['podnet.peer.k8s.namespace.name'], 'shop');
  }
  // per-peer resets: the server pod's resets to the client's workload == its kernel counter (Tcp OutRsts)
  assert.equal(
    sum(await counters.collect(reg.entities()), 'podnet.peer.tcp.reset.events', server.netnsInode, peerKeys),
    snmp(server.pid, 'Tcp', 'OutRsts') - rst0,
  );

  // the host: a closed port on the bridge gateway (the host netns) answers with a reset
  assert.equal((await inPod(client, ['refused', e.gateway, '7102', '3', '43100']))['refused'], 3);
  assert.ok(
    await waitFor(
      () =>
        of(client, 'TCPRESET_RECEIVE').filter((r) => r.attributes['network.peer.address'] === e.gateway)
          .length >= 3,
    ),
  );
  for (const r of of(client, 'TCPRESET_RECEIVE').filter(
    (r) => r.attributes['network.peer.address'] === e.gateway,
  )) {
    assert.equal(r.attributes['podnet.peer.kind'], 'host');
    assert.equal(r.attributes['podnet.peer.k8s.node.name'], 'node-test');
  }
  const hostResets = () =>
    records.filter(
      (r) =>
        r.entity === 'host' && r.type === 'TCPRESET_NOSOCK' && r.attributes['network.local.port'] === 7102,
    );
  assert.ok(await waitFor(() => hostResets().length >= 3));
  for (const r of hostResets()) assert.equal(r.attributes['podnet.peer.k8s.pod.name'], 'pp-client');

  // churn: the server pod goes; after the discovery update its address resolves to nobody, and a new
  // pod's address to the new pod
  await e.removePod(server);
  await reg.refresh();
  assert.equal(peers.resolve(server.ip).info.kind, 'unknown');
  const again = await e.runPod({ name: 'pp-server2', namespace: 'shop' });
  await reg.refresh();
  assert.equal(peers.resolve(again.ip).info.pod, 'pp-server2');
});

test('netns mode (no CRI): events between two named netns carry podnet.peer.kind=netns and the peer netns name', async () => {
  removeStaleNetns('pnq');
  pair = createNetnsPair({ prefix: 'pnq', tag: 'pr', ipv4Net: '10.251.7' });
  const reg = new EntityRegistry({
    disableCri: true,
    netnsDiscovery: 'always',
    scanProc: false,
    refreshIntervalMs: 60_000,
  });
  closers.push(() => reg.stop());
  await reg.start();
  assert.equal(reg.byNetns(pair.a.inode)?.netnsName, pair.a.name);
  const { records } = await pipeline(reg, 'node-test');
  const child = pair.b.spawn(process.execPath, [FIXTURE, 'refused', pair.a.ipv4, '7201', '3', '43300'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  assert.equal((await firstJsonLine(child, 'refused'))['refused'], 3);
  const resets = (side: string, type: string) => records.filter((r) => r.entity === side && r.type === type);
  assert.ok(await waitFor(() => resets(pair!.a.name, 'TCPRESET_NOSOCK').length >= 3));
  assert.ok(await waitFor(() => resets(pair!.b.name, 'TCPRESET_RECEIVE').length >= 3));
  for (const r of resets(pair.a.name, 'TCPRESET_NOSOCK')) {
    assert.equal(r.attributes['podnet.peer.kind'], 'netns');
    assert.equal(r.attributes['podnet.peer.netns.name'], pair.b.name);
    assert.equal(r.peer, `netns ${pair.b.name}`);
  }
  for (const r of resets(pair.b.name, 'TCPRESET_RECEIVE'))
    assert.equal(r.attributes['podnet.peer.netns.name'], pair.a.name);
});
