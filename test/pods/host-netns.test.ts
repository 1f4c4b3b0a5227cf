// The host entity is the node's netns (init's, /proc/1/ns/net), also when podnet runs in a netns of its
// own — the DaemonSet's hostPID without hostNetwork. `podnet run` is started inside a test netns with no
// CRI socket; its /status and /metrics must show the root netns as "host" (inode, netdev counters read
// through /proc/1/net and qdisc counters over rtnetlink in /proc/1/ns/net, against the kernel's own
// `readlink`, `ip -s -j link` and `tc -s -j qdisc`; eBPF UDP overflows in the root netns against the
// socket's drops in /proc/net/udp), never the test netns.
//
// On this machine the real /proc/1 is a process with more capabilities than root here, so its ns links
// cannot be read (docs/pods.md); the test therefore gives podnet a PID namespace whose init (pid 1) is a
// shell left in the root netns, which is what the node's init is to the DaemonSet pod.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { disableRegistered, MAIN, NODE } from '../cli/podnet-process.ts';

const tag = `pnh${process.pid}`;
const ns = `${tag}ns`;
const vethHost = `${tag}a`; // stays in the root netns
const vethNs = `${tag}b`; // moved into the test netns
const dir = mkdtempSync(`/tmp/${tag}-`);
// a /30 of our own per pid: 10.214.x.y
const base = (process.pid & 0x3fff) * 4;
const net = `10.214.${(base >> 8) & 255}`;
const hostIp = `${net}.${(base & 255) + 1}`;
const nsIp = `${net}.${(base & 255) + 2}`;
let child: ChildProcess | undefined;
let sink: ChildProcess | undefined;
let stderr = '';

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

function cleanup(): void {
  if (child?.pid !== undefined && child.exitCode === null) child.kill('SIGKILL'); // --kill-child ends the pid ns
  if (sink?.pid !== undefined && sink.exitCode === null) sink.kill('SIGKILL');
  for (const args of [
    ['link', 'del', vethHost],
    ['netns', 'del', ns],
  ]) {
    try {
      execFileSync('ip', args, { stdio: 'ignore' });
    } catch {
      // not there
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

before(() => {
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  sh('ip', ['link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethNs]);
  // no IPv6 on the pair: no router solicitations or DAD adding traffic of their own
  sh('sysctl', ['-qw', `net.ipv6.conf.${vethHost}.disable_ipv6=1`]);
  sh('ip', ['link', 'set', vethNs, 'netns', ns]);
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${vethNs}.disable_ipv6=1`]);
  sh('ip', ['addr', 'add', `${hostIp}/30`, 'dev', vethHost]);
  sh('ip', ['-n', ns, 'addr', 'add', `${nsIp}/30`, 'dev', vethNs]);
  sh('ip', ['link', 'set', vethHost, 'up']);
  sh('ip', ['-n', ns, 'link', 'set', vethNs, 'up']);
  // a queue with counters on the root-netns end, for the netlink (rtnetlink qdisc dump) side of the host
  sh('tc', ['qdisc', 'replace', 'dev', vethHost, 'root', 'pfifo', 'limit', '1000']);
});

after(cleanup);

function curl(url: string): string {
  // the server listens on 127.0.0.1 of the test netns
  return sh('ip', ['netns', 'exec', ns, 'curl', '-sf', '--max-time', '5', url]);
}

/** The host's netdev byte counters of one interface (k8s.node.network.io) from the Prometheus text. */
function hostBytes(metrics: string, ifname: string): { rx?: number; tx?: number; inodes: Set<string> } {
  const out: { rx?: number; tx?: number; inodes: Set<string> } = { inodes: new Set() };
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('k8s_node_network_io_bytes_total{') || !line.includes('podnet_entity_kind="host"'))
      continue;
    out.inodes.add(/podnet_netns_inode="(\d+)"/.exec(line)?.[1] ?? '?');
    if (!line.includes(`network_interface_name="${ifname}"`)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.includes('network_io_direction="receive"')) out.rx = value;
    if (line.includes('network_io_direction="transmit"')) out.tx = value;
  }
  return out;
}

test('podnet in a netns of its own exports the node netns (init’s) as host', async () => {
  const config = join(dir, 'podnet.yaml');
  writeFileSync(
    config,
    `collection_interval: 200ms
server: { address: "127.0.0.1:0" }
pods: { cri_endpoint: "${join(dir, 'no-cri.sock')}", netns_discovery: always }
probes: { ${disableRegistered().replace('netdev: { enabled: false }, ', '').replace('qdisc: { enabled: false }, ', '').replace('sockoverflow: { enabled: false }, ', '')}netdev: { enabled: true }, qdisc: { enabled: true }, sockoverflow: { enabled: true } }
`,
  );
  // pid 1 of the new PID namespace is `sh`, in the root netns; podnet runs under it in the test netns
  child = spawn(
    'unshare',
    [
      '--pid',
      '--fork',
      '--kill-child',
      '--mount-proc',
      'sh',
      '-c',
      `ip netns exec ${ns} ${NODE} ${MAIN} run --config ${config} & wait`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PODNET_LOG_LEVEL: 'info' } },
  );
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let url = '';
  for (const deadline = Date.now() + 30_000; !url; ) {
    url = /"url":"(http:\/\/[^"]+)","msg":"local server listening"/.exec(stderr)?.[1] ?? '';
    if (child.exitCode !== null) assert.fail(`podnet exited ${child.exitCode}: ${stderr}`);
    if (!url && Date.now() > deadline) assert.fail(`podnet did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }

  // kernel truth: the netns of the PID namespace's init (the sh child of unshare), the root netns (this
  // test's), and the test netns
  const initPid = Number(
    readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0],
  );
  const initNetns = Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${initPid}/ns/net`))![1]);
  const rootNetns = statSync('/proc/self/ns/net').ino;
  const testNetns = statSync(`/run/netns/${ns}`).ino;
  assert.equal(initNetns, rootNetns);
  assert.notEqual(testNetns, rootNetns);

  type StatusEntity = { kind: string; netnsInode: number; netnsName: string | null };
  type Status = { entities: StatusEntity[]; discovery: { hostNetns: unknown } };
  let status: Status | undefined;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    status = JSON.parse(curl(`${url}/status`)) as Status;
    if (status.entities.some((e) => e.netnsInode === testNetns)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const entities = status!.entities;
  assert.deepEqual(status!.discovery.hostNetns, { inode: initNetns, path: '/proc/1/ns/net' });
  const hosts = entities.filter((e) => e.kind === 'host');
  assert.equal(hosts.length, 1, JSON.stringify(entities));
  assert.equal(hosts[0]!.netnsInode, initNetns, 'host entity = netns of /proc/1/ns/net');
  // the test netns (podnet's own) is found by netns discovery as the named netns it is, not as host
  const own = entities.filter((e) => e.netnsInode === testNetns);
  assert.deepEqual(
    own.map((e) => [e.kind, e.netnsName]),
    [['netns', ns]],
  );

  // traffic on the root-netns end only in one direction: 1000-byte UDP datagrams to a closed port; the
  // ICMP errors coming back are smaller, so receive and transmit differ
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, hostIp, () => r()));
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((r, j) => sock.send(Buffer.alloc(1000), 9, nsIp, (e) => (e ? j(e) : r())));
  }
  sock.close();

  // podnet's host counters must equal `ip -s -j link` of the root netns once the counters are still
  let last = '';
  for (const deadline = Date.now() + 15_000; ; ) {
    const stats = (
      JSON.parse(sh('ip', ['-s', '-j', 'link', 'show', 'dev', vethHost])) as {
        stats64: { rx: { bytes: number }; tx: { bytes: number } };
      }[]
    )[0]!.stats64;
    const got = hostBytes(curl(`${url}/metrics`), vethHost);
    last = `podnet ${JSON.stringify({ rx: got.rx, tx: got.tx, inodes: [...got.inodes] })} kernel rx ${stats.rx.bytes} tx ${stats.tx.bytes}`;
    assert.deepEqual([...got.inodes], [String(rootNetns)], last);
    if (got.rx === stats.rx.bytes && got.tx === stats.tx.bytes) {
      assert.ok(stats.tx.bytes >= 20 * 1000, last);
      assert.notEqual(stats.rx.bytes, stats.tx.bytes, last);
      break;
    }
    if (Date.now() > deadline) assert.fail(`host counters never matched the root netns: ${last}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  // the test netns end of the pair is not the host's
  assert.equal(hostBytes(curl(`${url}/metrics`), vethNs).rx, undefined);

  // netlink: the host's qdisc counters come from a socket opened in the node's netns (tc of the root netns)
  const tcBytes = (
    JSON.parse(sh('tc', ['-s', '-j', 'qdisc', 'show', 'dev', vethHost])) as { kind: string; bytes: number }[]
  ).find((q) => q.kind === 'pfifo')!.bytes;
  assert.ok(tcBytes >= 20 * 1000, `pfifo carried the datagrams: ${tcBytes}`);
  for (const deadline = Date.now() + 10_000; ; ) {
    const lines = curl(`${url}/metrics`)
      .split('\n')
      .filter(
        (l) =>
          l.startsWith('podnet_qdisc_io') &&
          l.includes(`network_interface_name="${vethHost}"`) &&
          l.includes('podnet_qdisc_kind="pfifo"'),
      );
    const host = lines.filter((l) => l.includes('podnet_entity_kind="host"'));
    assert.equal(host.length, lines.length, lines.join('\n'));
    const value = host.length === 1 ? Number(host[0]!.slice(host[0]!.lastIndexOf(' ') + 1)) : undefined;
    if (value === tcBytes) break;
    if (Date.now() > deadline) assert.fail(`host qdisc bytes ${value} (${lines.join(' | ')}), tc ${tcBytes}`);
    await new Promise((r) => setTimeout(r, 300));
  }

  // eBPF: the watched-netns map holds the node's inode, so a UDP receive-buffer overflow in the root netns
  // is counted under the host. The sink never reads, with the smallest SO_RCVBUF.
  sink = spawn(
    'python3',
    [
      '-c',
      'import socket,sys,time\n' +
        's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n' +
        's.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,1)\n' +
        `s.bind(("${hostIp}",0))\n` +
        'print(s.getsockname()[1],flush=True)\n' +
        'time.sleep(300)',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((r) =>
    sink!.stdout!.once('data', (d: Buffer) => r(Number(d.toString()))),
  );
  const out = createSocket('udp4');
  for (let i = 0; i < 200; i++) {
    await new Promise<void>((r, j) => out.send(Buffer.alloc(1000), port, hostIp, (e) => (e ? j(e) : r())));
  }
  out.close();
  // kernel truth: the drops column of the sink in the root netns's /proc/net/udp (this process's netns)
  const local = `${hostIp
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0'))
    .reverse()
    .join('')
    .toUpperCase()}:${port.toString(16).padStart(4, '0').toUpperCase()}`;
  const row = readFileSync('/proc/self/net/udp', 'latin1')
    .split('\n')
    .find((l) => l.trim().split(/\s+/)[1] === local);
  const drops = Number(row!.trim().split(/\s+/).at(-1));
  assert.ok(drops > 100, `the sink dropped datagrams: ${drops}`);
  let lastUdp = '';
  for (const deadline = Date.now() + 15_000; ; ) {
    const lines = curl(`${url}/metrics`)
      .split('\n')
      .filter((l) => l.startsWith('podnet_udp_overflow'));
    const sum = (kind: string): number =>
      lines
        .filter((l) => l.includes(`podnet_entity_kind="${kind}"`))
        .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    lastUdp = lines.join(' | ');
    // at least the sink's drops: the root netns is shared with other tests, whose overflows count too
    if (sum('host') >= drops) {
      assert.equal(sum('unattributed'), 0, lastUdp);
      break;
    }
    if (Date.now() > deadline) assert.fail(`host UDP overflows below the sink's ${drops} drops: ${lastUdp}`);
    await new Promise((r) => setTimeout(r, 300));
  }
});
