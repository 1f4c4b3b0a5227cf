// Process and kernel-object helpers for the CRI test environment: everything it kills or removes is
// identified by what it recorded (PID + command line, socket path, names with its prefix).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function cmdlineOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // field 3 (after "comm)") is the state; Z = zombie counts as gone
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z';
  } catch {
    return false;
  }
}

/** Sends `signal` to `pid` only when its command line still matches `expect`. */
export function killIfMatches(
  pid: number,
  expect: (argv: string[]) => boolean,
  signal: NodeJS.Signals,
): boolean {
  const argv = cmdlineOf(pid);
  if (!argv || !expect(argv)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  stepMs = 20,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** PIDs of containerd shims started by the containerd listening on `socket` (`-address <socket>`). */
export function shimsOf(socket: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const argv = cmdlineOf(pid);
    if (!argv?.[0]?.includes('containerd-shim')) continue;
    const i = argv.indexOf('-address');
    if (i >= 0 && argv[i + 1] === socket) out.push(pid);
  }
  return out;
}

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const mi = readFileSync('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of mi.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const path = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (path === dir || path.startsWith(`${dir}/`)) out.push(path);
  }
  return out.sort((a, b) => b.length - a.length);
}

export function umount(path: string): void {
  try {
    execFileSync('umount', ['-l', path], { stdio: 'ignore' });
  } catch {
    // not mounted any more
  }
}

/** cgroup directories named `prefix` under every mounted hierarchy (v1 controllers, unified, name=systemd). */
export function cgroupDirs(prefix: string): string[] {
  const out: string[] = [];
  let hier: string[];
  try {
    hier = readdirSync('/sys/fs/cgroup');
  } catch {
    return out;
  }
  const roots = hier.map((h) => join('/sys/fs/cgroup', h));
  roots.push('/sys/fs/cgroup');
  for (const root of roots) {
    const d = join(root, prefix);
    try {
      if (statSync(d).isDirectory()) out.push(d);
    } catch {
      // absent
    }
  }
  return [...new Set(out)];
}

/** PIDs in a cgroup subtree (cgroup.procs, recursively). */
export function pidsInCgroup(dir: string): number[] {
  const out: number[] = [];
  const walk = (d: string): void => {
    try {
      for (const l of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) out.push(Number(l));
    } catch {
      // gone
    }
    let ents: import('node:fs').Dirent[] = [];
    try {
      ents = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) if (e.isDirectory()) walk(join(d, e.name));
  };
  walk(dir);
  return [...new Set(out)];
}

/** rmdir a cgroup subtree depth-first; returns the directories that could not be removed. */
export function rmdirTree(dir: string): string[] {
  const left: string[] = [];
  const walk = (d: string): void => {
    let ents: import('node:fs').Dirent[] = [];
    try {
      ents = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) if (e.isDirectory()) walk(join(d, e.name));
    try {
      rmdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.push(d);
    }
  };
  walk(dir);
  return left;
}

export function rmdirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty or absent
  }
}

/** `net:[4026532178]` → 4026532178, read from the kernel for a pid. */
export function netnsInodeOfPid(pid: number): number {
  const link = readlinkSync(`/proc/${pid}/ns/net`);
  const m = /^net:\[(\d+)\]$/.exec(link);
  if (!m?.[1]) throw new Error(`unexpected /proc/${pid}/ns/net link: ${link}`);
  return Number(m[1]);
}
