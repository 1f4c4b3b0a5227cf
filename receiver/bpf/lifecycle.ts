// Everything the eBPF runtime opens (collections, ring readers) registers here, so the agent can release
// it all on shutdown: links destroyed, maps and programs closed, nothing pinned. Links are file
// descriptors, so even `kill -9` leaves nothing attached; this is for an orderly exit (and to close ring
// readers' poll handles so the event loop can end).
import { childLogger, type Logger } from '../log/logger.ts';

export interface Closable {
  /** Used in logs. */
  readonly name: string;
  close(): void;
}

const open = new Set<Closable>();

export function track(c: Closable): void {
  open.add(c);
}

export function untrack(c: Closable): void {
  open.delete(c);
}

/** What is still open (for /status and tests). */
export function openResources(): string[] {
  return [...open].map((c) => c.name);
}

/**
 * Closes every open collection and ring reader, newest first (readers before the collections whose
 * maps they read). Never throws; returns how many were closed. Failures go to `log` (default: component
 * `bpf`).
 */
export function closeAll(log: Logger = childLogger('bpf')): number {
  const items = [...open].reverse();
  let n = 0;
  for (const c of items) {
    try {
      c.close();
      n++;
    } catch (err) {
      log.error({ err, resource: c.name }, 'closing eBPF resource failed');
    }
    open.delete(c);
  }
  return n;
}

let installed: (() => void) | undefined;

/**
 * On SIGINT / SIGTERM: close everything (closeAll), run `beforeExit` if given, then exit with
 * 128 + signal number. Returns a function that removes the handlers. Idempotent.
 * The agent may instead call closeAll() from its own shutdown sequence.
 */
export function installShutdownHandlers(
  opts: { beforeExit?: () => void; exit?: boolean; log?: Logger } = {},
): () => void {
  if (installed) return installed;
  const log = opts.log ?? childLogger('bpf');
  const handler = (signal: NodeJS.Signals) => {
    const n = closeAll(log);
    log.info({ signal, closed: n }, 'eBPF resources released');
    try {
      opts.beforeExit?.();
    } finally {
      if (opts.exit !== false) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  installed = () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
    installed = undefined;
  };
  return installed;
}
