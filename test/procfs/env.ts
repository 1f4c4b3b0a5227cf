// Test environment for the procfs probes: two netns joined by a veth pair (IPv4 + IPv6), a long-lived
// worker process inside netns A holding TCP/UDP sockets (v4 and v6) and having done some file I/O,
// real traffic between the two (ping, TCP bulk, UDP, a refused TCP connect, UDP to a closed port), and
// ground-truth readers that run in the same netns (`ip netns exec`, `nstat`, `ip -s -j link`).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { childLogger } from '../../receiver/log/logger.ts';
import type { Entity, EntitySource } from '../../receiver/pods/entity.ts';
import type { ProbeContext } from '../../receiver/probe/types.ts';
import { waitLinkReadySync } from '../env/link-ready.ts';

export const tag = `pnf${process.pid}`;
export const nsA = `${tag}a`;
export const nsB = `${tag}b`;
export const IP_A = '10.231.0.1';
export const IP_B = '10.231.0.2';
export const IP6_A = 'fd00:231::1';
export const IP6_B = 'fd00:231::2';

export function sh(cmd: string, args: readonly string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function inNs(ns: string, cmd: string, ...args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Named-netns entity, as pod discovery builds it for `/run/netns/NAME`. */
export function namedEntity(ns: string): Entity {
  const netnsPath = `/run/netns/${ns}`;
  return { kind: 'netns', netnsInode: statSync(netnsPath).ino, netnsPath, netnsName: ns, displayName: ns };
}

/** The same netns seen through a process living in it. */
export function pidEntity(ns: string, pid: number): Entity {
  return { ...namedEntity(ns), netnsPath: `/proc/${pid}/ns/net`, pid, displayName: `${ns} pid ${pid}` };
}

export function probeContext(): ProbeContext {
  const none: EntitySource = {
    entities: () => [],
    byNetns: () => undefined,
    pods: () => [],
    onChange: () => () => {},
  };
  return { log: childLogger('test-procfs'), entities: none, emit: () => {} };
}

// Worker: sockets of several kinds (held open), a file write + fsync and reads, then idle forever.
const WORKER = `
import socket, os, sys, time
keep = []
l4 = socket.socket(); l4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l4.bind(('0.0.0.0', 5201 + int(sys.argv[1]))); l4.listen(8); keep.append(l4)
l6 = socket.socket(socket.AF_INET6); l6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); l6.bind(('::', 6201 + int(sys.argv[1]))); l6.listen(8); keep.append(l6)
c = socket.create_connection(('127.0.0.1', 5201 + int(sys.argv[1]))); a, _ = l4.accept(); keep += [c, a]
c.sendall(b'x' * 70000)
u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u4.bind(('0.0.0.0', 0)); keep.append(u4)
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u6.bind(('::', 0)); keep.append(u6)
dup = os.dup(u4.fileno())
p = sys.argv[2]
with open(p, 'wb') as f:
    f.write(os.urandom(1 << 20)); f.flush(); os.fsync(f.fileno())
with open('/dev/zero', 'rb') as z:
    for i in range(10): z.read(4096)
print('ready', flush=True)
while True: time.sleep(3600)
`;

export interface Worker {
  readonly pid: number;
  readonly child: ChildProcess;
}

/** Starts the python worker in `ns` (ip netns exec execs in place: the child pid is the worker). */
export async function startWorker(ns: string, n: number): Promise<Worker> {
  const file = `/tmp/${tag}-worker${n}.bin`;
  const child = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', WORKER, String(n), file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
    child.stdout!.once('data', () => resolve());
  });
  const pid = child.pid!;
  rmSync(file, { force: true });
  return { pid, child };
}

export function stopWorker(w: Worker | undefined): void {
  if (!w) return;
  w.child.stdout?.destroy();
  w.child.unref();
  try {
    process.kill(w.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function setupNetns(): void {
  teardownNetns();
  sh('ip', ['-batch', '-'], `netns add ${nsA}\nnetns add ${nsB}\n`);
  // Quiet IPv6: no router solicitations, no DAD delay, so the netns is silent once traffic stops. Set
  // before the veth exists: `default` applies to devices created afterwards only.
  for (const ns of [nsA, nsB])
    inNs(
      ns,
      'sysctl',
      '-q',
      '-w',
      'net.ipv6.conf.all.router_solicitations=0',
      'net.ipv6.conf.default.router_solicitations=0',
    );
  sh('ip', ['link', 'add', `${tag}x`, 'netns', nsA, 'type', 'veth', 'peer', 'name', `${tag}y`, 'netns', nsB]);
  const links = [
    [nsA, `${tag}x`, IP_A, IP6_A],
    [nsB, `${tag}y`, IP_B, IP6_B],
  ] as const;
  for (const [ns, dev, ip, ip6] of links) {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev]);
    sh('ip', ['-n', ns, 'addr', 'add', `${ip6}/64`, 'dev', dev, 'nodad']);
    sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }
  // The first IPv6 ping needs B to answer a neighbour solicitation: see test/env/link-ready.ts.
  for (const [ns, dev] of links) waitLinkReadySync(ns, dev);
}

export function teardownNetns(): void {
  for (const ns of [nsA, nsB]) {
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      // not there
    }
  }
}

// ping (no ping binary on the machines): ICMP / ICMPv6 echo over a raw socket, waits for each reply.
const PING = `
import socket, struct, sys
dst, n = sys.argv[1], int(sys.argv[2])
v6 = ':' in dst
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
s.settimeout(2)
def csum(b):
    if len(b) % 2: b += b'\\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
for i in range(n):
    typ = 128 if v6 else 8
    body = struct.pack('!HH', 0x1234, i) + b'podnet'
    h = struct.pack('!BBH', typ, 0, 0) + body
    if not v6: h = struct.pack('!BBH', typ, 0, csum(h)) + body
    s.sendto(h, (dst, 0))
    while True:
        d = s.recv(2048)
        if not v6: d = d[(d[0] & 15) * 4:]
        if d[0] == (129 if v6 else 0) and d[4:8] == body[:4]: break
`;

// The bulk transfer: the server reads to EOF, then answers the byte count; the client checks it.
const BULK = 2 << 20;
const BULK_SERVER = `
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('0.0.0.0', 5999)); l.listen(1)
c, _ = l.accept(); n = 0
while True:
    d = c.recv(1 << 16)
    if not d: break
    n += len(d)
c.sendall(str(n).encode()); c.close()
`;
const BULK_CLIENT = `
import socket, sys
s = socket.create_connection((sys.argv[1], 5999), timeout=60); s.sendall(b'x' * ${BULK}); s.shutdown(socket.SHUT_WR)
got = b''
while True:
    d = s.recv(64)
    if not d: break
    got += d
if got != b'${BULK}': sys.exit('the server read %r bytes of ${BULK}' % got)
`;

/** Real traffic A ↔ B, every call synchronous: when it returns, the traffic has stopped. */
export function makeTraffic(): void {
  inNs(nsA, 'python3', '-c', PING, IP_B, '5');
  inNs(nsA, 'python3', '-c', PING, IP6_B, '3');
  // A 2 MiB TCP bulk transfer A → B that B reads to the end before answering: not iperf3, whose one-off
  // server closes its data socket with bytes still unread when the client reports the end (it counts bytes
  // written, not delivered): B then resets the connection (TcpExtTCPAbortOnClose in B) and what A still
  // held was never sent; under load the veth carried less than the 2 MB the test checks.
  const server = spawn('ip', ['netns', 'exec', nsB, 'python3', '-c', BULK_SERVER], { stdio: 'ignore' });
  try {
    // Wait until the server listens (the kernel's socket table says so): on a loaded machine python can
    // take seconds to start.
    const listening = () => inNs(nsB, 'ss', '-Hltn', 'sport = :5999').trim() !== '';
    for (const end = Date.now() + 30_000; !listening(); execFileSync('sleep', ['0.1']))
      if (Date.now() > end || server.exitCode !== null) throw new Error('bulk server did not listen on 5999');
    inNs(nsA, 'python3', '-c', BULK_CLIENT, IP_B);
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  // TCP connect to a closed port: B answers RST (Tcp OutRsts), A counts an attempt failure.
  try {
    inNs(nsA, 'bash', '-c', `exec 3<>/dev/tcp/${IP_B}/9`);
  } catch {
    // refused, as intended
  }
  // UDP to a closed port: Udp NoPorts in B, ICMP port unreachable back to A.
  inNs(nsA, 'bash', '-c', `echo hi > /dev/udp/${IP_B}/9; echo hi > /dev/udp/${IP_B}/10`);
  inNs(nsA, 'bash', '-c', `echo hi6 > /dev/udp/${IP6_B}/9`);
}

/** `nstat -az` (absolute values, no history file) in the netns. */
export function nstat(ns: string): Record<string, number> {
  const out = sh('ip', [
    'netns',
    'exec',
    ns,
    'env',
    `NSTAT_HISTORY=/tmp/${tag}-nstat`,
    'nstat',
    '-asz',
    '--json',
  ]);
  return (JSON.parse(out) as { kernel: Record<string, number> }).kernel;
}

/** A file of the netns as `cat` sees it from inside (`ip netns exec NS cat /proc/net/FILE`). */
export function catNet(ns: string, file: string): string {
  return inNs(ns, 'cat', `/proc/net/${file}`);
}

export interface IpLinkStats {
  ifname: string;
  stats64: {
    rx: {
      bytes: number;
      packets: number;
      errors: number;
      dropped: number;
      missed?: number;
      missed_errors?: number;
      multicast?: number;
      fifo_errors?: number;
      length_errors?: number;
      over_errors?: number;
      crc_errors?: number;
      frame_errors?: number;
      compressed?: number;
    };
    tx: {
      bytes: number;
      packets: number;
      errors: number;
      dropped: number;
      fifo_errors?: number;
      collisions?: number;
      carrier_errors?: number;
      aborted_errors?: number;
      window_errors?: number;
      heartbeat_errors?: number;
      compressed?: number;
    };
  };
}

/** `ip -s -s -j link` (details: fifo, frame, carrier, collisions...) in the netns. */
export function ipLinkStats(ns: string): IpLinkStats[] {
  return JSON.parse(sh('ip', ['-n', ns, '-s', '-s', '-j', 'link', 'show'])) as IpLinkStats[];
}

/**
 * Reads ground truth, then the probe, then ground truth again, until both ground-truth reads agree
 * (the netns was quiet across the probe's read); returns the agreeing truth and the probe's result.
 */
export async function stableRead<T, P>(truth: () => T, probe: () => Promise<P>, tries = 40): Promise<[T, P]> {
  let last = '';
  for (let i = 0; i < tries; i++) {
    const before = truth();
    const got = await probe();
    const after = truth();
    const b = JSON.stringify(before);
    const a = JSON.stringify(after);
    if (b === a) return [before, got];
    last = `${b.slice(0, 300)} vs ${a.slice(0, 300)}`;
    await sleep(100 + 20 * i);
  }
  throw new Error(`ground truth never stable across ${tries} reads; last: ${last}`);
}

export function procIo(pid: number): Record<string, number> {
  const o: Record<string, number> = {};
  for (const l of readFileSync(`/proc/${pid}/io`, 'latin1').trim().split('\n')) {
    const [k, v] = l.split(': ');
    o[k!] = Number(v);
  }
  return o;
}
