// Kernel-reach scenario of the whole agent (scenarios.ts runs it, on this machine and in the 6.1 VM): one
// agent with EVERY probe enabled (default args, as `podnet run` with `probes.<name>.enabled: true` for all),
// on a pod-like netns whose host-side veth carries both flow's and dns's TC programs (TCX links on 6.6+,
// two cls_bpf filters on one clsact qdisc before). DNS over UDP and TCP and plain UDP from the pod; then:
//   - every probe is in the state its availability (`podnet probes`) promises (agent.status() = /status);
//   - flow counts what the veth's own counters (ip -s link) count, both directions;
//   - dns counts what dig saw and unbound logged;
//   - both TC programs on both hooks of the veth (tc filter show, or the TCX links' fdinfo);
//   - stop() leaves no BPF link or program the agent held in the kernel's lists (bpftool link / prog show),
//     no TC filter running one of its programs on any host-netns device (tc filter show), no bpf fd open.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { M as DNS } from '../../probes/dns/dns.ts';
import { probeSpecs } from '../../probes/registry.ts';
import type { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { HOST_ENTITY } from '../../receiver/pods/entity.ts';
import type { MetricPoint } from '../../receiver/probe/types.ts';
import { createPodNetns } from '../dns/hostveth.ts';
import { DnsServer, dig } from '../dns/server.ts';
import { counterPoint } from '../latency/env.ts';
import type { Fact } from './scenarios.ts';
import { sendUdpFrom } from './scenarios-net.ts';

const sh = (cmd: string, args: readonly string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Host-netns devices with a clsact (or ingress) qdisc: only those can hold the filters (one `tc` call
 * instead of two per device: each process start is ~0.1 s under the VM's TCG).
 */
const clsactDevices = () =>
  (JSON.parse(sh('tc', ['-j', 'qdisc', 'show'])) as { kind: string; dev: string }[])
    .filter((q) => q.kind === 'clsact' || q.kind === 'ingress')
    .map((q) => q.dev);

/** `tc filter show` lines of both clsact hooks of every host-netns device, by `device hook`. */
function tcFilters(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const dev of clsactDevices())
    for (const hook of ['ingress', 'egress']) {
      let f = '';
      try {
        f = sh('tc', ['filter', 'show', 'dev', dev, hook]).trim();
      } catch {} // an ingress qdisc has no egress hook
      if (f) out[`${dev} ${hook}`] = f.split('\n');
    }
  return out;
}

/** BPF link and program ids the kernel has now (bpftool). */
function bpfIds(kind: 'link' | 'prog'): number[] {
  return (JSON.parse(sh('bpftool', ['-j', kind, 'show'])) as { id: number }[]).map((x) => x.id);
}

/** BPF link and program ids this process holds fds of (/proc/self/fdinfo: link_id, prog_id). */
function ownBpf(): { fds: number; links: number[]; progs: number[] } {
  const out = { fds: 0, links: [] as number[], progs: [] as number[] };
  for (const fd of readdirSync('/proc/self/fd')) {
    let info: string;
    try {
      if (!/^anon_inode:bpf[-_](link|prog)$/.test(readlinkSync(`/proc/self/fd/${fd}`))) continue;
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // the fd readdir itself used, closed by now
    }
    out.fds++;
    const link = /^link_id:\t(\d+)$/m.exec(info)?.[1];
    const prog = /^prog_id:\t(\d+)$/m.exec(info)?.[1];
    if (link) out.links.push(Number(link));
    if (prog) out.progs.push(Number(prog));
  }
  return out;
}

/**
 * What the agent's BPF objects left after stop(): of the links and programs it held while running, those
 * the kernel still lists, and the TC filters still running one of those programs. By the agent's own ids:
 * on a shared machine other processes' programs (the same probes' too) come and go meanwhile.
 */
function leftBehind(own: { links: number[]; progs: number[] }) {
  const filters: Record<string, string[]> = {};
  for (const [dev, lines] of Object.entries(tcFilters())) {
    const left = lines.filter((l) => own.progs.includes(Number(/ id (\d+)/.exec(l)?.[1])));
    if (left.length) filters[dev] = left;
  }
  return {
    filters,
    links: bpfIds('link').filter((id) => own.links.includes(id)),
    progs: bpfIds('prog').filter((id) => own.progs.includes(id)),
  };
}

/**
 * Program names on the veth's two hooks: its clsact filters (tc filter show), or the TCX links on it that
 * this process holds (/proc/self/fdinfo: the kernel names each link's ifindex and hook; bpftool 7.1 of
 * Debian 12/13 does not decode TCX links, and the kernel-wide list has other processes' links).
 */
function programsOnVeth(mode: string, veth: string): Record<string, string[]> {
  const names = new Map(
    (JSON.parse(sh('bpftool', ['-j', 'prog', 'show'])) as { id: number; name?: string }[]).map((p) => [
      p.id,
      p.name ?? '',
    ]),
  );
  const name = (id: string) => names.get(Number(id)) ?? `?${id}`;
  if (mode === 'tc') {
    const hook = (h: string) =>
      [...sh('tc', ['filter', 'show', 'dev', veth, h]).matchAll(/ id (\d+)/g)].map((m) => name(m[1]!)).sort();
    return { ingress: hook('ingress'), egress: hook('egress') };
  }
  const ifindex = String(
    (JSON.parse(sh('ip', ['-j', 'link', 'show', veth])) as { ifindex: number }[])[0]!.ifindex,
  );
  const out: Record<string, string[]> = { ingress: [], egress: [] };
  for (const fd of readdirSync('/proc/self/fd')) {
    let info: Record<string, string>;
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:bpf_link') continue;
      info = Object.fromEntries(
        readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
          .split('\n')
          .map((l) => l.split(':\t') as [string, string]),
      );
    } catch {
      continue; // the fd readdir itself used, closed by now
    }
    const hook = /\((ingress|egress)\)/.exec(info['attach_type'] ?? '')?.[1];
    if (info['link_type'] === 'tcx' && info['ifindex'] === ifindex && hook)
      out[hook]!.push(name(info['prog_id']!));
  }
  return { ingress: out['ingress']!.sort(), egress: out['egress']!.sort() };
}

/** rx / tx packets of a host-netns device (ip -s link). */
function vethPackets(dev: string): { rx: number; tx: number } {
  const s = (
    JSON.parse(sh('ip', ['-s', '-j', 'link', 'show', dev])) as {
      stats64: { rx: { packets: number }; tx: { packets: number } };
    }[]
  )[0]!.stats64;
  return { rx: s.rx.packets, tx: s.tx.packets };
}

/** flow's packets of one netns in one direction (transmit = what the pod sent). */
const flowPackets = (pts: readonly MetricPoint[], inode: number, dir: 'transmit' | 'receive') =>
  pts
    .filter((p) => p.metric === 'podnet.flow.packet.count' && p.netns === inode)
    .filter((p) => p.attributes?.['network.io.direction'] === dir)
    .reduce((s, p) => s + (p.value as number), 0);

export async function agentFacts(): Promise<Fact[]> {
  const t00 = Date.now();
  // imported here, counted in this scenario's time: the agent pulls in the whole OTel SDK and exporters,
  // which the other scenarios do not need (under the VM's TCG the import is seconds)
  const { Agent } = await import('../../receiver/agent/agent.ts');
  const importMs = Date.now() - t00;
  const pod = createPodNetns('g', 77);
  let server: DnsServer | undefined;
  let agent: Agent | undefined;
  const facts: Fact[] = [];
  try {
    server = await DnsServer.start(pod.host);
    // IPv4 only from the pod from here on: no router solicitation or MLD report of its own in the counts
    sh('ip', ['netns', 'exec', pod.side.name, 'sysctl', '-q', '-w', 'net.ipv6.conf.eth0.disable_ipv6=1']);
    const fds0 = ownBpf().fds;
    const t0 = Date.now();
    agent = await Agent.start({
      configText: `collection_interval: 10m
server: { enabled: false }
exporters: { prometheus: { enabled: false } }
probes:
${probeSpecs.map((s) => `  ${s.name}: { enabled: true }`).join('\n')}
`,
      entitySource: new StaticEntitySource([HOST_ENTITY, pod.entity]),
      env: {},
    });
    const startMs = Date.now() - t0;
    await agent.collectNow();
    // /status's probe list against what availability (`podnet probes`) says of each probe on this kernel
    const st = agent.status() as { probes: { name: string; state: string; reason: string | null }[] };
    const expectedStates: Record<string, string> = {};
    for (const spec of probeSpecs) {
      const a = await spec.availability();
      expectedStates[spec.name] = !a.available
        ? 'unavailable'
        : (a.reason ?? '').startsWith('partly')
          ? 'degraded'
          : 'running';
    }
    const states = Object.fromEntries(st.probes.map((p) => [p.name, p.state]));
    facts.push({
      id: 'agent.states',
      what: 'all probes in one agent: each in the state its availability promises (/status)',
      expected: expectedStates,
      actual: states,
      info: {
        startMs,
        reasons: Object.fromEntries(st.probes.filter((p) => p.reason).map((p) => [p.name, p.reason])),
      },
    });
    const veth = pod.entity.hostVeth!;
    const own = ownBpf();
    const mode = String(agent.probe('flow')?.status().details?.['attachMode'] ?? '');
    const vethPrograms = programsOnVeth(mode, veth);
    const flow = agent.probe('flow');
    const dns = agent.probe('dns');
    if (!flow || !dns) throw new Error(`flow or dns not running: ${JSON.stringify(states)}`);
    const tTraffic = Date.now();
    const f0 = await flow.collect([]);
    const k0 = vethPackets(veth);
    // traffic: DNS over UDP (answered, NXDOMAIN, SERVFAIL) and TCP, and plain UDP to a closed port
    const seen: Record<string, number> = {};
    const ask = (name: string, tcp = false) => {
      const r = dig(pod.side, pod.host.ipv4, name, { tcp });
      seen[r.status] = (seen[r.status] ?? 0) + 1;
    };
    for (let i = 0; i < 5; i++) ask('a.ok.podnet');
    for (let i = 0; i < 2; i++) ask(`nx${i}.ok.podnet`);
    for (let i = 0; i < 2; i++) ask(`s${i}.fail.podnet`);
    for (let i = 0; i < 2; i++) ask('a.ok.podnet', true);
    sendUdpFrom(pod.entity.netnsPath!, pod.host.ipv4, 9, 41);
    for (const end = Date.now() + 5000; server.replies.length < 11 && Date.now() < end; ) await sleep(50);
    await sleep(200);
    const k1 = vethPackets(veth);
    const trafficMs = Date.now() - tTraffic;
    const f1 = await flow.collect([]);
    const inode = pod.side.inode;
    facts.push({
      id: 'agent.flow',
      what: "all probes in one agent: flow == the host veth's ip -s link (rx = what the pod sent, tx = what it got)",
      expected: { sent: k1.rx - k0.rx, received: k1.tx - k0.tx, someTraffic: true },
      actual: {
        sent: flowPackets(f1, inode, 'transmit') - flowPackets(f0, inode, 'transmit'),
        received: flowPackets(f1, inode, 'receive') - flowPackets(f0, inode, 'receive'),
        someTraffic: k1.rx - k0.rx > 41,
      },
      info: { kernel: { rx: k1.rx - k0.rx, tx: k1.tx - k0.tx } },
    });
    const p = await dns.collect([]);
    const n = (metric: string, m: Record<string, string>) => counterPoint(p, metric, inode, m);
    const logged = (rc: string) => server!.count(pod.side.ipv4, rc);
    const RC = 'podnet.dns.response_code';
    facts.push({
      id: 'agent.dns',
      what: "all probes in one agent: dns (UDP and TCP answers) == dig and unbound's log",
      expected: {
        dig: { NOERROR: 7, NXDOMAIN: 2, SERVFAIL: 2 },
        server: [7, 2, 2],
        udp: { queries: 9, noerror: 5, nxdomain: 2, servfail: 2 },
        tcpAnswers: 2,
      },
      actual: {
        dig: seen,
        server: [logged('NOERROR'), logged('NXDOMAIN'), logged('SERVFAIL')],
        udp: {
          queries: n(DNS.queries, { 'network.transport': 'udp' }),
          noerror: n(DNS.responses, { 'network.transport': 'udp', [RC]: 'NOERROR' }),
          nxdomain: n(DNS.responses, { 'network.transport': 'udp', [RC]: 'NXDOMAIN' }),
          servfail: n(DNS.responses, { 'network.transport': 'udp', [RC]: 'SERVFAIL' }),
        },
        tcpAnswers: n(DNS.responses, { 'network.transport': 'tcp', [RC]: 'NOERROR' }),
      },
      info: { dnsState: dns.status().state, flowState: flow.status().state },
    });
    const t1 = Date.now();
    await agent.stop();
    const stopMs = Date.now() - t1;
    agent = undefined;
    facts.push({
      id: 'agent.detached',
      what: 'all probes in one agent: both TC programs were on the veth, and stop() removes every TC filter and BPF link / program it added',
      expected: {
        vethPrograms: {
          ingress: ['dns_tc_ingress', 'flow_ingress'],
          egress: ['dns_tc_egress', 'flow_egress'],
        },
        left: { filters: {}, links: [], progs: [] },
        ownBpfFds: fds0,
      },
      actual: {
        vethPrograms,
        left: leftBehind(own),
        ownBpfFds: ownBpf().fds,
      },
      // ms: the whole scenario (vm.test.ts prints it: the VM test's budget)
      info: {
        ms: Date.now() - t00,
        importMs,
        startMs,
        trafficMs,
        stopMs,
        held: { links: own.links.length, progs: own.progs.length },
      },
    });
  } finally {
    await agent?.stop();
    server?.stop();
    pod.cleanup();
  }
  return facts;
}
