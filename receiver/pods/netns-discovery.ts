// Network namespaces on a host without CRI: the host netns, named netns (`/run/netns/NAME`, as
// `ip netns add` and CNI create them) and any other netns a process lives in (`/proc/<pid>/ns/net`).
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mountGeneration } from '../netns/mount-events.ts';
import type { Entity } from './entity.ts';

export interface NamedNetns {
  readonly name: string;
  readonly path: string;
  readonly inode: number;
}

export interface ProcNetns {
  readonly inode: number;
  /** Lowest pid seen in the netns. */
  readonly pid: number;
  readonly comm: string;
}

/** Device number of nsfs, from the host netns file: a netns bind mount has the same st_dev. */
let nsfsDev: number | undefined;
function nsfsDevice(): number {
  nsfsDev ??= statSync('/proc/self/ns/net').dev;
  return nsfsDev;
}

/** The last listing per directory and the mount generation it was taken at (../netns/mount-events.ts). */
const listings = new Map<string, { readonly generation: number; readonly list: readonly NamedNetns[] }>();

/**
 * Named netns under `dir` (default /run/netns). Files that are not (or no longer) netns bind mounts are
 * skipped: a leftover empty file has the tmpfs device, not nsfs. A named netns comes and goes only with a
 * mount change (bind mount, umount), so while the mount table did not change since the last listing of
 * `dir` that listing is returned again, without a readdir and a stat per netns.
 */
export function listNamedNetns(dir = '/run/netns'): readonly NamedNetns[] {
  const generation = mountGeneration(); // polled before the listing: a change after it is seen next time
  const have = listings.get(dir);
  if (generation !== undefined && have?.generation === generation) return have.list;
  const list = listNamedNetnsNow(dir);
  if (generation !== undefined) listings.set(dir, { generation, list });
  return list;
}

function listNamedNetnsNow(dir: string): NamedNetns[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: NamedNetns[] = [];
  const dev = nsfsDevice();
  for (const name of names.sort()) {
    const path = join(dir, name);
    try {
      const st = statSync(path);
      if (st.dev === dev) out.push({ name, path, inode: st.ino });
    } catch {
      // removed meanwhile, or unreadable
    }
  }
  return out;
}

const NET_LINK = /^net:\[(\d+)\]$/;

/** Inode of a process's netns, or undefined when the process is gone or unreadable (pid 1 here: EACCES). */
export function netnsInodeOfPid(pid: number): number | undefined {
  try {
    const m = NET_LINK.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return m?.[1] ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** Every netns some process lives in, with the lowest pid holding it (kernel threads share the host's). */
export function scanProcNetns(procDir = '/proc'): ProcNetns[] {
  const byInode = new Map<number, number>();
  let ents: string[];
  try {
    ents = readdirSync(procDir);
  } catch {
    return [];
  }
  for (const e of ents) {
    const c = e.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(e);
    const inode = netnsInodeOfPid(pid);
    if (inode === undefined) continue;
    const cur = byInode.get(inode);
    if (cur === undefined || pid < cur) byInode.set(inode, pid);
  }
  return [...byInode].map(([inode, pid]) => ({ inode, pid, comm: commOf(pid) }));
}

/** Plain netns entities (named netns, then other /proc netns) added to `entities` where no entity holds the inode yet. */
export function addNetnsEntities(
  entities: Map<number, Entity>,
  opts: { readonly scanProc: boolean; readonly namedNetnsDir: string },
): void {
  const procs = opts.scanProc ? scanProcNetns() : [];
  const pidOf = new Map(procs.map((p) => [p.inode, p]));
  for (const n of listNamedNetns(opts.namedNetnsDir)) {
    if (entities.has(n.inode)) continue;
    const holder = pidOf.get(n.inode);
    entities.set(
      n.inode,
      Object.freeze({
        kind: 'netns',
        netnsInode: n.inode,
        netnsPath: n.path,
        netnsName: n.name,
        ...(holder ? { pid: holder.pid } : {}),
        displayName: n.name,
      }),
    );
  }
  for (const p of procs) {
    if (entities.has(p.inode)) continue;
    entities.set(
      p.inode,
      Object.freeze({
        kind: 'netns',
        netnsInode: p.inode,
        netnsPath: `/proc/${p.pid}/ns/net`,
        pid: p.pid,
        displayName: `pid ${p.pid} (${p.comm})`,
      }),
    );
  }
}
