// Test environment: a pair of network namespaces joined by a veth, with IPv4 and IPv6 addresses.
//
//   const pair = createNetnsPair({ prefix: 'pnb', tag: 's' });   // netns pnb<pid>sa / pnb<pid>sb
//   pair.a.exec('ip', ['addr']);                  // run a command inside netns a
//   pair.a.sendUdp(pair.b.ipv4, 9, 100);          // 100 datagrams a → b (in-process, no fork)
//   stat -L /run/netns/<pair.b.name> == pair.b.inode
//   pair.cleanup();                               // in after(): deletes both netns (and the veth)
//
// Every name carries the caller's prefix, the pid and a tag, so parallel test files never collide.
// Addresses default to 10.250.0.1/24 ↔ 10.250.0.2/24 and fd00:250::1/64 ↔ fd00:250::2/64 (each pair is
// isolated, so pairs may reuse them). IPv6 DAD and router solicitations are off, and each side has a
// permanent neighbour entry for the other, so the first packets are neither delayed nor dropped while a
// neighbour resolves — counts made by a test are exactly what it sent.
import {
  type ChildProcess,
  type ExecFileSyncOptions,
  execFileSync,
  type SpawnOptions,
  spawn,
} from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import koffi from 'koffi';
import { socketInNetns } from '../../receiver/netns/setns.ts';

export interface NetnsSide {
  /** Netns name (`ip netns` name, file under /run/netns). */
  readonly name: string;
  /** `/run/netns/<name>`. */
  readonly path: string;
  /** Inode of the netns (what BPF programs see as `net->ns.inum`; equals `stat -L -c %i <path>`). */
  readonly inode: number;
  /** The veth end inside this netns. */
  readonly ifname: string;
  readonly ifindex: number;
  readonly mac: string;
  readonly ipv4: string;
  readonly ipv6: string;
  /** Runs a command inside this netns (`ip netns exec`) and returns its stdout. Throws on failure. */
  exec(cmd: string, args?: readonly string[], opts?: ExecFileSyncOptions): string;
  /** Starts a command inside this netns. */
  spawn(cmd: string, args?: readonly string[], opts?: SpawnOptions): ChildProcess;
  /** Sends `count` UDP datagrams of `size` bytes from this netns to addr:port (IPv4 or IPv6). */
  sendUdp(addr: string, port: number, count: number, size?: number): void;
  /** A /proc/net/snmp (or snmp6) counter of this netns, e.g. snmp('Udp', 'NoPorts'), snmp('Udp6', 'NoPorts'). */
  snmp(group: string, field: string): number;
}

export interface NetnsPair extends Disposable {
  readonly a: NetnsSide;
  readonly b: NetnsSide;
  /** Deletes both namespaces (the veth goes with them). Idempotent, never throws. */
  cleanup(): void;
}

export interface NetnsPairOptions {
  /** Your helper's prefix (e.g. `pnb`); names become `<prefix><pid><tag>a|b`. */
  readonly prefix: string;
  /** Distinguishes several pairs of one process (default ''). */
  readonly tag?: string;
  /** First three octets of the IPv4 /24 (default `10.250.0`). */
  readonly ipv4Net?: string;
  /** IPv6 /64 prefix ending in `::` (default `fd00:250::`). */
  readonly ipv6Net?: string;
}

function run(cmd: string, args: readonly string[], opts: ExecFileSyncOptions = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      ...opts,
    }).toString();
  } catch (err) {
    const e = err as { stderr?: Buffer | string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${String(e.stderr ?? '').trim() || e.message}`);
  }
}

/** Deletes namespaces `<prefix><pid>...` left behind by processes that no longer exist. */
export function removeStaleNetns(prefix: string): string[] {
  if (!existsSync('/run/netns')) return [];
  const removed: string[] = [];
  for (const name of readdirSync('/run/netns')) {
    const m = new RegExp(`^${prefix}(\\d+)`).exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || existsSync(`/proc/${pid}`)) continue;
    try {
      run('ip', ['netns', 'del', name]);
      removed.push(name);
    } catch {
      // someone else removed it
    }
  }
  return removed;
}

const libc = koffi.load('libc.so.6');
const sendtoCall = libc.func(
  'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
) as (fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, addrlen: number) => number;
const inetPton = libc.func('int inet_pton(int af, const char *src, _Out_ uint8_t *dst)') as (
  af: number,
  src: string,
  dst: Uint8Array,
) => number;
const closeCall = libc.func('int close(int fd)') as (fd: number) => number;

/** sockaddr_in / sockaddr_in6 bytes for addr:port. */
export function sockaddr(addr: string, port: number): { family: number; bytes: Buffer } {
  const v6 = addr.includes(':');
  const bytes = Buffer.alloc(v6 ? 28 : 16);
  const family = v6 ? 10 : 2;
  bytes.writeUInt16LE(family, 0);
  bytes.writeUInt16BE(port, 2);
  const dst = Buffer.alloc(16);
  if (inetPton(family, addr, dst) !== 1) throw new Error(`not an IP address: ${addr}`);
  dst.copy(bytes, v6 ? 8 : 4, 0, v6 ? 16 : 4);
  return { family, bytes };
}

function makeSide(name: string, ifname: string, ipv4: string, ipv6: string): NetnsSide {
  const path = `/run/netns/${name}`;
  const link = JSON.parse(run('ip', ['-n', name, '-j', 'link', 'show', ifname])) as {
    ifindex: number;
    address: string;
  }[];
  return {
    name,
    path,
    inode: statSync(path).ino,
    ifname,
    ifindex: link[0]!.ifindex,
    mac: link[0]!.address,
    ipv4,
    ipv6,
    exec: (cmd, args = [], opts = {}) => run('ip', ['netns', 'exec', name, cmd, ...args], opts),
    spawn: (cmd, args = [], opts = {}) => spawn('ip', ['netns', 'exec', name, cmd, ...args], opts),
    sendUdp(addr, port, count, size = 32) {
      const sa = sockaddr(addr, port);
      const fd = socketInNetns(path, sa.family, 2 /* SOCK_DGRAM */, 0);
      try {
        const payload = Buffer.alloc(size, 0x61);
        for (let i = 0; i < count; i++) {
          const r = sendtoCall(fd, payload, payload.length, 0, sa.bytes, sa.bytes.length);
          if (r < 0) throw new Error(`sendto ${addr}:${port} from ${name} failed: errno ${koffi.errno()}`);
        }
      } finally {
        closeCall(fd);
      }
    },
    snmp(group, field) {
      if (group.endsWith('6')) {
        const text = run('ip', ['netns', 'exec', name, 'cat', '/proc/net/snmp6']);
        const line = text.split('\n').find((l) => l.split(/\s+/)[0] === `${group}${field}`);
        if (!line) throw new Error(`no ${group}${field} in /proc/net/snmp6 of ${name}`);
        return Number(line.split(/\s+/)[1]);
      }
      const lines = run('ip', ['netns', 'exec', name, 'cat', '/proc/net/snmp'])
        .split('\n')
        .filter((l) => l.startsWith(`${group}:`));
      const head = lines[0]?.split(/\s+/) ?? [];
      const vals = lines[1]?.split(/\s+/) ?? [];
      const i = head.indexOf(field);
      if (i < 0) throw new Error(`no ${group} ${field} in /proc/net/snmp of ${name}`);
      return Number(vals[i]);
    },
  };
}

/** Creates two netns joined by a veth (addresses, links up, static neighbours). Clean up in after(). */
export function createNetnsPair(opts: NetnsPairOptions): NetnsPair {
  const tag = opts.tag ?? '';
  if (!/^[a-z][a-z0-9]*$/.test(opts.prefix))
    throw new Error(`netns prefix must be [a-z][a-z0-9]*: '${opts.prefix}'`);
  const base = `${opts.prefix}${process.pid}${tag}`;
  const nsA = `${base}a`;
  const nsB = `${base}b`;
  if (nsA.length > 15)
    throw new Error(`interface name ${nsA} is longer than 15 characters: shorten prefix or tag`);
  const net4 = opts.ipv4Net ?? '10.250.0';
  const net6 = opts.ipv6Net ?? 'fd00:250::';
  const addr = { a4: `${net4}.1`, b4: `${net4}.2`, a6: `${net6}1`, b6: `${net6}2` };
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    for (const n of [nsA, nsB]) {
      try {
        execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  };
  try {
    run('ip', ['netns', 'add', nsA]);
    run('ip', ['netns', 'add', nsB]);
    for (const n of [nsA, nsB]) {
      for (const s of [
        'net.ipv6.conf.all.accept_dad=0',
        'net.ipv6.conf.default.accept_dad=0',
        'net.ipv6.conf.all.router_solicitations=0',
        'net.ipv6.conf.default.router_solicitations=0',
      ]) {
        run('ip', ['netns', 'exec', n, 'sysctl', '-q', '-w', s]);
      }
      run('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
    }
    run('ip', ['link', 'add', nsA, 'netns', nsA, 'type', 'veth', 'peer', 'name', nsB, 'netns', nsB]);
    run('ip', ['-n', nsA, 'addr', 'add', `${addr.a4}/24`, 'dev', nsA]);
    run('ip', ['-n', nsB, 'addr', 'add', `${addr.b4}/24`, 'dev', nsB]);
    run('ip', ['-n', nsA, 'addr', 'add', `${addr.a6}/64`, 'dev', nsA, 'nodad']);
    run('ip', ['-n', nsB, 'addr', 'add', `${addr.b6}/64`, 'dev', nsB, 'nodad']);
    run('ip', ['-n', nsA, 'link', 'set', nsA, 'up']);
    run('ip', ['-n', nsB, 'link', 'set', nsB, 'up']);
    const a = makeSide(nsA, nsA, addr.a4, addr.a6);
    const b = makeSide(nsB, nsB, addr.b4, addr.b6);
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      run('ip', [
        '-n',
        from.name,
        'neigh',
        'replace',
        to.ipv4,
        'lladdr',
        to.mac,
        'dev',
        from.ifname,
        'nud',
        'permanent',
      ]);
      run('ip', [
        '-n',
        from.name,
        'neigh',
        'replace',
        to.ipv6,
        'lladdr',
        to.mac,
        'dev',
        from.ifname,
        'nud',
        'permanent',
      ]);
    }
    return { a, b, cleanup, [Symbol.dispose]: cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/** Inode of a named netns, as `stat -L -c %i /run/netns/<name>` reports it (the kernel's ground truth). */
export function statNetnsInode(name: string): number {
  return Number(run('stat', ['-L', '-c', '%i', `/run/netns/${name}`]).trim());
}

/** Reads a /proc/net file of a netns through `ip netns exec` (kernel ground truth for tests). */
export function readNetnsFile(name: string, file: string): string {
  return run('ip', ['netns', 'exec', name, 'cat', file]);
}
