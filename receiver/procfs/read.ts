// Reading an entity's `net/*` procfs files. With a pid, `/proc/<pid>/net/<file>` shows that process'
// netns; the pid's netns inode is checked after the reads so a pid that died (or was reused by a process
// elsewhere) never yields another namespace's numbers. Without a pid (a named netns with no
// process), the main thread enters the netns for the duration of the reads (`inNetns`) and reads
// `/proc/thread-self/net/*`. The netns this process runs in is read directly; the node's netns, when
// podnet runs in a pod of its own (hostPID, no hostNetwork), through init's /proc/1/net.
import { closeSync, openSync, readFileSync, readlinkSync, readSync, statSync } from 'node:fs';
import { homeNetnsInode, hostNetnsInode, hostNetnsPid, inNetns } from '../netns/setns.ts';
import type { Entity } from '../pods/entity.ts';

export class EntityGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EntityGoneError';
  }
}

export interface NetFile {
  /** Path under `net/`, e.g. `snmp`, `sockstat6`. */
  readonly name: string;
  /** Missing file (IPv6 disabled, older kernel) → `undefined` instead of an error. */
  readonly optional?: boolean;
  /**
   * Read by more than one probe (sockstat: the sockstat and sockets probes): its text is read once per
   * netns per collection and handed to each (./netns-files.ts).
   */
  readonly shared?: boolean;
  /**
   * A one-record seq_file (the kernel makes it with `proc_create_net_single`: snmp, netstat, snmp6,
   * sockstat, sockstat6): its whole text is one `show` into the seq_file's buffer, so a read that returns
   * fewer bytes than asked has returned the rest of the file, and the read of 0 that would confirm the end
   * is left out (fs/seq_file.c `seq_read_iter`: after the record, `next` ends the file; what was not
   * copied stays in the buffer for the next read). Multi-record files stop a read where their page buffer
   * fills: see `maxRecord`, else they are read until 0.
   */
  readonly single?: boolean;
  /**
   * A multi-record seq_file none of whose records (header included) is longer than this: a read stops
   * early only at the end of the file or when the next record would overflow the seq_file's buffer (at
   * least a page: fs/seq_file.c `seq_read_iter`, its Fill loop), so a read that returns fewer bytes than
   * asked and ends more than `maxRecord` bytes before a page is full has returned the rest of the file.
   * net/dev: a line is at most 15 + 2 + 16 × 21 = 353 bytes (`dev_seq_printf_stats`).
   */
  readonly maxRecord?: number;
}

// One buffer shared by all reads (reads are synchronous; the bytes are decoded or parsed before the next read).
let buf = Buffer.allocUnsafe(64 * 1024);

/**
 * Reads a procfs file whole: open, read until EOF, close — no fstat (procfs sizes are 0). A short read
 * is not EOF for a seq_file (it stops when its page-sized buffer overflows), so we read until 0.
 */
export function readProcFile(path: string): string {
  const fd = openSync(path, 'r');
  try {
    return preadWhole(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads an open procfs fd whole from offset 0 (pread until 0: a seq_file read stops at its page buffer);
 * kept fds (netns-files.ts) are read again this way each collection.
 */
export function preadWhole(fd: number, file?: NetFile): string {
  const len = preadInto(fd, 0, file);
  return buf.toString('latin1', 0, len);
}

/**
 * Reads an open procfs fd whole from offset 0 into the shared read buffer at `at` (what is before `at`
 * is kept); returns the end of the file's bytes there. The buffer (`readBuffer()`) may be replaced by a
 * larger one, and is overwritten by the next read: parse the bytes before reading again. `file`: what
 * the fd is (`NetFile.single`, `NetFile.maxRecord`: when a short read is the end of the file).
 */
export function preadInto(fd: number, at: number, file?: NetFile): number {
  const endsBelow = shortReadEnds(file);
  let len = at;
  for (;;) {
    if (len === buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, len);
      buf = bigger;
    }
    const room = buf.length - len;
    const n = readSync(fd, buf, len, room, len - at);
    if (n === 0) break;
    len += n;
    if (n < room && n <= endsBelow) break;
  }
  return len;
}

/** A read shorter than asked of at most this many bytes is the end of the file (-1: never). */
function shortReadEnds(file: NetFile | undefined): number {
  if (file?.single) return Number.POSITIVE_INFINITY;
  if (file?.maxRecord !== undefined) return pageSize() - file.maxRecord;
  return -1;
}

/** The shared read buffer `preadInto` fills (valid until the next read). */
export function readBuffer(): Buffer {
  return buf;
}

/** Copies `text` (latin1) into the shared read buffer at `at`; returns the end (see `preadInto`). */
export function putText(text: string, at: number): number {
  const need = at + text.length;
  if (need > buf.length) {
    let size = buf.length * 2;
    while (size < need) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    buf.copy(bigger, 0, 0, at);
    buf = bigger;
  }
  return at + buf.write(text, at, 'latin1');
}

function readOne(path: string, optional: boolean | undefined): string | undefined {
  try {
    return readProcFile(path);
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function readAll(dir: string, files: readonly NetFile[]): (string | undefined)[] {
  const out: (string | undefined)[] = new Array(files.length);
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    out[i] = readOne(`${dir}/${f.name}`, f.optional);
  }
  return out;
}

/**
 * Netns inode of a `/proc/<pid>/ns/net` (or `/proc/thread-self/ns/net`) link, from its target
 * `net:[4026531840]` — half the cost of a stat. Throws the errno error of readlink.
 */
export function netnsInodeOfLink(path: string): number {
  const t = readlinkSync(path);
  return Number(t.slice(5, -1));
}

function checkPidNetns(entity: Entity, pid: number): void {
  let ino: number;
  try {
    ino = netnsInodeOfLink(`/proc/${pid}/ns/net`);
  } catch (err) {
    throw new EntityGoneError(
      `${entity.displayName}: pid ${pid} gone (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  if (ino !== entity.netnsInode) {
    throw new EntityGoneError(`${entity.displayName}: pid ${pid} is no longer in netns ${entity.netnsInode}`);
  }
}

/**
 * Reads `files` (in order) from the netns of `entity`, opening and closing each file. Throws
 * (`EntityGoneError`, `NetnsError`, or an errno error) when the namespace cannot be read as a whole;
 * never returns a mix of two namespaces. Probes read through the kept fds of ./netns-files.ts
 * (`readNetFiles`), which falls back to this beyond its fd budget.
 */
export function readNetFilesUncached(entity: Entity, files: readonly NetFile[]): (string | undefined)[] {
  if (entity.netnsInode === homeNetnsInode) return readAll('/proc/thread-self/net', files);
  // the node's netns seen from a pod (hostPID): init's view; init does not change netns or exit
  if (entity.netnsInode === hostNetnsInode) return readAll(`/proc/${hostNetnsPid}/net`, files);
  const pid = entity.pid;
  if (pid !== undefined) {
    // One check, after the reads, is enough: a pid that died before or during them, or was reused by a
    // process of another netns, fails it (a second reuse back into this netns within microseconds would
    // be needed to fool it). A check before them as well would double the cost of the check.
    let texts: (string | undefined)[];
    try {
      texts = readAll(`/proc/${pid}/net`, files);
    } catch (err) {
      checkPidNetns(entity, pid); // a vanished process reads as "gone", not as an I/O error
      throw err;
    }
    checkPidNetns(entity, pid);
    return texts;
  }
  return inNetns(entity.netnsPath, () => {
    const ino = netnsInodeOfLink('/proc/thread-self/ns/net');
    if (ino !== entity.netnsInode) {
      throw new EntityGoneError(
        `${entity.displayName}: ${entity.netnsPath} is now netns ${ino}, not ${entity.netnsInode}`,
      );
    }
    return readAll('/proc/thread-self/net', files);
  });
}

let pageSizeCache = 0;

/** The kernel page size (AT_PAGESZ from `/proc/self/auxv`), for sockstat's page counts. */
export function pageSize(): number {
  if (pageSizeCache > 0) return pageSizeCache;
  const auxv = readFileSync('/proc/self/auxv');
  const AT_PAGESZ = 6n;
  for (let off = 0; off + 16 <= auxv.length; off += 16) {
    const type = auxv.readBigUInt64LE(off);
    if (type === 0n) break;
    if (type === AT_PAGESZ) {
      pageSizeCache = Number(auxv.readBigUInt64LE(off + 8));
      return pageSizeCache;
    }
  }
  pageSizeCache = 4096;
  return pageSizeCache;
}

/** `availability()` of the procfs probes: the host's `/proc/self/<path>` files are readable. */
export function procfsAvailability(paths: readonly string[]): { available: boolean; reason?: string } {
  for (const p of paths) {
    try {
      readFileSync(`/proc/self/${p}`, 'latin1');
    } catch (err) {
      return {
        available: false,
        reason: `cannot read /proc/self/${p}: ${(err as NodeJS.ErrnoException).code}`,
      };
    }
  }
  return { available: true };
}

/** Throws `EntityGoneError` when the entity's netns is no longer there (its pid exited, netns deleted). */
export function assertEntityAlive(entity: Entity): void {
  if (entity.netnsInode === hostNetnsInode || entity.netnsInode === homeNetnsInode) return;
  if (entity.pid !== undefined) {
    checkPidNetns(entity, entity.pid);
    return;
  }
  let ino: number;
  try {
    ino = statSync(entity.netnsPath).ino;
  } catch (err) {
    throw new EntityGoneError(
      `${entity.displayName}: ${entity.netnsPath} gone (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  if (ino !== entity.netnsInode)
    throw new EntityGoneError(`${entity.displayName}: ${entity.netnsPath} is another netns now`);
}
