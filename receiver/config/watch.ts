// Hot reload: watch the config file and hand every changed content to `onChange`. Polls the file's
// content (a small file, read a few times a second), which sees in-place writes, editors that replace the
// file (rename), and files on bind mounts (a ConfigMap's symlink swap) alike, and reacts well within 2 s.
// A new content is handed over only once two consecutive reads agree, so a file caught in the middle of an
// in-place write (truncated, then written) is not applied (or rejected) half-written. A tick whose stat
// (device, inode, size, nanosecond mtime and ctime) matches the last read's, with nothing pending, skips
// the read: one stat instead of open, fstat, read, close four times a second. Any write moves ctime, and a
// swapped symlink or a replaced file changes the inode, so a skipped read cannot hide a change.
import { readFileSync, statSync } from 'node:fs';

function statKey(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

export interface ConfigWatcher {
  close(): void;
}

export function watchConfigFile(
  path: string,
  onChange: (text: string) => void,
  options: { intervalMs?: number; onError?: (err: Error) => void; initial?: string } = {},
): ConfigWatcher {
  const interval = options.intervalMs ?? 250;
  let last: string | undefined = options.initial;
  let pending: string | undefined;
  let closed = false;
  let lastError = '';
  let lastKey = '';
  let timer: NodeJS.Timeout | undefined;
  const tick = async (): Promise<void> => {
    try {
      // Synchronous: a small local file, 4 reads a second. fs/promises' readFile (a FileHandle and several
      // thread-pool round trips per read) was the largest item of an idle agent's CPU profile, ~1.3 ms per
      // second (benchmarks/suite/node-exporter.ts --profile); readFileSync is open, fstat, read, close.
      const key = statKey(path);
      if (key === lastKey && pending === undefined && last !== undefined) {
        lastError = '';
        return schedule();
      }
      const text = readFileSync(path, 'utf8');
      // Taken before the read: a write landing between the stat and the read moves ctime again, so the
      // next tick reads once more.
      lastKey = key;
      lastError = '';
      if (last === undefined) last = text;
      else if (text === last) pending = undefined;
      else if (text !== pending)
        pending = text; // changed: wait for the next read to agree
      else {
        last = text;
        pending = undefined;
        if (!closed) onChange(text);
      }
    } catch (err) {
      const e = err as Error;
      if (e.message !== lastError) options.onError?.(e);
      lastError = e.message;
      lastKey = '';
    }
    schedule();
  };
  const schedule = (): void => {
    if (!closed) {
      timer = setTimeout(() => void tick(), interval);
      timer.unref();
    }
  };
  void tick();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
    },
  };
}
