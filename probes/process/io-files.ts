// Kept-open `/proc/<pid>/io` files of the process probe. Opening `/proc/<pid>/io` costs a path walk
// through /proc/<pid> (pid lookup, revalidation, owner check) plus a close, for every process every
// collection; here each is opened once and read again with pread at offset 0, like the netns files
// (receiver/procfs/netns-files.ts). `io` is a one-record seq_file (fs/proc/base.c: `ONE("io", ...)`,
// `single_open`), so a short read is the whole file and the confirming read of 0 is left out
// (`NetFile.single`, receiver/procfs/read.ts).
//
// Exactness: an open /proc/<pid>/io is bound to the process (its `struct pid`), not to the number: once
// that process is gone a read fails with ESRCH, even when the number was reused, so a kept fd never
// shows another process. On ESRCH the fd is closed and the path opened again: ENOENT then means gone
// (the caller skips the pid), success means a new process with the reused number.
//
// Bounded: at most `budget` fds (default 20 % of the soft RLIMIT_NOFILE, at most 8,192; the netns files
// keep 40 %); pids beyond it are read the old way (open, read, close). Fds of pids not read in the last
// collection are closed at the start of the next (`sweep`).
import { closeSync, openSync } from 'node:fs';
import { nofileLimit } from '../../receiver/agent/rlimit.ts';
import { type NetFile, preadWhole } from '../../receiver/procfs/read.ts';

const IO_FILE: NetFile = { name: 'io', single: true };

function defaultBudget(): number {
  try {
    return Math.min(8192, Math.floor(nofileLimit().soft * 0.2));
  } catch {
    return 200;
  }
}

interface Kept {
  readonly fd: number;
  /** The sweep generation in which the pid was last read. */
  seen: number;
}

export class PidIoFiles {
  readonly #kept = new Map<number, Kept>();
  readonly #budget: number;
  #gen = 0;

  constructor(budget = defaultBudget()) {
    this.#budget = budget;
  }

  /** Fds kept now (tests, benchmarks). */
  get size(): number {
    return this.#kept.size;
  }

  /** A new collection: closes the fds of pids not read since the previous sweep. */
  sweep(): void {
    for (const [pid, k] of this.#kept) {
      if (k.seen === this.#gen) continue;
      this.#kept.delete(pid);
      closeQuietly(k.fd);
    }
    this.#gen++;
  }

  /** The text of `/proc/<pid>/io`; throws the errno error (ENOENT: the process is gone). */
  read(pid: number): string {
    const k = this.#kept.get(pid);
    if (k !== undefined) {
      try {
        const text = preadWhole(k.fd, IO_FILE);
        k.seen = this.#gen;
        return text;
      } catch (err) {
        this.#kept.delete(pid);
        closeQuietly(k.fd);
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        // the process this fd was opened for is gone: the number may name a new one (opened below)
      }
    }
    const fd = openSync(`/proc/${pid}/io`, 'r');
    let text: string;
    try {
      text = preadWhole(fd, IO_FILE);
    } catch (err) {
      closeQuietly(fd);
      throw err;
    }
    if (this.#kept.size < this.#budget) this.#kept.set(pid, { fd, seen: this.#gen });
    else closeQuietly(fd);
    return text;
  }

  closeAll(): void {
    for (const k of this.#kept.values()) closeQuietly(k.fd);
    this.#kept.clear();
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing to release
  }
}
