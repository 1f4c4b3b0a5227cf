// glibc's malloc arenas. glibc gives every thread that allocates its own arena, up to 8 per core, and each
// arena keeps the memory its thread freed: V8's platform threads (concurrent GC and compilation), libuv's
// pool and the export worker's thread held tens of MB of RSS at 1,000 netns (docs/deploy.md, «Memory
// sizing»). MALLOC_ARENA_MAX=2 caps them; glibc reads it when the process starts, so `npm start` and the
// `podnet` bin (bin/podnet) put it in node's environment, and a value the operator set is kept.
//
// Two cases where the environment does not take effect, and podnet caps the arenas itself with
// mallopt(M_ARENA_MAX) as its code starts: the variable is missing (node started some other way), or glibc
// ignores it because the process runs in secure-execution mode (AT_SECURE: the image's node binary has file
// capabilities, deploy/image/Containerfile). Arenas created before that call — by the threads node starts
// before any JavaScript runs — stay (5 extra arenas in a node 24 process vs 1 with the variable set at
// exec: test/footprint/malloc-arenas.test.ts); an info line and /status `limits.mallocArenas` say so.
import koffi from 'koffi';
import type { Logger } from '../log/logger.ts';

export const DEFAULT_ARENA_MAX = 2;
const M_ARENA_MAX = -8; // malloc.h
const AT_SECURE = 23; // elf.h

export interface ArenaLimit {
  /** The cap applied (MALLOC_ARENA_MAX if set to a positive integer, else 2). */
  readonly max: number;
  /** Where `max` came from. */
  readonly source: 'environment' | 'default';
  /** glibc applied it itself from the start (every thread); false = applied by podnet once its code ran. */
  readonly atExec: boolean;
}

let applied: ArenaLimit | null | undefined;

/** What applyArenaLimit applied (undefined before it ran, null without glibc), for /status. */
export function arenaLimit(): ArenaLimit | null {
  return applied ?? null;
}

/**
 * Caps glibc's malloc arenas once per process (mallopt(M_ARENA_MAX)); null where libc is not glibc.
 * Logs at info when the cap was not in effect from exec, so an operator starting node by hand knows.
 */
export function applyArenaLimit(log: Logger, env: NodeJS.ProcessEnv = process.env): ArenaLimit | null {
  if (applied !== undefined) return applied;
  const raw = env['MALLOC_ARENA_MAX'];
  const valid = raw !== undefined && /^[1-9]\d{0,5}$/.test(raw);
  if (raw !== undefined && raw !== '' && !valid)
    log.warn(
      { MALLOC_ARENA_MAX: raw },
      `MALLOC_ARENA_MAX is not a positive integer: using ${DEFAULT_ARENA_MAX}`,
    );
  const max = valid ? Number(raw) : DEFAULT_ARENA_MAX;
  let secure = false;
  try {
    const libc = koffi.load('libc.so.6');
    const mallopt = libc.func('int mallopt(int param, int value)') as (p: number, v: number) => number;
    const getauxval = libc.func('unsigned long getauxval(unsigned long type)') as (t: number) => number;
    secure = Number(getauxval(AT_SECURE)) !== 0;
    if (mallopt(M_ARENA_MAX, max) !== 1) throw new Error('mallopt(M_ARENA_MAX) refused');
    applied = { max, source: valid ? 'environment' : 'default', atExec: valid && !secure };
  } catch (err) {
    log.debug({ err }, 'malloc arenas left as they are (no glibc mallopt)');
    applied = null;
    return applied;
  }
  if (!applied.atExec)
    log.info(
      { mallocArenaMax: max, secureExecution: secure },
      secure
        ? `malloc arenas capped at ${max} by podnet as it starts: in secure-execution mode (file capabilities) glibc ignores MALLOC_ARENA_MAX; the threads node started before podnet keep theirs`
        : `MALLOC_ARENA_MAX is not set (npm start and the podnet bin set ${DEFAULT_ARENA_MAX}): malloc arenas capped at ${max} from now on; the threads node started before podnet keep theirs (docs/deploy.md, «Memory sizing»)`,
    );
  return applied;
}
