// Hot reload: watch the config file and hand every changed content to `onChange`. Event-driven: inotify
// watches (fs.watch) on the file's directory, on the directory of the file the path resolves to (when a
// symlink points elsewhere) and on the file's inode report in-place writes, editors that replace the file
// (rename), a file bind-mounted on its own, and a ConfigMap update (the kubelet swaps the directory's
// `..data` symlink; the event names `..data`, not the file, so every event triggers a read). A read
// follows an event after `intervalMs` (250 ms), and a change is handed over once two consecutive reads
// `intervalMs` apart agree, so a file caught in the middle of an in-place write (truncated, then written)
// is not applied (or rejected) half-written: a change applies about 0.5 s after the write, within 1 s.
// A slow safety poll (every `safetyPollMs`, 5 s: one stat, cheap, yet a bounded delay) covers filesystems
// where inotify says nothing (NFS, CIFS or FUSE files changed by another host or by the server): there a
// change applies within about 5.5 s. When the watch cannot be set up (ENOSPC: the inotify watches are
// exhausted; EACCES) or fails later, the watcher falls back to polling every `intervalMs` and says so
// once through `onFallback`.
// The 4×/s poll this replaces (a bigint stat, a string key and a timer per tick) was 7–12 % of an idle
// agent's CPU profile (issue 19). A tick whose stat (device, inode, size, nanosecond mtime and ctime)
// matches the last read's, with nothing pending, still skips the read: any write moves ctime, and a
// swapped symlink or a replaced file changes the inode, so a skipped read cannot hide a change.
import { type FSWatcher, watch as fsWatch, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

function statKey(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

export interface ConfigWatcher {
  close(): void;
}

/** The subset of fs.watch the watcher calls (injectable so a test can make it throw ENOSPC). */
export type WatchFn = (dir: string, options: { persistent: boolean }, listener: () => void) => FSWatcher;

export interface WatchConfigOptions {
  /** Spacing of the reads after an event (and of the two agreeing reads); the fallback poll's interval. */
  intervalMs?: number;
  /** Safety poll while the inotify watch is up (it says nothing on network filesystems). */
  safetyPollMs?: number;
  onError?: (err: Error) => void;
  /** Called once when the watch cannot be set up or fails, with the reason: the watcher now polls. */
  onFallback?: (err: Error) => void;
  initial?: string;
  watch?: WatchFn;
}

export function watchConfigFile(
  path: string,
  onChange: (text: string) => void,
  options: WatchConfigOptions = {},
): ConfigWatcher {
  const interval = options.intervalMs ?? 250;
  const safety = options.safetyPollMs ?? 5000;
  const watchFn: WatchFn = options.watch ?? ((dir, opts, listener) => fsWatch(dir, opts, listener));
  let last: string | undefined = options.initial;
  let pending: string | undefined;
  let closed = false;
  let lastError = '';
  let lastKey = '';
  let timer: NodeJS.Timeout | undefined;
  let dueAt = Number.POSITIVE_INFINITY;
  let polling = false; // the fallback: no watch, a read every `interval`
  const watchers = new Map<string, FSWatcher>();

  const fallBack = (err: Error): void => {
    if (polling || closed) return;
    polling = true;
    for (const w of watchers.values()) w.close();
    watchers.clear();
    options.onFallback?.(err);
    schedule(interval);
  };
  const onEvent = (): void => {
    if (!closed && !polling) schedule(interval);
  };
  // Watches the path's directory; when the path is a symlink into another directory, that directory too
  // (an in-place write to the target is reported there only); and the file itself, by inode (a file
  // bind-mounted on its own, as `docker run -v FILE:PATH` does, is written through another directory: only
  // a watch on its inode sees that). Re-checked after every read that saw a new stat (`fileId`, the
  // device and inode): a ConfigMap swap moves the target to a new directory, a rename replaces the inode.
  const arm = (fileId?: string): void => {
    if (polling || closed) return;
    const wanted = new Map([[`dir ${dirname(path)}`, dirname(path)]]);
    try {
      const dir = dirname(realpathSync(path));
      wanted.set(`dir ${dir}`, dir);
    } catch {
      // missing for now: the directory's watch reports its return
    }
    if (fileId !== undefined) wanted.set(`file ${fileId}`, path);
    for (const [key, w] of watchers) {
      if (!wanted.has(key)) {
        w.close();
        watchers.delete(key);
      }
    }
    for (const [key, target] of wanted) {
      if (watchers.has(key)) continue;
      const own = key === `dir ${dirname(path)}`;
      try {
        const w = watchFn(target, { persistent: false }, onEvent);
        // The path's own directory is the watch that matters: when it fails, poll. The others come and go
        // with the file (a replaced inode, a swapped target directory): the next read re-arms them.
        w.on('error', (err: Error) => {
          if (own) fallBack(err);
          else {
            w.close();
            if (watchers.get(key) === w) watchers.delete(key);
          }
        });
        watchers.set(key, w);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        // The file or its resolved directory vanished between the stat and the watch (a swap or a rename
        // in progress): the path's own directory reports it and the next read re-arms.
        if (e.code === 'ENOENT' && !own) continue;
        fallBack(e);
        return;
      }
    }
  };

  const tick = (): void => {
    timer = undefined;
    dueAt = Number.POSITIVE_INFINITY;
    if (closed) return;
    try {
      const key = statKey(path);
      if (key === lastKey && pending === undefined && last !== undefined) {
        lastError = '';
        schedule(polling ? interval : safety);
        return;
      }
      // Synchronous: a small local file. fs/promises' readFile (a FileHandle and several thread-pool round
      // trips per read) was the largest item of an idle agent's CPU profile when this polled 4×/s.
      const text = readFileSync(path, 'utf8');
      // Taken before the read: a write landing between the stat and the read moves ctime again, so the
      // next tick reads once more.
      lastKey = key;
      lastError = '';
      arm(key.slice(0, key.indexOf(':', key.indexOf(':') + 1)));
      if (last === undefined) last = text;
      else if (text === last) pending = undefined;
      else if (text !== pending)
        pending = text; // changed: wait for the next read to agree
      else {
        last = text;
        pending = undefined;
        onChange(text);
      }
    } catch (err) {
      const e = err as Error;
      if (e.message !== lastError) options.onError?.(e);
      lastError = e.message;
      lastKey = '';
    }
    // A pending change is confirmed by a second read whether or not another event comes.
    schedule(polling || pending !== undefined ? interval : safety);
  };
  // Runs the tick in `ms` unless one is already due sooner (an event never postpones a due read, so a
  // stream of writes cannot starve the reads).
  const schedule = (ms: number): void => {
    if (closed) return;
    const at = Date.now() + ms;
    if (timer !== undefined && dueAt <= at) return;
    if (timer !== undefined) clearTimeout(timer);
    dueAt = at;
    timer = setTimeout(tick, ms);
    timer.unref();
  };
  arm();
  tick();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
