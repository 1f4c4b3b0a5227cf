// dns probe, default hook (`tc`): the host netns's own DNS (the node, hostNetwork pods) is seen by the TC
// programs on the host's own devices (probes/dns/hostdev.ts), not by tracepoints. dig runs in the host
// netns against unbound in a test netns behind a bridge the test creates (what a CNI bridge is to the
// host): UDP and TCP, IPv4 and IPv6, each SERVFAIL an event naming the server, equal to dig and unbound's
// log. A pod-like netns with a host-side veth in the same probe: its veth carries the pod programs, the
// bridge port and the veth get no host programs (a packet between two pods crosses no host device).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { type DnsArgs, dnsProbe, M } from '../../probes/dns/dns.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { removeStaleNetns } from '../env/netns.ts';
import { counterPoint, type TestContext, testContext, waitFor } from '../latency/env.ts';
import { createPodNetns, type PodNetns } from './hostveth.ts';
import { DnsServer, type ServerSide } from './server.ts';

const RC = 'podnet.dns.response_code';
const sh = (cmd: string, args: readonly string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const ns = `pnd${process.pid}s`;
const br = `pnd${process.pid}b`;
const port = `pnd${process.pid}q`;
const O = 73;
const hostIp = { v4: `10.252.${O}.1`, v6: `fd00:252:${O}::1` };
const srvSide: ServerSide = {
  ipv4: `10.252.${O}.2`,
  ipv6: `fd00:252:${O}::2`,
  exec: (cmd, args = []) => sh('ip', ['netns', 'exec', ns, cmd, ...args]),
  spawn: (cmd, args = [], opts = {}) => spawn('ip', ['netns', 'exec', ns, cmd, ...args], opts),
};
let pod: PodNetns;
let server: DnsServer;
let ctx: TestContext;
let probe: Probe<DnsArgs>;

const cleanup = () => {
  for (const args of [
    ['netns', 'del', ns],
    ['link', 'del', port],
    ['link', 'del', br],
  ])
    try {
      sh('ip', args);
    } catch {}
};

/** Names of the programs this process holds TCX links of on `ifindex` (the kernel's link fdinfo). */
function tcxOn(ifindex: number): string[] {
  const names: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:bpf_link') continue;
      const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
      if (!/^link_type:\s+tcx$/m.test(info) || Number(/^ifindex:\s+(\d+)/m.exec(info)?.[1]) !== ifindex)
        continue;
      const id = /^prog_id:\s+(\d+)/m.exec(info)?.[1];
      names.push(
        (JSON.parse(sh('bpftool', ['-j', 'prog', 'show', 'id', String(id)])) as { name: string }).name,
      );
    } catch {
      // fd closed meanwhile
    }
  }
  return names.sort();
}

function tally(xs: readonly string[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return m;
}

/** dig in the host netns (this process's): its status. */
function hostDig(server: string, name: string, o: { tcp?: boolean; type?: string } = {}): string {
  let out: string;
  try {
    out = sh('dig', [`@${server}`, name, o.type ?? 'A', '+tries=1', '+time=2', ...(o.tcp ? ['+tcp'] : [])]);
  } catch (err) {
    out = String((err as { stdout?: string }).stdout ?? '');
  }
  return /status: (\w+)/.exec(out)?.[1] ?? `ERROR ${out}`;
}

before(async () => {
  removeStaleNetns('pnd');
  cleanup();
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0']);
  sh('ip', ['link', 'add', br, 'type', 'bridge']);
  sh('ip', ['addr', 'add', `${hostIp.v4}/24`, 'dev', br]);
  sh('ip', ['addr', 'add', `${hostIp.v6}/64`, 'dev', br, 'nodad']);
  sh('ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', `${port}x`]);
  sh('ip', ['link', 'set', `${port}x`, 'netns', ns, 'name', 'eth0']);
  sh('ip', ['link', 'set', port, 'master', br, 'up']);
  sh('ip', ['link', 'set', br, 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', `${srvSide.ipv4}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', ns, 'addr', 'add', `${srvSide.ipv6}/64`, 'dev', 'eth0', 'nodad']);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  server = await DnsServer.start(srvSide);
  pod = createPodNetns('h', 74);
  ctx = testContext([pod.entity]);
  probe = await dnsProbe.create(ctx, dnsProbe.args.parse({ rateLimit: 0 }));
});

after(async () => {
  await probe?.close();
  server?.stop();
  pod?.cleanup();
  cleanup();
});

test('default hook: the host netns DNS on its own devices, UDP and TCP, v4 and v6, as dig and unbound saw it', async () => {
  const st = probe.status();
  assert.equal(st.state, 'running', JSON.stringify(st));
  assert.equal(st.details?.['hook'], 'tc');
  const devs = st.details?.['hostDevices'] as string[];
  assert.ok(devs.includes(br) && devs.includes('lo'), JSON.stringify(devs));
  assert.ok(!devs.includes(port), 'a bridge port: its packets cross the bridge too');
  assert.ok(!devs.includes(pod.entity.hostVeth!), "a pod's veth carries the pod programs only");
  assert.deepEqual(st.details?.['attached'], [pod.entity.hostVeth]);
  const ifx = (dev: string) => Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8'));
  assert.deepEqual(tcxOn(ifx(pod.entity.hostVeth!)), ['dns_tc_egress', 'dns_tc_ingress']);
  assert.deepEqual(tcxOn(ifx(port)), []);
  assert.deepEqual(tcxOn(ifx(br)), ['dns_host_egress', 'dns_host_ingress']);

  const seen: string[] = [];
  for (let i = 0; i < 3; i++) seen.push(hostDig(srvSide.ipv4, 'a.ok.podnet'));
  for (let i = 0; i < 2; i++) seen.push(hostDig(srvSide.ipv4, `s${i}.fail.podnet`));
  for (let i = 0; i < 2; i++) seen.push(hostDig(srvSide.ipv4, `t${i}.fail.podnet`, { tcp: true }));
  for (let i = 0; i < 2; i++) seen.push(hostDig(srvSide.ipv6, `u${i}.fail.podnet`, { type: 'AAAA' }));
  seen.push(hostDig(srvSide.ipv6, 'a.ok.podnet', { type: 'AAAA', tcp: true }));
  assert.deepEqual(tally(seen), { NOERROR: 4, SERVFAIL: 6 });
  const logged = (rc: string) => server.count(hostIp.v4, rc) + server.count(hostIp.v6, rc);
  await waitFor(() => logged('NOERROR') + logged('SERVFAIL') >= 10, 3000);
  assert.deepEqual([logged('NOERROR'), logged('SERVFAIL')], [4, 6]);

  // events name the server: only these queries (other DNS of this host may be counted under netns 0 too)
  const failed = () =>
    ctx.events.filter(
      (e) =>
        e.name === 'podnet.dns.failed' &&
        [srvSide.ipv4, srvSide.ipv6].includes(String(e.attributes['server.address'])),
    );
  await waitFor(() => failed().length >= 6, 3000);
  const by = (k: string) => tally(failed().map((e) => String(e.attributes[k])));
  assert.deepEqual(by('network.transport'), { udp: 4, tcp: 2 });
  assert.deepEqual(by('server.address'), { [srvSide.ipv4]: 4, [srvSide.ipv6]: 2 });
  assert.deepEqual(
    failed()
      .map((e) => String(e.attributes['dns.question.name']))
      .sort(),
    [
      's0.fail.podnet',
      's1.fail.podnet',
      't0.fail.podnet',
      't1.fail.podnet',
      'u0.fail.podnet',
      'u1.fail.podnet',
    ],
  );
  // the host is not a watched entity here: its counts are under netns 0, at least ours (this host's other DNS adds)
  const p = await probe.collect([]);
  const n = (metric: string, m: Record<string, string>) => counterPoint(p, metric, 0, m);
  assert.ok(n(M.responses, { [RC]: 'SERVFAIL' }) >= 6);
  assert.ok(n(M.responses, { [RC]: 'NOERROR', 'network.transport': 'tcp' }) >= 1);
  assert.ok(n(M.queries, { 'network.transport': 'udp' }) >= 7);
  // nothing of it counted under the pod
  assert.equal(counterPoint(p, M.queries, pod.side.inode), 0);
});

test('a device that appears later is taken at the next sweep; close() detaches every host device', async () => {
  const late = `pnd${process.pid}d`;
  try {
    sh('ip', ['link', 'add', late, 'type', 'bridge']); // no dummy module on this kernel
    await waitFor(() => ((probe.status().details?.['hostDevices'] ?? []) as string[]).includes(late), 5000);
    const ifindex = Number(readFileSync(`/sys/class/net/${late}/ifindex`, 'utf8'));
    assert.deepEqual(tcxOn(ifindex), ['dns_host_egress', 'dns_host_ingress']);
    await probe.close();
    assert.deepEqual(tcxOn(ifindex), []);
  } finally {
    try {
      sh('ip', ['link', 'del', late]);
    } catch {}
  }
});
