// The procfs probes on real pods (private containerd + CRI + CNI bridge, test/env/cri), with entities
// from the real pod discovery (EntityRegistry): traffic between two pods, then every probe's values equal
// the kernel's ground truth read in the pod's netns (nsenter --net=/proc/<pause pid>/ns/net: nstat -az,
// ip -s -j link, /proc/net/sockstat) and, for the process probe, the pod's processes found independently
// (every /proc/<pid>/cgroup naming the pod's cgroup) with their /proc/<pid>/io and fd tables.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { netdevProbe } from '../../probes/netdev/netdev.ts';
import { processProbe } from '../../probes/process/process.ts';
import { SNMP_FIELDS } from '../../probes/snmp/fields.ts';
import { snmpProbe } from '../../probes/snmp/snmp.ts';
import { parseSockstat } from '../../probes/sockstat/parse.ts';
import { sockstatProbe } from '../../probes/sockstat/sockstat.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { EntityRegistry } from '../../receiver/pods/registry.ts';
import type { MetricPoint } from '../../receiver/probe/types.ts';
import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { type IpLinkStats, probeContext, procIo, stableRead, tag } from './env.ts';

let env: CriEnv;
let reg: EntityRegistry;
let web: TestPod;
let client: TestPod;

const inPod = (pid: number, cmd: string, ...args: string[]): string =>
  execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, cmd, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NSTAT_HISTORY: `/tmp/${tag}-cri-nstat` },
  });

before(async () => {
  env = await startCriEnv();
  web = await env.runPod({
    name: 'web',
    namespace: 'procfs',
    containers: [{ name: 'httpd', command: ['httpd', '-f', '-p', '8080', '-h', '/var/www'] }],
  });
  client = await env.runPod({ name: 'client', namespace: 'procfs', containers: [{ name: 'sh' }] });
  reg = new EntityRegistry({ criEndpoint: env.endpoint, refreshIntervalMs: 60_000 });
  await reg.start();
  // Traffic: 20 HTTP GETs client → web over the bridge, each awaited (stopped when this returns).
  let ok = 0;
  for (let i = 0; i < 40 && ok < 20; i++) {
    const r = await env.exec(client, ['wget', '-q', '-O', '-', `http://${web.ip}:8080/index.html`]);
    if (r.exitCode === 0) ok++;
  }
  assert.equal(ok, 20);
});
after(async () => {
  reg?.stop();
  const report = await env?.teardown();
  if (report) assert.deepEqual(report.leftovers, []);
});

function entityOf(pod: TestPod): Entity {
  const e = reg.entities().find((x) => x.pod?.uid === pod.uid);
  assert.ok(e, `pod ${pod.name} not discovered`);
  assert.equal(e.pid, pod.pid);
  return e;
}

test('real pods: netdev, snmp and sockstat equal ip -s link, nstat -az and sockstat in the pod netns', async () => {
  const netdev = await netdevProbe.create(probeContext(), netdevProbe.args.parse({}));
  const snmp = await snmpProbe.create(probeContext(), snmpProbe.args.parse({}));
  const sockstat = await sockstatProbe.create(probeContext(), sockstatProbe.args.parse({}));
  const kernelName = new Map(SNMP_FIELDS.map((f) => [f[3], [`${f[1]}${f[2]}`, f[7] ?? 1] as const]));
  for (const pod of [web, client]) {
    const e = entityOf(pod);
    const [truth, [nd, sn]] = await stableRead(
      () => ({
        links: JSON.parse(inPod(pod.pid, 'ip', '-s', '-j', 'link', 'show')) as IpLinkStats[],
        nstat: (JSON.parse(inPod(pod.pid, 'nstat', '-asz', '--json')) as { kernel: Record<string, number> })
          .kernel,
      }),
      async () => [await netdev.collect([e]), await snmp.collect([e])] as const,
    );
    // sockstat on its own: `ip` above opens a netlink socket in the pod netns, which `sockets: used`
    // counts until its deferred release; `cat` opens none.
    const [sockText, ss] = await stableRead(
      () => inPod(pod.pid, 'cat', '/proc/net/sockstat') + inPod(pod.pid, 'cat', '/proc/net/sockstat6'),
      () => sockstat.collect([e]),
    );
    // netdev: eth0 (lo excluded), every column
    const eth0 = truth.links.find((l) => l.ifname === 'eth0')!;
    const v = (points: readonly MetricPoint[], m: string, dir: string): number | undefined =>
      points.find(
        (p) =>
          p.metric === m &&
          p.attributes?.['network.interface.name'] === 'eth0' &&
          p.attributes['network.io.direction'] === dir,
      )?.value as number | undefined;
    assert.equal(v(nd, 'k8s.pod.network.io', 'receive'), eth0.stats64.rx.bytes);
    assert.equal(v(nd, 'k8s.pod.network.io', 'transmit'), eth0.stats64.tx.bytes);
    assert.equal(v(nd, 'podnet.network.packet.count', 'receive'), eth0.stats64.rx.packets);
    assert.equal(v(nd, 'podnet.network.packet.count', 'transmit'), eth0.stats64.tx.packets);
    assert.equal(v(nd, 'k8s.pod.network.errors', 'receive'), eth0.stats64.rx.errors);
    assert.equal(v(nd, 'podnet.network.packet.dropped', 'transmit'), eth0.stats64.tx.dropped);
    assert.ok(
      nd.every((p) => p.netns === e.netnsInode && p.attributes?.['network.interface.name'] === 'eth0'),
    );
    // snmp: every counter nstat prints
    let compared = 0;
    for (const p of sn) {
      const k = kernelName.get(p.metric);
      if (!k || !(k[0] in truth.nstat)) continue;
      assert.equal(p.value, truth.nstat[k[0]]! * k[1], `${pod.name} ${p.metric}`);
      compared++;
    }
    assert.ok(compared > 350, `${compared} snmp fields compared`);
    const snv = (m: string): number => sn.find((p) => p.metric === m)!.value as number;
    if (pod === web) assert.ok(snv('podnet.snmp.tcp.passive_opens') >= 20, 'web accepted the 20 GETs');
    else assert.ok(snv('podnet.snmp.tcp.active_opens') >= 20, 'client opened 20 connections');
    // sockstat
    const st = new Map(parseSockstat(sockText).map((x) => [`${x.proto}|${x.key}`, x.value]));
    const ssv = (m: string, t?: string): number | undefined =>
      ss.find((p) => p.metric === m && p.netns === e.netnsInode && p.attributes?.['network.type'] === t)
        ?.value as number | undefined;
    assert.equal(ssv('podnet.sockstat.tcp.inuse', 'ipv4'), st.get('TCP|inuse'));
    assert.equal(ssv('podnet.sockstat.tcp.inuse', 'ipv6'), st.get('TCP6|inuse'));
    assert.equal(ssv('podnet.sockstat.tcp.time_wait'), st.get('TCP|tw'));
    assert.equal(ssv('podnet.sockstat.sockets.used'), st.get('sockets|used'));
    if (pod === web) {
      const inuse =
        (ssv('podnet.sockstat.tcp.inuse', 'ipv4') ?? 0) + (ssv('podnet.sockstat.tcp.inuse', 'ipv6') ?? 0);
      assert.ok(inuse >= 1, 'httpd listens (dual-stack: TCP6)');
    }
  }
});

/** The pod's processes, found independently: every /proc/<pid>/cgroup that names the pod's cgroup. */
function podPids(uid: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cgroup`, 'utf8').includes(`/pod${uid}`)) out.push(Number(d));
    } catch {
      // exited
    }
  }
  return out;
}

test('real pods: process probe (cgroup match through the pod cgroup parent) equals the pod processes', async () => {
  const probe = await processProbe.create(probeContext(), processProbe.args.parse({ match: 'cgroup' }));
  for (const pod of [web, client]) {
    const e = entityOf(pod);
    assert.ok(e.pod?.cgroupParent, 'discovery provides the cgroup parent');
    const [truth, points] = await stableRead(
      () => {
        const pids = podPids(pod.uid).sort();
        const io = { syscr: 0, syscw: 0, rchar: 0, wchar: 0 };
        let fds = 0;
        const sockets = new Set<string>();
        for (const pid of pids) {
          const x = procIo(pid);
          for (const k of Object.keys(io) as (keyof typeof io)[]) io[k] += x[k]!;
          for (const fd of readdirSync(`/proc/${pid}/fd`)) {
            fds++;
            try {
              const t = readlinkSync(`/proc/${pid}/fd/${fd}`);
              if (t.startsWith('socket:')) sockets.add(t);
            } catch {
              // closed
            }
          }
        }
        return { pids, io, fds, sockets: sockets.size };
      },
      () => probe.collect([e]),
    );
    assert.equal(truth.pids.length, 2, `${pod.name}: pause + one container process`);
    const pv = (m: string, op?: string): number =>
      points.find(
        (p) => p.metric === m && (op === undefined || p.attributes?.['podnet.io.operation'] === op),
      )!.value as number;
    assert.equal(pv('podnet.process.instances'), truth.pids.length);
    assert.equal(pv('podnet.process.file_descriptors'), truth.fds);
    assert.equal(pv('podnet.process.sockets'), truth.sockets);
    assert.equal(pv('podnet.process.io.syscalls', 'read'), truth.io.syscr);
    assert.equal(pv('podnet.process.io.syscalls', 'write'), truth.io.syscw);
    assert.equal(pv('podnet.process.io.chars', 'read'), truth.io.rchar);
    assert.equal(pv('podnet.process.io.chars', 'write'), truth.io.wchar);
    if (pod === web) assert.ok(truth.sockets >= 1, 'httpd holds its listening socket');
  }
});
