// Kept-open files of the process probe, per pid: `/proc/<pid>/io` and the `/proc/<pid>/fd` directory.
// Opening `/proc/<pid>/io`, listing `/proc/<pid>/fd` (open, fstat, getdents twice, close) and reading
// each `/proc/<pid>/fd/<n>` link by path cost path walks through /proc/<pid> (pid lookup, revalidation,
// owner check) and five system calls per process, every collection. Here both are opened once: `io` is
// read again with pread at offset 0 — a one-record seq_file (`ONE("io", ...)`, a
// `single_open` file in the kernel), so a short read is the whole file and the confirming read of 0 is left out
// (`NetFile.single`, receiver/procfs/read.ts) — and the directory is rewound (lseek 0) and listed with
// getdents64, its links read with readlinkat relative to it (one path component).
//
// Exactness: both fds are bound to the process (its `struct pid`), not to the number: once that process
// is gone, a read of `io` fails with ESRCH and a listing of `fd` with ENOENT, even when the number was
// reused, so a kept fd never shows another process. Then the fds are closed and the paths opened again:
// ENOENT then means gone (the caller skips the pid), success means a new process with the reused number.
// The fd listing reads until getdents64 returns 0: a call can end before the buffer is full with entries
// left (the kernel's `filldir64` stops at a pending signal — e.g. the SIGCHLD node gets for a child — after
// its first entry), so a short buffer is not the end of the table (test/procfs/pid-files.test.ts lists
// under a stream of signals).
//
// Bounded: at most `budget` fds (default 20 % of the soft RLIMIT_NOFILE, at most 8,192; the netns files
// keep 40 %), two per pid; pids beyond it are read the old way (open, read, close). Fds of pids not read
// in the last collection are closed at the start of the next (`sweep`).
import { closeSync, constants, openSync, readdirSync, readlinkSync } from 'node:fs';
import koffi from 'koffi';
import { nofileLimit } from '../../receiver/agent/rlimit.ts';
import { type NetFile, preadWhole, readProcFile } from '../../receiver/procfs/read.ts';

const IO_FILE: NetFile = { name: 'io', single: true };
const SEEK_SET = 0;
const ENOENT = 2;
const ESRCH = 3;
const EINTR = 4;

const libc = koffi.load('libc.so.6');
const lseekCall = libc.func('int64_t lseek(int fd, int64_t offset, int whence)');
const getdentsCall = libc.func('intptr_t getdents64(int fd, void *buf, size_t count)');
const readlinkatCall = libc.func('intptr_t readlinkat(int dirfd, void *path, void *buf, size_t size)');

/** linux_dirent64: d_ino 8, d_off 8, d_reclen 2, d_type 1, then the name and its NUL. */
const NAME_AT = 19;
const dents = Buffer.alloc(32 * 1024);
const link = Buffer.alloc(256);
const SOCKET = Buffer.from('socket:[');

function errnoError(call: string, errno: number): NodeJS.ErrnoException {
  const code = errno === ENOENT ? 'ENOENT' : errno === ESRCH ? 'ESRCH' : `E${errno}`;
  return Object.assign(new Error(`${call}: ${code}`), { code, errno: -errno });
}

function defaultBudget(): number {
  try {
    return Math.min(8192, Math.floor(nofileLimit().soft * 0.2));
  } catch {
    return 200;
  }
}

interface Kept {
  readonly io: number;
  readonly dir: number;
  /** The sweep generation in which the pid was last read. */
  seen: number;
}

/** What `PidFiles.read` returns (reused: valid until the next read). */
export interface PidRead {
  io: string;
  /** Open file descriptors. */
  fds: number;
}

export class PidFiles {
  readonly #kept = new Map<number, Kept>();
  readonly #budget: number;
  readonly #out: PidRead = { io: '', fds: 0 };
  #gen = 0;

  constructor(budget = defaultBudget()) {
    this.#budget = budget;
  }

  /** Pids whose fds are kept now (tests, benchmarks). */
  get size(): number {
    return this.#kept.size;
  }

  /** A new collection: closes the fds of pids not read since the previous sweep. */
  sweep(): void {
    for (const [pid, k] of this.#kept) {
      if (k.seen === this.#gen) continue;
      this.#kept.delete(pid);
      closeKept(k);
    }
    this.#gen++;
  }

  /**
   * `/proc/<pid>/io` and the fd table of `pid`, adding the inodes of its sockets to `sockets`. Throws
   * the errno error (ENOENT or ESRCH: the process is gone).
   */
  read(pid: number, sockets: Set<number>): PidRead {
    const k = this.#kept.get(pid);
    if (k !== undefined) {
      try {
        this.#out.io = preadWhole(k.io, IO_FILE);
        this.#out.fds = listFds(k.dir, sockets);
        k.seen = this.#gen;
        return this.#out;
      } catch (err) {
        this.#kept.delete(pid);
        closeKept(k);
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ESRCH' && code !== 'ENOENT') throw err;
        // the process these fds were opened for is gone: the number may name a new one (opened below)
      }
    }
    if (2 * (this.#kept.size + 1) > this.#budget) return this.#uncached(pid, sockets);
    const io = openSync(`/proc/${pid}/io`, 'r');
    let dir = -1;
    try {
      dir = openSync(`/proc/${pid}/fd`, constants.O_RDONLY | constants.O_DIRECTORY);
      this.#out.io = preadWhole(io, IO_FILE);
      this.#out.fds = listFds(dir, sockets);
    } catch (err) {
      closeQuietly(io);
      if (dir >= 0) closeQuietly(dir);
      throw err;
    }
    this.#kept.set(pid, { io, dir, seen: this.#gen });
    return this.#out;
  }

  /** Beyond the budget: open, read, close, and the links read by path. */
  #uncached(pid: number, sockets: Set<number>): PidRead {
    this.#out.io = readProcFile(`/proc/${pid}/io`);
    const names = readdirSync(`/proc/${pid}/fd`);
    for (const n of names) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${n}`);
      } catch {
        continue; // closed meanwhile
      }
      // `socket:[12345]`
      if (target.startsWith('socket:[')) sockets.add(Number(target.slice(8, -1)));
    }
    this.#out.fds = names.length;
    return this.#out;
  }

  closeAll(): void {
    for (const k of this.#kept.values()) closeKept(k);
    this.#kept.clear();
  }
}

/**
 * Lists a kept /proc/<pid>/fd directory from its start: the count of entries (`.` and `..` left out),
 * the socket inodes of their links added to `sockets`. Throws ENOENT when the process is gone.
 */
function listFds(dir: number, sockets: Set<number>): number {
  for (;;) {
    if ((lseekCall(dir, 0, SEEK_SET) as number) >= 0) break;
    const errno = koffi.errno();
    if (errno !== EINTR) throw errnoError('lseek', errno);
  }
  let count = 0;
  for (;;) {
    const n = getdentsCall(dir, dents, dents.length) as number;
    if (n < 0) {
      const errno = koffi.errno();
      if (errno === EINTR) continue;
      throw errnoError('getdents64', errno);
    }
    if (n === 0) return count;
    for (let o = 0; o < n; ) {
      const reclen = dents[o + 16]! | (dents[o + 17]! << 8);
      const c0 = dents[o + NAME_AT]!;
      if (c0 !== 0x2e) {
        // a fd number: `.` and `..` are the only other entries
        count++;
        addSocket(dir, o + NAME_AT, sockets);
      }
      o += reclen;
    }
  }
}

/** readlinkat(dir, name at `at` in `dents`): a `socket:[inode]` target adds the inode to `sockets`. */
function addSocket(dir: number, at: number, sockets: Set<number>): void {
  const n = readlinkatCall(dir, dents.subarray(at), link, link.length) as number;
  if (n < SOCKET.length + 2 || link[n - 1] !== 0x5d) return; // closed meanwhile (-1), or not a socket
  for (let i = 0; i < SOCKET.length; i++) if (link[i] !== SOCKET[i]) return;
  let inode = 0;
  for (let i = SOCKET.length; i < n - 1; i++) inode = inode * 10 + (link[i]! - 48);
  sockets.add(inode);
}

function closeKept(k: Kept): void {
  closeQuietly(k.io);
  closeQuietly(k.dir);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing to release
  }
}
