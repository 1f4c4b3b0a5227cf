// Test environment for the netlink tests: named netns (`pnl<pid>...`), veth pairs between them, traffic
// processes started with `ip netns exec`, and cleanup of exactly what was created.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import type { Entity } from '../../receiver/pods/entity.ts';
import { waitLinkReadySync } from '../env/link-ready.ts';

const NODE = process.execPath;
const FIXTURE = new URL('./fixtures/traffic.ts', import.meta.url).pathname;

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function inNs(ns: string, cmd: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}

export class TestNetwork {
  readonly prefix: string;
  readonly namespaces: string[] = [];
  readonly #procs: ChildProcess[] = [];
  constructor(tag: string) {
    this.prefix = `pnl${process.pid}${tag}`;
  }
  /** Creates netns `<prefix><suffix>` with lo up; returns its name. */
  addNetns(suffix: string): string {
    const ns = `${this.prefix}${suffix}`;
    sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }
  /** veth pair a(ns1) <-> b(ns2) with IPv4 10.x.y.1/2 and IPv6 fd00:x:y::1/2. */
  link(ns1: string, ns2: string, subnet: number, dev1 = 'pnla', dev2 = 'pnlb'): void {
    const tmp = `pnv${process.pid % 100000}${subnet}`;
    sh('ip', ['link', 'add', `${tmp}a`, 'type', 'veth', 'peer', 'name', `${tmp}b`]);
    sh('ip', ['link', 'set', `${tmp}a`, 'netns', ns1, 'name', dev1]);
    sh('ip', ['link', 'set', `${tmp}b`, 'netns', ns2, 'name', dev2]);
    for (const [ns, dev, host] of [
      [ns1, dev1, 1],
      [ns2, dev2, 2],
    ] as const) {
      sh('ip', ['-n', ns, 'addr', 'add', `10.${200 + (subnet >> 8)}.${subnet & 255}.${host}/24`, 'dev', dev]);
      sh('ip', ['-n', ns, 'addr', 'add', `fd00:${subnet}::${host}/64`, 'dev', dev, 'nodad']);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    // traffic over the link needs neighbour discovery at once: see test/env/link-ready.ts
    waitLinkReadySync(ns1, dev1);
    waitLinkReadySync(ns2, dev2);
  }
  entity(ns: string): Entity {
    const netnsPath = `/run/netns/${ns}`;
    return { kind: 'netns', netnsInode: statSync(netnsPath).ino, netnsPath, netnsName: ns, displayName: ns };
  }
  /** Starts the traffic fixture in `ns` and waits for its "ready" line. */
  async run(ns: string, args: string[], timeoutMs = 60_000): Promise<ChildProcess> {
    const p = spawn('ip', ['netns', 'exec', ns, NODE, FIXTURE, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.#procs.push(p);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`fixture ${args.join(' ')} not ready`)), timeoutMs);
      let out = '';
      p.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      p.on('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`fixture ${args.join(' ')} exited ${code}`));
      });
    });
    return p;
  }
  /** Kills the processes this network started (by pid) and deletes its netns. */
  cleanup(): void {
    for (const p of this.#procs) {
      if (p.exitCode === null && p.pid !== undefined) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {}
      }
    }
    for (const ns of this.namespaces) {
      // `ip netns exec` children die with the kill above; pids inside the netns may still exist briefly.
      try {
        for (const pid of sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean)) {
          process.kill(Number(pid), 'SIGKILL');
        }
      } catch {}
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {}
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
