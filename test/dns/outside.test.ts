// podnet outside the node's netns, as in the DaemonSet (hostNetwork false, hostPID true): the agent's
// probes run in a child process in a netns of its own, with /sys remounted there (unshare --net --mount),
// and PODNET_HOST_NETNS pointing at this test's netns, which plays the node (receiver/netns/setns.ts; this
// sandbox cannot read /proc/1/ns/net). The default hook tc must find the pod's host-side veth and the
// node's own devices there and attach there (receiver/kit/ebpf/veth.ts, probes/dns/hostdev.ts): the
// kernel's view (the child's TCX link fdinfo, `tc filter show`) has the programs on the node's devices,
// flow counts the datagrams sent and dns the digs unbound answered. The child's netns has only lo: a
// lookup or attach in podnet's own netns (the bug this replaces) finds nothing.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import koffi from 'koffi';
import { QTYPE } from '../../probes/dns/defs.ts';
import { M } from '../../probes/dns/dns.ts';
import { effectiveHook } from '../../probes/dns/hook.ts';
import { M as FM } from '../../probes/flow/flow.ts';
import { socketInNetns } from '../../receiver/netns/setns.ts';
import type { MetricPoint, ProbeStatus } from '../../receiver/probe/types.ts';
import { removeStaleNetns, sockaddr } from '../env/netns.ts';
import { counterPoint, waitFor } from '../latency/env.ts';
import { createPodNetns, type PodNetns } from './hostveth.ts';
import { DnsServer, dig } from './server.ts';

const AGENT = new URL('./fixtures/node-netns-agent.ts', import.meta.url).pathname;
const sh = (cmd: string, args: readonly string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const nodeNetns = statSync('/proc/self/ns/net').ino;
const DUMMY = `pnd${process.pid}x`;

let pod: PodNetns;
let server: DnsServer;

before(async () => {
  removeStaleNetns('pnd');
  pod = createPodNetns('o', 76);
  server = await DnsServer.start(pod.host);
  // one of the node's own devices (a bridge: no peer, no master): hook tc puts dns_host_* on it
  sh('ip', ['link', 'add', DUMMY, 'type', 'bridge']);
  sh('ip', ['link', 'set', DUMMY, 'up']);
});
after(() => {
  server?.stop();
  pod?.cleanup();
  try {
    sh('ip', ['link', 'del', DUMMY]);
  } catch {}
});

/** The agent child: lines prefixed `@@` are its JSON replies (logs go to stderr). */
class Agent {
  readonly child: ChildProcessWithoutNullStreams;
  readonly #replies: unknown[] = [];
  readonly #stderr: string[] = [];
  /** `prefix`: run the agent through it (setpriv, to drop a capability after unshare and mount). */
  constructor(mode: string, prefix: readonly string[] = []) {
    const script = `mount -t sysfs sysfs /sys && exec "$@"`;
    this.child = spawn(
      'unshare',
      [
        ...['--net', '--mount', 'sh', '-c', script, 'sh', ...prefix],
        ...[process.execPath, AGENT, JSON.stringify(pod.entity), mode],
      ],
      { env: { ...process.env, PODNET_HOST_NETNS: `/proc/${process.pid}/ns/net`, PODNET_LOG_LEVEL: 'warn' } },
    );
    createInterface({ input: this.child.stdout }).on('line', (l) => {
      if (l.startsWith('@@')) this.#replies.push(JSON.parse(l.slice(2)));
    });
    this.child.stderr.on('data', (d: Buffer) => this.#stderr.push(d.toString()));
  }
  async reply<T>(send?: string): Promise<T> {
    const n = this.#replies.length;
    if (send) this.child.stdin.write(`${send}\n`);
    const ok = await waitFor(() => this.#replies.length > n || this.child.exitCode !== null, 60_000);
    assert.ok(ok && this.#replies.length > n, `agent: no reply (${this.#stderr.join('').slice(-2000)})`);
    return this.#replies[n] as T;
  }
  async close(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      await this.reply('close');
      this.child.stdin.end();
      await exited;
    }
  }
}

/** Programs (by name) of the TCX links the process `pid` holds on `ifindex` (its fdinfo, the kernel's view). */
function tcxOf(pid: number, ifindex: number): string[] {
  const names: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf_link') continue;
      const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
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

/** cls_bpf filters on a device of this (the node's) netns, by program name as tc lists it (the kernel's
 * 15-character program name: `dns_host_ingres`). */
function tcFilters(dev: string, dir: 'ingress' | 'egress'): string[] {
  const out = JSON.parse(sh('tc', ['-j', 'filter', 'show', 'dev', dev, dir])) as {
    options?: { bpf_name?: string };
  }[];
  return out.flatMap((f) => (f.options?.bpf_name ? [f.options.bpf_name.replace(/:.*$/, '')] : [])).sort();
}

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

/** n UDP datagrams of `size` bytes from the pod to the host side's port. */
function sendFromPod(port: number, n: number, size: number): void {
  const sa = sockaddr(pod.host.ipv4, port);
  const fd = socketInNetns(pod.entity.netnsPath, 2, 2, 0);
  try {
    const buf = Buffer.alloc(size, 1);
    for (let i = 0; i < n; i++) assert.equal(sendto(fd, buf, size, 0, sa.bytes, sa.bytes.length), size);
  } finally {
    closeFd(fd);
  }
}

const ifindex = (dev: string) => Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8').trim());

async function run(mode: 'auto' | 'tc'): Promise<void> {
  const agent = new Agent(mode);
  try {
    const up = await agent.reply<{ netns: number; dns: ProbeStatus; flow: ProbeStatus }>();
    assert.notEqual(up.netns, nodeNetns, 'the agent runs in a netns of its own');
    assert.equal(up.dns.state, 'running', JSON.stringify(up.dns));
    assert.equal(up.flow.state, 'running', JSON.stringify(up.flow));
    assert.equal(up.dns.details?.['hook'], 'tc');
    assert.equal(up.dns.details?.['hookReason'], undefined);
    assert.deepEqual(up.dns.details?.['attached'], [pod.entity.hostVeth]);
    assert.deepEqual(up.flow.details?.['attached'], [pod.entity.hostVeth]);
    const devs = up.dns.details?.['hostDevices'] as string[];
    assert.ok(devs.includes(DUMMY) && devs.includes('lo'), JSON.stringify(devs));
    assert.ok(!devs.includes(pod.entity.hostVeth!), JSON.stringify(devs));
    const veth = pod.entity.hostVeth!;
    if (mode === 'auto') {
      // TCX (this kernel has it): the links the child holds are on the node's devices' ifindexes
      const pid = agent.child.pid!;
      assert.deepEqual(tcxOf(pid, ifindex(veth)), [
        'dns_tc_egress',
        'dns_tc_ingress',
        'flow_egress',
        'flow_ingress',
      ]);
      assert.deepEqual(tcxOf(pid, ifindex(DUMMY)), ['dns_host_egress', 'dns_host_ingress']);
    } else {
      assert.deepEqual(tcFilters(veth, 'ingress'), ['dns_tc_ingress', 'flow_ingress']);
      assert.deepEqual(tcFilters(veth, 'egress'), ['dns_tc_egress', 'flow_egress']);
      assert.deepEqual(tcFilters(DUMMY, 'ingress'), ['dns_host_ingres']);
      assert.deepEqual(tcFilters(DUMMY, 'egress'), ['dns_host_egress']);
    }

    const logged0 = server.count(pod.side.ipv4, 'NOERROR'); // the server serves both tests
    const n = 23;
    const size = 200;
    sendFromPod(9, n, size);
    for (let i = 0; i < 3; i++) assert.equal(dig(pod.side, pod.host.ipv4, 'a.ok.podnet').status, 'NOERROR');
    // the node's own DNS (over lo), a question type no other test asks from the node's netns
    for (let i = 0; i < 2; i++)
      assert.match(
        sh('dig', [`@${pod.host.ipv4}`, 'a.ok.podnet', 'NAPTR', '+tries=1', '+time=2']),
        /status: NOERROR/,
      );
    await new Promise((r) => setTimeout(r, 100));
    const { points } = await agent.reply<{ points: MetricPoint[] }>('collect');
    const inode = pod.side.inode;
    const tx = { 'network.io.direction': 'transmit', 'network.transport': 'udp', 'network.peer.port': 9 };
    assert.equal(counterPoint(points, FM.packets, inode, tx), n);
    assert.equal(counterPoint(points, FM.bytes, inode, tx), n * (size + 8 + 20 + 14));
    assert.equal(counterPoint(points, M.responses, inode, { 'network.transport': 'udp' }), 3);
    // the node's own series: under netns 0, its netns not being an entity here (as test/dns/hostdev.test.ts)
    assert.equal(counterPoint(points, M.responses, 0, { [QTYPE]: 'NAPTR' }), 2);
    await waitFor(() => server.count(pod.side.ipv4, 'NOERROR') >= logged0 + 3, 3000); // unbound's log lags
    assert.equal(server.count(pod.side.ipv4, 'NOERROR') - logged0, 3);
  } finally {
    await agent.close();
  }
  // closed: nothing left on the node's devices
  assert.deepEqual(tcFilters(pod.entity.hostVeth!, 'ingress'), []);
  assert.deepEqual(tcFilters(DUMMY, 'ingress'), []);
}

test('agent in its own netns: hook tc on the node netns veth and devices (TCX), counts exact', () =>
  run('auto'));
test('agent in its own netns: the same with clsact filters', () => run('tc'));

test('agent without CAP_SYS_ADMIN: hook tc runs as tracepoint with the reason and counts; flow says why', async () => {
  const agent = new Agent('auto', ['setpriv', '--bounding-set', '-sys_admin', '--inh-caps', '-sys_admin']);
  try {
    const up = await agent.reply<{ dns: ProbeStatus; flow: ProbeStatus }>();
    assert.equal(up.dns.state, 'running', JSON.stringify(up.dns));
    assert.equal(up.dns.details?.['hook'], 'tracepoint');
    assert.match(String(up.dns.details?.['hookReason']), /cannot enter the node's netns.*CAP_SYS_ADMIN/);
    assert.equal(up.flow.state, 'degraded');
    assert.match(String(up.flow.reason), /CAP_SYS_ADMIN/);
    assert.deepEqual(tcxOf(agent.child.pid!, ifindex(pod.entity.hostVeth!)), []);
    const logged0 = server.count(pod.side.ipv4, 'NOERROR');
    for (let i = 0; i < 3; i++) assert.equal(dig(pod.side, pod.host.ipv4, 'a.ok.podnet').status, 'NOERROR');
    const { points } = await agent.reply<{ points: MetricPoint[] }>('collect');
    assert.equal(counterPoint(points, M.responses, pod.side.inode, { 'network.transport': 'udp' }), 3);
    await waitFor(() => server.count(pod.side.ipv4, 'NOERROR') >= logged0 + 3, 3000);
    assert.equal(server.count(pod.side.ipv4, 'NOERROR') - logged0, 3);
  } finally {
    await agent.close();
  }
});

test('hook tc runs as tracepoint only when the node netns cannot be entered, with the reason', () => {
  assert.deepEqual(effectiveHook('tc', undefined), { hook: 'tc' });
  assert.deepEqual(effectiveHook('auto', 'setns refused'), { hook: 'auto' });
  const eff = effectiveHook('tc', 'setns(/proc/1/ns/net) failed: CAP_SYS_ADMIN missing');
  assert.equal(eff.hook, 'tracepoint');
  assert.match(eff.reason ?? '', /cannot enter the node's netns.*CAP_SYS_ADMIN/);
});
