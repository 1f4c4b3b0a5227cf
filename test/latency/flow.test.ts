// flow on a real pod-like setup: a netns whose veth peer lives in the host netns (the "host-side veth"
// that pod discovery reports as Entity.hostVeth). UDP from the pod to the host side and back; counts must
// equal what was sent, bytes include the Ethernet header; detaching on entity removal.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { after, before, test } from 'node:test';
import koffi from 'koffi';
import { type FlowArgs, flowProbe, M } from '../../probes/flow/flow.ts';
import { socketInNetns } from '../../receiver/netns/setns.ts';
import { Peers } from '../../receiver/peers/service.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricPoint, Probe } from '../../receiver/probe/types.ts';
import { removeStaleNetns, sockaddr } from '../env/netns.ts';
import { testContext } from './env.ts';

const NS = `pnt${process.pid}fp`;
const VETH = `pnt${process.pid}fh`;
const HOST_IP = '10.252.0.1';
const POD_IP = '10.252.0.2';
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const probes: Probe<FlowArgs>[] = [];
let pod: Entity;

before(() => {
  removeStaleNetns('pnt');
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['link', 'add', VETH, 'type', 'veth', 'peer', 'name', `${VETH}p`]);
  sh('ip', ['link', 'set', `${VETH}p`, 'netns', NS, 'name', 'eth0']);
  sh('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', VETH]);
  sh('ip', ['link', 'set', VETH, 'up']);
  sh('ip', ['-n', NS, 'addr', 'add', `${POD_IP}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', NS, 'link', 'set', 'eth0', 'up']);
  // static neighbours: no ARP in the counts
  const mac = (args: string[]) =>
    (JSON.parse(sh('ip', ['-j', ...args])) as { address: string }[])[0]!.address;
  sh('ip', [
    '-n',
    NS,
    'neigh',
    'replace',
    HOST_IP,
    'lladdr',
    mac(['link', 'show', VETH]),
    'dev',
    'eth0',
    'nud',
    'permanent',
  ]);
  sh('ip', [
    'neigh',
    'replace',
    POD_IP,
    'lladdr',
    mac(['-n', NS, 'link', 'show', 'eth0']),
    'dev',
    VETH,
    'nud',
    'permanent',
  ]);
  const path = `/run/netns/${NS}`;
  pod = {
    kind: 'netns',
    netnsInode: statSync(path).ino,
    netnsPath: path,
    netnsName: NS,
    hostVeth: VETH,
    displayName: NS,
  };
});
after(async () => {
  for (const p of probes) await p.close();
  try {
    sh('ip', ['netns', 'del', NS]);
  } catch {}
  try {
    sh('ip', ['link', 'del', VETH]);
  } catch {}
});

const libc = koffi.load('libc.so.6');
const sendto = libc.func('intptr_t sendto(int, const void *, size_t, int, const void *, uint32_t)') as (
  fd: number,
  b: Uint8Array,
  n: number,
  f: number,
  a: Uint8Array,
  l: number,
) => number;
const closeFd = libc.func('int close(int)') as (fd: number) => number;

/** n UDP datagrams of `size` bytes from the pod netns to addr:port, from one socket. */
function sendFromPod(addr: string, port: number, n: number, size: number): void {
  const sa = sockaddr(addr, port);
  const fd = socketInNetns(`/run/netns/${NS}`, 2, 2, 0);
  try {
    const buf = Buffer.alloc(size, 1);
    for (let i = 0; i < n; i++) assert.equal(sendto(fd, buf, size, 0, sa.bytes, sa.bytes.length), size);
  } finally {
    closeFd(fd);
  }
}

/** TCX links of flow programs attached to the test veth (bpftool 7.1 shows tcx links only as `type 11`). */
function flowLinks(): number {
  const progs = JSON.parse(sh('bpftool', ['-j', 'prog', 'show'])) as { id: number; name?: string }[];
  const ids = new Set(
    progs.filter((x) => x.name === 'flow_ingress' || x.name === 'flow_egress').map((x) => x.id),
  );
  const ifindex = Number(sh('cat', [`/sys/class/net/${VETH}/ifindex`]).trim());
  const links = JSON.parse(sh('bpftool', ['-j', 'link', 'show'])) as { prog_id: number; ifindex?: number }[];
  return links.filter((l) => ids.has(l.prog_id) && (l.ifindex === undefined || l.ifindex === ifindex)).length;
}

const pick = (points: readonly MetricPoint[], metric: string, match: Record<string, string | number>) =>
  points
    .filter((p) => p.metric === metric && p.netns === pod.netnsInode)
    .filter((p) => Object.entries(match).every(([k, v]) => p.attributes?.[k] === v))
    .reduce((s, p) => s + (p.value as number), 0);

test('pod → peer UDP counted on the host-side veth: packets and bytes exact, no ports by default', async () => {
  const ctx = testContext([pod]);
  const probe = await flowProbe.create(ctx, flowProbe.args.parse({}));
  probes.push(probe);
  assert.equal(probe.status().state, 'running', probe.status().reason);
  assert.equal(flowLinks(), 2, 'ingress and egress TCX links');
  const n = 57;
  const size = 300;
  sendFromPod(HOST_IP, 9, n, size);
  await new Promise((r) => setTimeout(r, 100));
  const p = await probe.collect([]);
  const tx = {
    'network.io.direction': 'transmit',
    'network.transport': 'udp',
    'network.peer.address': HOST_IP,
  };
  assert.equal(pick(p, M.packets, tx), n);
  assert.equal(pick(p, M.bytes, tx), n * (size + 8 + 20 + 14));
  const one = p.find((x) => x.metric === M.packets && x.attributes?.['network.transport'] === 'udp');
  assert.equal(one?.attributes?.['network.local.address'], POD_IP);
  assert.equal(one?.attributes?.['network.type'], 'ipv4');
  assert.equal(one?.attributes?.['network.peer.port'], undefined, 'ports off by default');
  // the host answers with ICMP port unreachable (rate limited): received by the pod
  assert.ok(pick(p, M.packets, { 'network.io.direction': 'receive', 'network.transport': 'icmp' }) >= 1);
  // entity gone: links closed, series gone
  ctx.source.remove(pod.netnsInode);
  assert.equal(flowLinks(), 0, 'links closed when the pod is gone');
  const p2 = await probe.collect([]);
  assert.equal(p2.filter((x) => x.netns === pod.netnsInode).length, 0);
  await probe.close();
});

test('ports: true keys flows by port', async () => {
  const ctx = testContext([pod]);
  const probe = await flowProbe.create(ctx, flowProbe.args.parse({ ports: true }));
  probes.push(probe);
  sendFromPod(HOST_IP, 4001, 5, 100);
  sendFromPod(HOST_IP, 4002, 7, 100);
  await new Promise((r) => setTimeout(r, 100));
  const p = await probe.collect([]);
  const tx = { 'network.io.direction': 'transmit', 'network.transport': 'udp' };
  assert.equal(pick(p, M.packets, { ...tx, 'network.peer.port': 4001 }), 5);
  assert.equal(pick(p, M.packets, { ...tx, 'network.peer.port': 4002 }), 7);
  await probe.close();
  assert.equal(flowLinks(), 0, 'close() detaches');
});

test('peer keys on the flow series (ProbeContext.peers): the host side of the veth resolves to host', async () => {
  const ctx = testContext([pod]);
  const peers = new Peers({
    entities: ctx.source,
    nodeName: 'node-flow',
    log: ctx.log,
    env: {},
    refreshMs: 0,
  });
  await peers.configure({ enabled: true, kubernetes: { mode: 'off', max_addresses: 100 } }, 100);
  const probe = await flowProbe.create({ ...ctx, peers }, flowProbe.args.parse({}));
  probes.push(probe);
  sendFromPod(HOST_IP, 9, 4, 100);
  await new Promise((r) => setTimeout(r, 100));
  const p = await probe.collect([]);
  const s = p.find(
    (x) =>
      x.metric === M.packets &&
      x.attributes?.['network.peer.address'] === HOST_IP &&
      x.attributes?.['network.io.direction'] === 'transmit',
  );
  assert.equal(
    s?.attributes?.['podnet.peer.kind'],
    'host',
    'HOST_IP is on the host-side veth, in the host netns',
  );
  assert.equal(s?.attributes?.['podnet.peer.k8s.node.name'], 'node-flow');
  await probe.close();
  await peers.close();
});
