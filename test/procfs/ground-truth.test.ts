// netdev, snmp and sockstat against the kernel's ground truth read in the same netns right before and
// right after (nstat -az, ip -s -j link, /proc/net/sockstat via ip netns exec), after real traffic
// between two test-created netns. Entities: the named netns (read via setns) and the same netns through
// the pid of a process inside it (read via /proc/<pid>/net). Exact equality, traffic stopped.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { netdevProbe } from '../../probes/netdev/netdev.ts';
import { SNMP_FIELDS } from '../../probes/snmp/fields.ts';
import { parseSnmp } from '../../probes/snmp/parse.ts';
import { SNMP_METRICS, SnmpResolver, snmpProbe } from '../../probes/snmp/snmp.ts';
import { SOCKSTAT_METRICS, sockstatProbe } from '../../probes/sockstat/sockstat.ts';
import { hostNetnsInode } from '../../receiver/netns/setns.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { SeriesKey } from '../../receiver/probe/sink.ts';
import type { MetricDef, MetricPoint } from '../../receiver/probe/types.ts';
import { pageSize } from '../../receiver/procfs/read.ts';
import {
  catNet,
  type IpLinkStats,
  ipLinkStats,
  makeTraffic,
  namedEntity,
  nsA,
  nsB,
  nstat,
  pidEntity,
  probeContext,
  setupNetns,
  stableRead,
  startWorker,
  stopWorker,
  tag,
  teardownNetns,
  type Worker,
} from './env.ts';

let worker: Worker | undefined;
let entities: { ns: string; entity: Entity }[] = [];

before(async () => {
  setupNetns();
  worker = await startWorker(nsA, 0);
  makeTraffic();
  entities = [
    { ns: nsA, entity: namedEntity(nsA) },
    { ns: nsA, entity: pidEntity(nsA, worker.pid) },
    { ns: nsB, entity: namedEntity(nsB) },
  ];
});
after(() => {
  stopWorker(worker);
  teardownNetns();
});

function checkDeclared(points: readonly MetricPoint[], defs: readonly MetricDef[]): void {
  const byName = new Map(defs.map((d) => [d.name, d]));
  for (const p of points) {
    const d = byName.get(p.metric);
    assert.ok(d, `undeclared metric ${p.metric}`);
    assert.equal(typeof p.value, 'number');
    for (const k of Object.keys(p.attributes ?? {}))
      assert.ok(d.attributes.includes(k), `${p.metric}: undeclared attribute ${k}`);
    if (d.kind === 'counter') assert.ok((p.value as number) >= 0, `${p.metric} negative`);
  }
}

test('netdev equals ip -s -j link in the same netns (bytes, packets, errors, drops; lo excluded by default)', async () => {
  const probe = await netdevProbe.create(probeContext(), netdevProbe.args.parse({}));
  const all = await netdevProbe.create(probeContext(), netdevProbe.args.parse({ excludeInterfaces: [] }));
  for (const { ns, entity } of entities) {
    const [truth, [points, withLo]] = await stableRead(
      () => ipLinkStats(ns),
      async () => [await probe.collect([entity]), await all.collect([entity])] as const,
    );
    checkDeclared(points, netdevProbe.metrics);
    assert.ok(points.every((p) => p.netns === entity.netnsInode));
    const ifaces = new Set(points.map((p) => p.attributes!['network.interface.name']));
    assert.ok(!ifaces.has('lo'), 'lo excluded by default');
    assert.ok(
      withLo.some((p) => p.attributes!['network.interface.name'] === 'lo'),
      'lo reported when not excluded',
    );
    const veth = ns === nsA ? `${tag}x` : `${tag}y`;
    assert.ok(ifaces.has(veth));
    let compared = 0;
    for (const link of truth) {
      const { rx: r, tx: t } = link.stats64;
      const z = (v: number | undefined): number => v ?? 0; // ip omits some zero details (compressed)
      // [receive, transmit]; undefined = the metric has no point for that direction
      const expect: Record<string, [number | undefined, number | undefined]> = {
        'k8s.pod.network.io': [r.bytes, t.bytes],
        'k8s.pod.network.errors': [r.errors, t.errors],
        'podnet.network.packet.count': [r.packets, t.packets],
        'podnet.network.packet.dropped': [r.dropped + z(r.missed_errors ?? r.missed), t.dropped],
        'podnet.network.multicast': [z(r.multicast), undefined],
        'podnet.network.fifo_errors': [z(r.fifo_errors), z(t.fifo_errors)],
        'podnet.network.frame_errors': [
          z(r.length_errors) + z(r.over_errors) + z(r.crc_errors) + z(r.frame_errors),
          undefined,
        ],
        'podnet.network.carrier_errors': [
          undefined,
          z(t.carrier_errors) + z(t.aborted_errors) + z(t.window_errors) + z(t.heartbeat_errors),
        ],
        'podnet.network.collisions': [undefined, z(t.collisions)],
        'podnet.network.compressed': [z(r.compressed), z(t.compressed)],
      };
      for (const [metric, [rx, tx]] of Object.entries(expect)) {
        const find = (dir: string): number | undefined =>
          withLo.find(
            (p) =>
              p.metric === metric &&
              p.attributes!['network.interface.name'] === link.ifname &&
              p.attributes!['network.io.direction'] === dir,
          )?.value as number | undefined;
        assert.equal(find('receive'), rx, `${entity.displayName} ${link.ifname} ${metric} receive`);
        assert.equal(find('transmit'), tx, `${entity.displayName} ${link.ifname} ${metric} transmit`);
        compared += (rx === undefined ? 0 : 1) + (tx === undefined ? 0 : 1);
      }
    }
    assert.equal(withLo.length, compared, 'one point per interface, metric and direction');
    // The traffic was real: the veth carried the bulk transfer (2 MiB, read to the end by B).
    const vethTx = points.find(
      (p) =>
        p.metric === 'k8s.pod.network.io' &&
        p.attributes!['network.interface.name'] === veth &&
        p.attributes!['network.io.direction'] === (ns === nsA ? 'transmit' : 'receive'),
    );
    assert.ok((vethTx?.value as number) > 2_000_000, `${veth} carried the 2 MB transfer`);
    // (veth does not count multicast nor any of the error details: those columns are 0 = 0 here; the
    // parser tests cover their positions with distinct values.)
  }
});

// Kernel name (as nstat prints it) of each point.
const KERNEL_NAME = new Map(SNMP_FIELDS.map((f) => [f[3], { name: `${f[1]}${f[2]}`, scale: f[7] ?? 1 }]));
function kernelName(p: MetricPoint): { name: string; scale: number } {
  const t = p.attributes?.['podnet.icmp.type'];
  if (t !== undefined) {
    const [, group, dir] = /^podnet\.snmp\.(icmp6?_msg)\.(in|out)$/.exec(p.metric)!;
    return {
      name: `${group === 'icmp_msg' ? 'IcmpMsg' : 'Icmp6'}${dir === 'in' ? 'In' : 'Out'}Type${t}`,
      scale: 1,
    };
  }
  const k = KERNEL_NAME.get(p.metric);
  assert.ok(k, `no kernel field for ${p.metric}`);
  return k;
}

/** Levels nstat does not print: read from the snmp file inside the netns. */
function rawSnmp(ns: string): Record<string, number> {
  const o: Record<string, number> = {};
  for (const file of ['snmp', 'netstat']) {
    const lines = catNet(ns, file).trim().split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = lines[i]!.split(' ');
      const values = lines[i + 1]!.split(' ');
      const g = names[0]!.slice(0, -1);
      for (let j = 1; j < names.length; j++) o[`${g}${names[j]}`] = Number(values[j]);
    }
  }
  return o;
}

test('snmp equals nstat -az in the same netns, for every field the kernel prints', async () => {
  const probe = await snmpProbe.create(probeContext(), snmpProbe.args.parse({}));
  for (const { ns, entity } of entities) {
    const [[ns0, raw], points] = await stableRead(
      () => [nstat(ns), rawSnmp(ns)] as const,
      () => probe.collect([entity]),
    );
    checkDeclared(points, SNMP_METRICS);
    const seen = new Set<string>();
    for (const p of points) {
      assert.equal(p.netns, entity.netnsInode);
      const { name, scale } = kernelName(p);
      assert.ok(!seen.has(name), `duplicate ${name}`);
      seen.add(name);
      const expect = name in ns0 ? ns0[name]! : raw[name];
      assert.notEqual(expect, undefined, `${name} neither in nstat nor in the file`);
      assert.equal(p.value, expect! * scale, `${entity.displayName}: ${p.metric} (${name})`);
    }
    // Completeness: every counter nstat reports has its point.
    const missing = Object.keys(ns0).filter((k) => !seen.has(k));
    assert.deepEqual(missing, [], 'nstat fields without a point');
    // Gauges are the levels; all of them are there.
    const gauges = SNMP_METRICS.filter((d) => d.kind === 'gauge').map((d) => d.name);
    assert.deepEqual(gauges.sort(), [
      'podnet.snmp.ip.default_ttl',
      'podnet.snmp.ip.forwarding',
      'podnet.snmp.mptcp_ext.mp_curr_estab',
      'podnet.snmp.tcp.curr_estab',
      'podnet.snmp.tcp.max_conn',
      'podnet.snmp.tcp.rto_algorithm',
      'podnet.snmp.tcp.rto_max',
      'podnet.snmp.tcp.rto_min',
    ]);
    const v = (m: string): number => points.find((p) => p.metric === m)!.value as number;
    // The traffic was real and landed where expected.
    if (ns === nsA) {
      assert.ok(
        v('podnet.snmp.tcp.active_opens') >= 3,
        'worker, bulk transfer and refused connect opened connections',
      );
      assert.ok(v('podnet.snmp.tcp.attempt_fails') >= 1, 'refused connect');
      assert.ok(v('podnet.snmp.tcp.curr_estab') >= 2, 'worker connection established');
      assert.ok(v('podnet.snmp.ip6.out_requests') > 0);
      assert.equal(v('podnet.snmp.tcp.rto_min'), 0.2, 'ms converted to s');
      assert.equal(v('podnet.snmp.tcp.max_conn'), -1);
    } else {
      assert.ok(v('podnet.snmp.tcp.out_rsts') >= 1, 'RST for the refused connect');
      assert.ok(v('podnet.snmp.udp.no_ports') >= 2, 'UDP to closed ports');
      assert.ok(v('podnet.snmp.udp6.no_ports') >= 1);
      assert.ok(v('podnet.snmp.ip.in_receives') > 10, 'ping + TCP + UDP packets received');
    }
  }
});

test('snmp: the metrics arg limits the work to the enabled set; dynamic exports unlisted fields', async () => {
  const only = SNMP_METRICS.filter((d) => d.enabled).map((d) => d.name);
  assert.equal(only.length, 69, 'default-on: the 69 fields KubeSkoop exports');
  const probe = await snmpProbe.create(probeContext(), snmpProbe.args.parse({ metrics: only }));
  const points = await probe.collect([entities[0]!.entity]);
  assert.deepEqual(new Set(points.map((p) => p.metric)), new Set(only));
  // A field a later kernel adds (not in the static table) is exported only with `dynamic: true`.
  const all = () => true;
  assert.equal(new SnmpResolver(all, false).resolve('TcpExt', 'TCPFutureThing'), null);
  const unlisted = new SnmpResolver(all, true).resolve('TcpExt', 'TCPFutureThing');
  const attributes = { 'podnet.snmp.group': 'TcpExt', 'podnet.snmp.field': 'TCPFutureThing' };
  assert.deepEqual(unlisted, {
    metric: 'podnet.snmp.unlisted',
    scale: 1,
    attributes,
    key: new SeriesKey('podnet.snmp.unlisted', attributes),
  });
  assert.deepEqual(new SnmpResolver(all, true).snmp6('UdpLite6NewOne')?.attributes, {
    'podnet.snmp.group': 'UdpLite6',
    'podnet.snmp.field': 'NewOne',
  });
  // Listed fields never go to `unlisted`.
  assert.equal(new SnmpResolver(all, true).resolve('Tcp', 'OutRsts')?.metric, 'podnet.snmp.tcp.out_rsts');
  assert.equal(new SnmpResolver(all, false).snmp6('Icmp6OutType135')?.attributes?.['podnet.icmp.type'], 135);
});

/**
 * `/proc/net/sockstat{,6}` as `PROTO|key` → value, split here rather than with podnet's parser: each line
 * is `PROTO: key value key value ...` (net/ipv4/proc.c sockstat_seq_show, net/ipv6/proc.c).
 */
function sockstatTruth(...texts: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of texts.join('\n').split('\n')) {
    const colon = line.indexOf(': ');
    if (colon < 0) continue;
    const words = line
      .slice(colon + 2)
      .trim()
      .split(/\s+/);
    assert.equal(words.length % 2, 0, `sockstat line is not key/value pairs: ${line}`);
    for (let i = 0; i < words.length; i += 2)
      out.set(`${line.slice(0, colon)}|${words[i]}`, Number(words[i + 1]));
  }
  return out;
}

test('sockstat equals /proc/net/sockstat{,6} read inside the netns; host-wide values once per node', async () => {
  const probe = await sockstatProbe.create(probeContext(), sockstatProbe.args.parse({}));
  const page = pageSize();
  for (const { ns, entity } of entities) {
    const [[v4, v6], points] = await stableRead(
      () => [catNet(ns, 'sockstat'), catNet(ns, 'sockstat6')] as const,
      () => probe.collect([entity]),
    );
    checkDeclared(points, SOCKSTAT_METRICS);
    const truth = sockstatTruth(v4, v6);
    const get = (m: string, t?: string): number | undefined =>
      points.find(
        (p) => p.metric === m && p.netns === entity.netnsInode && p.attributes?.['network.type'] === t,
      )?.value as number | undefined;
    const expect: [string, string | undefined, string][] = [
      ['podnet.sockstat.sockets.used', undefined, 'sockets|used'],
      ['podnet.sockstat.tcp.inuse', 'ipv4', 'TCP|inuse'],
      ['podnet.sockstat.tcp.inuse', 'ipv6', 'TCP6|inuse'],
      ['podnet.sockstat.tcp.time_wait', undefined, 'TCP|tw'],
      ['podnet.sockstat.udp.inuse', 'ipv4', 'UDP|inuse'],
      ['podnet.sockstat.udp.inuse', 'ipv6', 'UDP6|inuse'],
      ['podnet.sockstat.udp_lite.inuse', 'ipv4', 'UDPLITE|inuse'],
      ['podnet.sockstat.udp_lite.inuse', 'ipv6', 'UDPLITE6|inuse'],
      ['podnet.sockstat.raw.inuse', 'ipv4', 'RAW|inuse'],
      ['podnet.sockstat.raw.inuse', 'ipv6', 'RAW6|inuse'],
      ['podnet.sockstat.frag.inuse', 'ipv4', 'FRAG|inuse'],
      ['podnet.sockstat.frag.inuse', 'ipv6', 'FRAG6|inuse'],
      ['podnet.sockstat.frag.memory', 'ipv4', 'FRAG|memory'],
      ['podnet.sockstat.frag.memory', 'ipv6', 'FRAG6|memory'],
    ];
    for (const [m, t, k] of expect)
      assert.equal(get(m, t), truth.get(k), `${entity.displayName} ${m} ${t ?? ''}`);
    assert.equal(points.filter((p) => p.netns === entity.netnsInode).length, expect.length);
    // Node-scope points: no netns, host-wide values (the same in every netns's file). They move with
    // every TCP socket on the machine, so they get their own quiet-moment read.
    const [host, nodeRead] = await stableRead(
      () => catNet(nsA, 'sockstat').split('\n')[1]!,
      () => probe.collect([entity]),
      80,
    );
    const nodePoints = nodeRead.filter((p) => p.netns === undefined);
    const hostTcp = sockstatTruth(host);
    const tv = (k: string): number => hostTcp.get(`TCP|${k}`)!;
    const nv = (m: string): number => nodePoints.find((p) => p.metric === m)!.value as number;
    assert.equal(nv('podnet.sockstat.tcp.orphan'), tv('orphan'));
    assert.equal(nv('podnet.sockstat.tcp.allocated'), tv('alloc'));
    assert.equal(nv('podnet.sockstat.tcp.memory'), tv('mem') * page);
    assert.equal(nodePoints.length, 4);
    for (const p of nodePoints) {
      assert.equal(SOCKSTAT_METRICS.find((d) => d.name === p.metric)!.scope, 'node');
    }
    if (ns === nsA) {
      assert.ok((get('podnet.sockstat.tcp.inuse', 'ipv4') ?? 0) >= 3, 'worker listener + connection pair');
      assert.ok((get('podnet.sockstat.tcp.inuse', 'ipv6') ?? 0) >= 1, 'worker v6 listener');
      assert.ok((get('podnet.sockstat.udp.inuse', 'ipv6') ?? 0) >= 1, 'worker v6 UDP socket');
    }
  }
  assert.notEqual(entities[0]!.entity.netnsInode, hostNetnsInode);
});

test('snmp of the raw file: parser agrees with an independent split-based reading', () => {
  const text = catNet(nsB, 'snmp');
  const raw = rawSnmp(nsB);
  for (const g of parseSnmp(text)) {
    for (let i = 0; i < g.fields.length; i++) assert.equal(g.values[i], raw[`${g.group}${g.fields[i]}`]);
  }
});

test('host entity: read in the receiver netns directly, equals nstat -az and ip -s -j link of the host', async () => {
  const host: Entity = {
    kind: 'host',
    netnsInode: hostNetnsInode,
    netnsPath: '/proc/self/ns/net',
    displayName: 'host',
  };
  const snmp = await snmpProbe.create(probeContext(), snmpProbe.args.parse({}));
  const netdev = await netdevProbe.create(probeContext(), netdevProbe.args.parse({ excludeInterfaces: [] }));
  const hostNstat = (): Record<string, number> =>
    (
      JSON.parse(
        execFileSync('nstat', ['-asz', '--json'], {
          encoding: 'utf8',
          env: { ...process.env, NSTAT_HISTORY: `/tmp/${tag}-host-nstat` },
        }),
      ) as { kernel: Record<string, number> }
    ).kernel;
  const [truth, points] = await stableRead(hostNstat, () => snmp.collect([host]), 80);
  let compared = 0;
  for (const p of points) {
    assert.equal(p.netns, hostNetnsInode);
    const { name, scale } = kernelName(p);
    if (!(name in truth)) continue;
    // nstat (iproute2 6.1) prints counters modulo 2^32; the host's IpExt octets pass that on a busy machine.
    const value = p.value as number;
    assert.equal(value >= 2 ** 32 ? value % 2 ** 32 : value, truth[name]! * scale, `host ${name}`);
    compared++;
  }
  assert.ok(compared > 350);
  const [links, nd] = await stableRead(
    () => JSON.parse(execFileSync('ip', ['-s', '-j', 'link', 'show'], { encoding: 'utf8' })) as IpLinkStats[],
    () => netdev.collect([host]),
    80,
  );
  // The host netns is the node: its bytes are k8s.node.network.io (no k8s.pod.network.io point).
  assert.equal(nd.filter((p) => p.metric === 'k8s.pod.network.io').length, 0);
  for (const l of links) {
    const rx = nd.find(
      (p) =>
        p.metric === 'k8s.node.network.io' &&
        p.attributes?.['network.interface.name'] === l.ifname &&
        p.attributes['network.io.direction'] === 'receive',
    );
    assert.equal(rx?.value, l.stats64.rx.bytes, `host ${l.ifname}`);
  }
});
