// Finding the processes of an entity, and reading what the process probe needs from each.
//
// Two ways to find a pod's processes:
// - by cgroup: the pod's cgroup (`PodIdentity.cgroupParent`, cgroupfs style `/kubepods/besteffort/pod<uid>`
//   or systemd style `kubepods-besteffort-pod<uid>.slice`) under the cgroup v2 mount and, failing that,
//   under the cgroup v1 hierarchies (pids, memory, cpu, systemd, ...): every `cgroup.procs` below it.
//   This is exactly the pod's containers, whichever namespaces they use.
// - by netns: every process whose `/proc/<pid>/ns/net` is the entity's netns (one scan of /proc per
//   collection). This works for any entity (a named netns with processes, a pod without a known cgroup)
//   and also counts processes that joined the netns from outside the pod (`nsenter`, `ip netns exec`).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { netnsInodeOfLink, readProcFile } from '../../receiver/procfs/read.ts';
import { type PidIo, parsePidIo } from './parse.ts';
import type { PidFiles } from './pid-files.ts';

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** Map netns inode → pids (thread-group leaders) of every process on the host. */
export function netnsPidIndex(): Map<number, number[]> {
  const index = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let ino: number;
    try {
      ino = netnsInodeOfLink(`/proc/${name}/ns/net`);
    } catch {
      continue; // exited, or a kernel thread without a readable netns
    }
    const pid = Number(name);
    const list = index.get(ino);
    if (list) list.push(pid);
    else index.set(ino, [pid]);
  }
  return index;
}

interface CgroupMount {
  readonly path: string;
  readonly version: 1 | 2;
  readonly controllers: readonly string[];
}

let mountsCache: CgroupMount[] | undefined;

/** cgroup mounts from /proc/self/mountinfo: v2 first, then v1 (pids, memory, cpu, systemd, others). */
export function cgroupMounts(): readonly CgroupMount[] {
  if (mountsCache) return mountsCache;
  const mounts: CgroupMount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'latin1').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    const mountPoint = pre[4];
    const fstype = post[0];
    if (!mountPoint) continue;
    if (fstype === 'cgroup2') mounts.push({ path: mountPoint, version: 2, controllers: [] });
    else if (fstype === 'cgroup') {
      const opts = (post[2] ?? '').split(',');
      mounts.push({ path: mountPoint, version: 1, controllers: opts });
    }
  }
  const rank = (m: CgroupMount): number => {
    if (m.version === 2) return 0;
    const order = ['pids', 'memory', 'cpu', 'name=systemd'];
    const i = order.findIndex((c) => m.controllers.includes(c));
    return i < 0 ? 10 : 1 + i;
  };
  mounts.sort((a, b) => rank(a) - rank(b));
  mountsCache = mounts;
  return mounts;
}

/** `kubepods-besteffort-pod1.slice` → `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice`. */
export function cgroupRelativePath(cgroupParent: string): string {
  const p = cgroupParent.replace(/^\/+/, '').replace(/\/+$/, '');
  if (p.includes('/') || !p.endsWith('.slice')) return p;
  const parts = p.slice(0, -'.slice'.length).split('-');
  const dirs: string[] = [];
  for (let i = 1; i <= parts.length; i++) dirs.push(`${parts.slice(0, i).join('-')}.slice`);
  return dirs.join('/');
}

/** The pod's cgroup directories, one per hierarchy where it exists (v2 first). */
export function findCgroupDirs(cgroupParent: string): string[] {
  const rel = cgroupRelativePath(cgroupParent);
  if (rel === '' || rel.split('/').includes('..')) return [];
  const dirs: string[] = [];
  for (const m of cgroupMounts()) {
    const dir = `${m.path}/${rel}`;
    try {
      if (statSync(dir).isDirectory()) dirs.push(dir);
    } catch {
      // not in this hierarchy
    }
  }
  return dirs;
}

/**
 * Pids of the pod cgroup: from the first hierarchy (v2, then v1) where the cgroup exists and holds
 * processes (a runtime may create the directory in a hierarchy it does not use). Undefined when the
 * cgroup exists nowhere.
 */
export function podCgroupPids(cgroupParent: string): number[] | undefined {
  const dirs = findCgroupDirs(cgroupParent);
  if (dirs.length === 0) return undefined;
  for (const d of dirs) {
    const pids = cgroupPids(d);
    if (pids.length > 0) return pids;
  }
  return [];
}

/** Pids in `dir` and every cgroup below it (`cgroup.procs`). */
export function cgroupPids(dir: string): number[] {
  const pids: number[] = [];
  const walk = (d: string, depth: number): void => {
    let procs: string;
    try {
      procs = readProcFile(`${d}/cgroup.procs`);
    } catch (err) {
      if (errCode(err) === 'ENOENT' && depth > 0) return; // removed while walking
      throw err;
    }
    for (const l of procs.split('\n')) if (l.length > 0) pids.push(Number(l));
    if (depth > 16) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(`${d}/${e.name}`, depth + 1);
    }
  };
  walk(dir, 0);
  return pids;
}

export interface ProcessSample {
  readonly pid: number;
  readonly io: PidIo;
  readonly fds: number;
}

/**
 * Reads `/proc/<pid>/io` and the fd table of `pid` (through `files`' kept fds), adding socket inodes to
 * `sockets`. Returns undefined when the process exited meanwhile; throws on other errors (permission).
 */
export function sampleProcess(pid: number, sockets: Set<number>, files: PidFiles): ProcessSample | undefined {
  let io: PidIo;
  let fds: number;
  try {
    const r = files.read(pid, sockets);
    io = parsePidIo(r.io, `/proc/${pid}/io`);
    fds = r.fds;
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw err;
  }
  return { pid, io, fds };
}
