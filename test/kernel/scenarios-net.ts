// Kernel-reach scenarios on the network path (scenarios.ts runs them): flow on a host-side veth (TCX or
// clsact) against the veth's own counters, netdev/snmp against ip -s link / nstat in a test netns.
import { execFileSync } from 'node:child_process';
import koffi from 'koffi';
import { flowProbe } from '../../probes/flow/flow.ts';
import { netdevProbe } from '../../probes/netdev/netdev.ts';
import { SNMP_FIELDS } from '../../probes/snmp/fields.ts';
import { snmpProbe } from '../../probes/snmp/snmp.ts';
import { socketInNetns } from '../../receiver/netns/setns.ts';
import type { MetricPoint, Probe } from '../../receiver/probe/types.ts';
import { nstat, sideEntity, sleep, testContext } from '../ebpf/env.ts';
import { type NetnsPair, sockaddr } from '../env/netns.ts';
import type { Fact } from './scenarios.ts';

const sh = (cmd: string, args: readonly string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

const libc = koffi.load('libc.so.6');
const sendto = libc.func('intptr_t sendto(int, const void *, size_t, int, const void *, uint32_t)');
const closeFd = libc.func('int close(int)');

/** n UDP datagrams from the netns at `path` to addr:port (IPv4). */
export function sendUdpFrom(path: string, addr: string, port: number, n: number): void {
  const sa = sockaddr(addr, port);
  const fd = socketInNetns(path, 2, 2, 0) as number;
  try {
    const buf = Buffer.alloc(64, 1);
    for (let i = 0; i < n; i++) sendto(fd, buf, buf.length, 0, sa.bytes, sa.bytes.length);
  } finally {
    closeFd(fd);
  }
}

/** flow on a host-side veth, attach mode `mode` (auto = TCX where the kernel has it, else clsact). */
export async function flowFacts(mode: 'auto' | 'tc', prefix = 'pnkr'): Promise<Fact[]> {
  const ns = `${prefix}${process.pid}f${mode === 'tc' ? 't' : 'a'}`;
  const veth = `${ns}h`;
  const facts: Fact[] = [];
  sh('ip', ['netns', 'add', ns]);
  let probe: Probe | undefined;
  try {
    sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`]);
    sh('ip', ['link', 'set', `${veth}p`, 'netns', ns, 'name', 'eth0']);
    sh('ip', ['addr', 'add', '10.253.0.1/24', 'dev', veth]);
    sh('ip', ['link', 'set', veth, 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', '10.253.0.2/24', 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    // no IPv6 (router solicitations, MLD) on the link: the counts are the test's datagrams only
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
    sh('sysctl', ['-q', '-w', `net.ipv6.conf.${veth}.disable_ipv6=1`]);
    const mac = (JSON.parse(sh('ip', ['-j', 'link', 'show', veth])) as { address: string }[])[0]!.address;
    sh('ip', ['-n', ns, 'neigh', 'replace', '10.253.0.1', 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
    // and the host's entry for the pod: no ARP from the host (its ICMP replies) in the veth's rx count
    const podMac = (
      JSON.parse(sh('ip', ['-n', ns, '-j', 'link', 'show', 'eth0'])) as { address: string }[]
    )[0]!.address;
    sh('ip', ['neigh', 'replace', '10.253.0.2', 'lladdr', podMac, 'dev', veth, 'nud', 'permanent']);
    const inode = Number(sh('stat', ['-L', '-c', '%i', `/run/netns/${ns}`]).trim());
    const ctx = testContext([
      {
        kind: 'netns',
        netnsInode: inode,
        netnsPath: `/run/netns/${ns}`,
        netnsName: ns,
        hostVeth: veth,
        displayName: ns,
      },
    ]);
    probe = await flowProbe.create(ctx, flowProbe.args.parse({ attachMode: mode }));
    const st = probe.status();
    const sent = (pts: readonly MetricPoint[]) =>
      pts
        .filter((p) => p.metric === 'podnet.flow.packet.count' && p.netns === inode)
        .filter((p) => p.attributes?.['network.io.direction'] === 'transmit')
        .reduce((s, p) => s + (p.value as number), 0);
    const p0 = sent(await probe.collect([]));
    const rx0 = (
      JSON.parse(sh('ip', ['-s', '-j', 'link', 'show', veth])) as { stats64: { rx: { packets: number } } }[]
    )[0]!.stats64.rx.packets;
    const n = 41;
    sendUdpFrom(`/run/netns/${ns}`, '10.253.0.1', 9, n);
    await sleep(200);
    const rx1 = (
      JSON.parse(sh('ip', ['-s', '-j', 'link', 'show', veth])) as { stats64: { rx: { packets: number } } }[]
    )[0]!.stats64.rx.packets;
    const podnet = sent(await probe.collect([])) - p0;
    facts.push({
      id: `flow.${mode}`,
      what: `flow (attachMode ${mode}): packets the pod sent == the host veth's rx packets (ip -s link)`,
      expected: { state: 'running', kernel: n, podnet: n },
      actual: { state: st.state, kernel: rx1 - rx0, podnet },
      info: { attachMode: st.details?.['attachMode'], reason: st.reason ?? null },
    });
    await probe.close();
    probe = undefined;
    const filters = sh('tc', ['filter', 'show', 'dev', veth, 'ingress']).trim();
    facts.push({
      id: `flow.${mode}.detached`,
      what: `flow (attachMode ${mode}): close() leaves no filter on the veth`,
      expected: '',
      actual: filters,
    });
  } finally {
    await probe?.close();
    try {
      sh('ip', ['link', 'del', veth]);
    } catch {}
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {}
  }
  return facts;
}

/** netdev and snmp of a netns == ip -s -j link and nstat -az read inside it (no traffic meanwhile). */
export async function procfsFacts(pair: NetnsPair): Promise<Fact[]> {
  const { b } = pair;
  const entity = sideEntity(b);
  const ctx = testContext([entity]);
  const netdev = await netdevProbe.create(ctx, netdevProbe.args.parse({ excludeInterfaces: [] }));
  const snmp = await snmpProbe.create(ctx, snmpProbe.args.parse({}));
  try {
    const links = JSON.parse(sh('ip', ['-n', b.name, '-s', '-j', 'link', 'show'])) as {
      ifname: string;
      stats64: { rx: { bytes: number; packets: number }; tx: { bytes: number; packets: number } };
    }[];
    const nd = await netdev.collect([entity]);
    const kernel = nstat(b.name);
    const sn = await snmp.collect([entity]);
    const links2 = sh('ip', ['-n', b.name, '-s', '-j', 'link', 'show']);
    const val = (metric: string, ifname: string, dir: string) =>
      nd.find(
        (p) =>
          p.metric === metric &&
          p.attributes?.['network.interface.name'] === ifname &&
          p.attributes?.['network.io.direction'] === dir,
      )?.value;
    const netdevDiff: string[] = [];
    for (const l of links) {
      const want: [string, string, number][] = [
        ['k8s.pod.network.io', 'receive', l.stats64.rx.bytes],
        ['k8s.pod.network.io', 'transmit', l.stats64.tx.bytes],
        ['podnet.network.packet.count', 'receive', l.stats64.rx.packets],
        ['podnet.network.packet.count', 'transmit', l.stats64.tx.packets],
      ];
      for (const [m, dir, v] of want)
        if (val(m, l.ifname, dir) !== v)
          netdevDiff.push(`${l.ifname} ${m} ${dir}: ${val(m, l.ifname, dir)} != ${v}`);
    }
    // snmp points by the kernel's name (group + field, as nstat prints it)
    const kname = new Map(SNMP_FIELDS.map((f) => [f[3], { name: `${f[1]}${f[2]}`, scale: f[7] ?? 1 }]));
    const snmpDiff: string[] = [];
    let compared = 0;
    for (const p of sn) {
      const k = kname.get(p.metric);
      if (!k || p.attributes?.['podnet.icmp.type'] !== undefined) continue;
      const v = kernel.get(k.name);
      if (v === undefined) continue; // levels nstat does not print
      compared++;
      if (p.value !== v * k.scale) snmpDiff.push(`${k.name}: ${p.value} != ${v * k.scale}`);
    }
    return [
      {
        id: 'procfs.netdev',
        what: 'netdev == ip -s -j link (bytes, packets, every interface of the netns)',
        expected: { quiet: true, diff: [] },
        actual: { quiet: JSON.stringify(links) === JSON.stringify(JSON.parse(links2)), diff: netdevDiff },
      },
      {
        id: 'procfs.snmp',
        what: 'snmp == nstat -az in the netns (every counter nstat prints)',
        expected: { comparedSome: true, diff: [] },
        actual: { comparedSome: compared > 50, diff: snmpDiff },
        info: { compared },
      },
    ];
  } finally {
    await netdev.close();
    await snmp.close();
  }
}
