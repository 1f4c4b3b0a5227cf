// Kept-open procfs files per netns. Opening `/proc/<pid>/net/<file>` (or entering a named netns to open
// `/proc/thread-self/net/<file>`) costs a path walk, a readlink to check the pid's netns, and for a named
// netns two setns calls, every probe every interval; at 1,000 netns that was about a quarter of podnet's
// collection CPU (benchmarks/RESULTS.md, section «Scale: 10, 100, 1,000 network namespaces», profile).
// Here each file is opened once per netns and read again with pread at offset 0: a seq_file regenerates
// its text when read from offset 0, so every read is fresh (test/procfs/kept-fds.test.ts checks it
// against nstat after traffic).
//
// Exactness: a procfs net file is bound to the netns it was opened in (seq_open_net takes the netns of
// the /proc/<pid>/net directory at open time), so a kept fd can never show another namespace. The files
// are opened inside the netns entered through a fd of `entity.netnsPath` whose inode is checked first, so
// a pid reused by a process elsewhere cannot bind them to the wrong netns either.
//
// Liveness: a kept fd holds its netns alive in the kernel, so reading it would not notice a netns that is
// gone. Once per collection (`cycle`, receiver/kit/cycle.ts) the entity is checked alive (`assertEntityAliveOnce`, shared with the netlink kit); a gone
// netns gets its fds closed and fails with EntityGoneError. Netns no longer in a collection's entity list
// get theirs closed (`retain`), so fds and the kernel's netns go away within one collection.
//
// Bounded: at most `budget` fds are kept (default 40 % of the soft RLIMIT_NOFILE, at most 16,384; the
// netlink sockets and the rest of podnet use the remainder); netns beyond it are read the old way (open,
// read, close), counted in `stats().uncachedReads`.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { nofileLimit } from '../agent/rlimit.ts';
import { enterNetnsFd, homeNetnsInode, hostNetnsInode, hostNetnsPid } from '../netns/setns.ts';
import type { Entity } from '../pods/entity.ts';
import { assertEntityAliveOnce, markAlive } from './liveness.ts';
import {
  EntityGoneError,
  type NetFile,
  preadInto,
  preadWhole,
  putText,
  readBuffer,
  readNetFilesUncached,
} from './read.ts';

/** fd value of an optional file this netns does not have (ENOENT at open). */
const MISSING = -1;

/** The bytes of files read by `readBytes`: file i is `buf[start[i], end[i])`, -1 when missing. */
export interface NetBytes {
  buf: Buffer;
  readonly start: number[];
  readonly end: number[];
}

// One result object, reused: its bytes are valid until the next read anyway.
const netBytes: NetBytes = { buf: Buffer.alloc(0), start: [], end: [] };

interface Entry {
  readonly fds: Map<string, number>;
  /** Texts of `shared` files read in `textsCycle`, handed to the next probe of the same collection. */
  texts: Map<string, string> | undefined;
  textsCycle: object | undefined;
}

export interface NetnsFilesStats {
  readonly netns: number;
  readonly fds: number;
  readonly budget: number;
  readonly uncachedReads: number;
}

function defaultBudget(): number {
  try {
    return Math.min(16_384, Math.floor(nofileLimit().soft * 0.4));
  } catch {
    return 400;
  }
}

export class NetnsFiles {
  readonly #entries = new Map<number, Entry>();
  #budget: number;
  #fds = 0;
  #uncached = 0;
  #users = 0;

  constructor(budget = defaultBudget()) {
    this.#budget = budget;
  }

  /** Fds kept at most (tests lower it to show the fallback). */
  setBudget(n: number): void {
    this.#budget = n;
  }

  stats(): NetnsFilesStats {
    return { netns: this.#entries.size, fds: this.#fds, budget: this.#budget, uncachedReads: this.#uncached };
  }

  /** A probe starts using the cache; `release` closes everything when the last one stops. */
  acquire(): void {
    this.#users++;
  }

  release(): void {
    this.#users = Math.max(0, this.#users - 1);
    if (this.#users === 0) this.closeAll();
  }

  /**
   * Reads `files` (in order) of the entity's netns through kept fds. `cycle` identifies the collection
   * (receiver/kit/cycle.ts): the entity is checked alive once per cycle across probes. Throws like
   * `readNetFilesUncached` (EntityGoneError, NetnsError, errno errors).
   */
  read(entity: Entity, files: readonly NetFile[], cycle?: object): (string | undefined)[] {
    const e = this.#entry(entity, files, cycle);
    if (e === undefined) return readNetFilesUncached(entity, files);
    const inode = entity.netnsInode;
    if (cycle !== undefined && e.textsCycle !== cycle) {
      e.texts?.clear(); // kept, not replaced: no Map per netns per collection
      e.textsCycle = cycle;
    }
    const out: (string | undefined)[] = new Array(files.length);
    try {
      for (let i = 0; i < files.length; i++) {
        const f = files[i]!;
        const fd = e.fds.get(f.name)!;
        if (fd === MISSING) continue;
        const kept = f.shared && cycle !== undefined ? e.texts?.get(f.name) : undefined;
        if (kept !== undefined) {
          out[i] = kept;
          continue;
        }
        const text = preadWhole(fd, f);
        out[i] = text;
        if (f.shared && cycle !== undefined) {
          e.texts ??= new Map();
          e.texts.set(f.name, text);
        }
      }
    } catch (err) {
      this.drop(inode); // reopened next time
      throw err;
    }
    return out;
  }

  /**
   * `read` without a string per file: the files' bytes, one after the other in the shared read buffer
   * (receiver/procfs/read.ts), valid until the next read of any file — parse them first. `shared` files
   * are not supported here (their text is kept for the next probe: use `read`).
   */
  readBytes(entity: Entity, files: readonly NetFile[], cycle?: object): NetBytes {
    const e = this.#entry(entity, files, cycle);
    const out = netBytes;
    out.start.length = files.length;
    out.end.length = files.length;
    let at = 0;
    if (e === undefined) {
      const texts = readNetFilesUncached(entity, files);
      for (let i = 0; i < files.length; i++) {
        const t = texts[i];
        out.start[i] = t === undefined ? -1 : at;
        if (t !== undefined) at = putText(t, at);
        out.end[i] = t === undefined ? -1 : at;
      }
      out.buf = readBuffer();
      return out;
    }
    try {
      for (let i = 0; i < files.length; i++) {
        const f = files[i]!;
        if (f.shared) throw new Error(`readBytes: ${f.name} is shared (use read)`);
        const fd = e.fds.get(f.name)!;
        if (fd === MISSING) {
          out.start[i] = -1;
          out.end[i] = -1;
          continue;
        }
        out.start[i] = at;
        at = preadInto(fd, at, f);
        out.end[i] = at;
      }
    } catch (err) {
      this.drop(entity.netnsInode); // reopened next time
      throw err;
    }
    out.buf = readBuffer();
    return out;
  }

  /**
   * The entity's kept fds for `files` (opened now when missing; the entity checked alive once per
   * cycle), or undefined when opening them would pass the fd budget (read the uncached way then).
   */
  #entry(entity: Entity, files: readonly NetFile[], cycle: object | undefined): Entry | undefined {
    const inode = entity.netnsInode;
    const entry = this.#entries.get(inode);
    let missing = 0;
    for (const f of files) if (!entry?.fds.has(f.name)) missing++;
    if (missing > 0) {
      if (this.#fds + missing > this.#budget) {
        this.#uncached++;
        return undefined;
      }
      const opened = this.#open(entity, entry, files);
      markAlive(entity, cycle); // just opened through a netns fd of the right inode
      return opened;
    }
    if (inode !== homeNetnsInode && inode !== hostNetnsInode) {
      try {
        assertEntityAliveOnce(entity, cycle);
      } catch (err) {
        this.drop(inode);
        throw err;
      }
    }
    return entry;
  }

  /** Opens the files `entry` lacks, inside the entity's netns; registers the entry. */
  #open(entity: Entity, have: Entry | undefined, files: readonly NetFile[]): Entry {
    const inode = entity.netnsInode;
    const entry: Entry = have ?? { fds: new Map(), texts: undefined, textsCycle: undefined };
    const todo = files.filter((f) => !entry.fds.has(f.name));
    const opened: [string, number][] = [];
    const openAll = (dir: string): void => {
      for (const f of todo) {
        try {
          opened.push([f.name, openSync(`${dir}/${f.name}`, 'r')]);
        } catch (err) {
          if (f.optional && (err as NodeJS.ErrnoException).code === 'ENOENT') opened.push([f.name, MISSING]);
          else throw err;
        }
      }
    };
    try {
      if (inode === homeNetnsInode) openAll('/proc/thread-self/net');
      // the node's netns seen from a pod (hostPID): init's view; init does not change netns or exit
      else if (inode === hostNetnsInode) openAll(`/proc/${hostNetnsPid}/net`);
      else {
        let nsFd: number;
        try {
          nsFd = openSync(entity.netnsPath, 'r');
        } catch (err) {
          throw new EntityGoneError(
            `${entity.displayName}: ${entity.netnsPath} gone (${(err as NodeJS.ErrnoException).code})`,
          );
        }
        try {
          // The fd pins the netns: its inode is the one the files will be bound to.
          const ino = fstatSync(nsFd).ino;
          if (ino !== inode)
            throw new EntityGoneError(
              `${entity.displayName}: ${entity.netnsPath} is netns ${ino} now, not ${inode}`,
            );
          enterNetnsFd(nsFd, entity.netnsPath, () => openAll('/proc/thread-self/net'));
        } finally {
          closeSync(nsFd);
        }
      }
    } catch (err) {
      for (const [, fd] of opened) if (fd !== MISSING) closeSync(fd);
      if (have) this.drop(inode);
      throw err;
    }
    for (const [name, fd] of opened) {
      entry.fds.set(name, fd);
      if (fd !== MISSING) this.#fds++;
    }
    this.#entries.set(inode, entry);
    return entry;
  }

  /** Closes the fds of one netns. */
  drop(inode: number): void {
    const e = this.#entries.get(inode);
    if (!e) return;
    this.#entries.delete(inode);
    for (const fd of e.fds.values()) {
      if (fd === MISSING) continue;
      this.#fds--;
      try {
        closeSync(fd);
      } catch {
        // already closed: nothing to release
      }
    }
  }

  /** Closes the fds of netns not in `entities`. */
  retain(entities: readonly Entity[]): void {
    if (this.#entries.size === 0) return;
    const live = new Set<number>();
    for (const e of entities) live.add(e.netnsInode);
    for (const inode of [...this.#entries.keys()]) if (!live.has(inode)) this.drop(inode);
  }

  closeAll(): void {
    for (const inode of [...this.#entries.keys()]) this.drop(inode);
  }
}

/** The one cache every procfs probe shares (so a netns' fds and its liveness check are shared). */
export const sharedNetnsFiles = new NetnsFiles();

/**
 * Reads `files` (in order) from the netns of `entity` through the shared kept fds; `cycle` = the
 * collection (receiver/kit/cycle.ts; one liveness check and one read of a `shared` file per netns per cycle).
 */
export function readNetFiles(
  entity: Entity,
  files: readonly NetFile[],
  cycle?: object,
): (string | undefined)[] {
  return sharedNetnsFiles.read(entity, files, cycle);
}

/** `readNetFiles` as bytes (`NetnsFiles.readBytes`): valid until the next read; no `shared` files. */
export function readNetBytes(entity: Entity, files: readonly NetFile[], cycle?: object): NetBytes {
  return sharedNetnsFiles.readBytes(entity, files, cycle);
}
