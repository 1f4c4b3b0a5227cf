// A pod-like netns for the dns tests and benchmark: its eth0 is a veth whose peer lives in the host netns
// (what pod discovery reports as Entity.hostVeth), with the DNS server listening in the host netns on the
// host side's addresses. Names carry the pid; cleanup removes the netns (the veth goes with it).
import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { NetnsSide } from '../env/netns.ts';
import type { ServerSide } from './server.ts';

const sh = (cmd: string, args: readonly string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export interface PodNetns extends Disposable {
  readonly entity: Entity;
  /** The pod side (dig runs here). */
  readonly side: Pick<NetnsSide, 'name' | 'inode' | 'ipv4' | 'ipv6'>;
  /** The host side, where the server listens. */
  readonly host: ServerSide;
  cleanup(): void;
}

/** The host netns as a place for the DNS server, listening on these addresses. */
export function hostSide(ipv4: string, ipv6: string): ServerSide {
  return {
    ipv4,
    ipv6,
    exec: (cmd: string, args: readonly string[] = []) => sh(cmd, args),
    spawn: (cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess =>
      spawn(cmd, args, opts),
  };
}

export function createPodNetns(tag: string, octet: number): PodNetns {
  const name = `pnd${process.pid}${tag}`;
  const veth = `${name}h`;
  if (veth.length > 15) throw new Error(`interface name ${veth} too long`);
  const h4 = `10.252.${octet}.1`;
  const p4 = `10.252.${octet}.2`;
  const h6 = `fd00:252:${octet}::1`;
  const p6 = `fd00:252:${octet}::2`;
  const cleanup = () => {
    try {
      sh('ip', ['netns', 'del', name]);
    } catch {}
    try {
      sh('ip', ['link', 'del', veth]);
    } catch {}
  };
  try {
    sh('ip', ['netns', 'add', name]);
    sh('ip', ['netns', 'exec', name, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0']);
    sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${name}p`]);
    sh('ip', ['link', 'set', `${name}p`, 'netns', name, 'name', 'eth0']);
    sh('ip', ['addr', 'add', `${h4}/24`, 'dev', veth]);
    sh('ip', ['addr', 'add', `${h6}/64`, 'dev', veth, 'nodad']);
    sh('ip', ['link', 'set', veth, 'up']);
    sh('ip', ['-n', name, 'addr', 'add', `${p4}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', name, 'addr', 'add', `${p6}/64`, 'dev', 'eth0', 'nodad']);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', name, 'link', 'set', 'eth0', 'up']);
    const mac = (args: string[]) =>
      (JSON.parse(sh('ip', ['-j', ...args])) as { address: string }[])[0]!.address;
    const hostMac = mac(['link', 'show', veth]);
    const podMac = mac(['-n', name, 'link', 'show', 'eth0']);
    for (const a of [h4, h6])
      sh('ip', ['-n', name, 'neigh', 'replace', a, 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent']);
    for (const a of [p4, p6])
      sh('ip', ['neigh', 'replace', a, 'lladdr', podMac, 'dev', veth, 'nud', 'permanent']);
    const path = `/run/netns/${name}`;
    const inode = statSync(path).ino;
    return {
      entity: {
        kind: 'netns',
        netnsInode: inode,
        netnsPath: path,
        netnsName: name,
        hostVeth: veth,
        displayName: name,
      },
      side: { name, inode, ipv4: p4, ipv6: p6 },
      host: hostSide(h4, h6),
      cleanup,
      [Symbol.dispose]: cleanup,
    };
  } catch (err) {
    cleanup();
    throw err;
  }
}
