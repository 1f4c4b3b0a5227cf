// The open-file limit. podnet keeps descriptors per watched netns (netlink sockets per netns, the netns
// fd itself, procfs files), so at 1,000+ pods a soft limit of 1,024 would be hit and collections fail with
// EMFILE. Node raises the soft limit to the hard limit when it starts (test/server/open-files.test.ts
// shows it in /proc/<pid>/limits); what is left is the hard limit, which only the runtime or an operator
// can raise. /status reports both and the descriptors open now, and the agent warns at start when the
// hard limit is low, so an operator sees the headroom before it runs out.
import { readdirSync, statSync } from 'node:fs';
import koffi from 'koffi';

const RLIMIT_NOFILE = 7;

interface Rlimit {
  rlim_cur: bigint;
  rlim_max: bigint;
}

// Registered by name for the prototypes below.
koffi.struct('podnet_rlimit', { rlim_cur: 'uint64', rlim_max: 'uint64' });
let libc: { get: (r: number, out: Rlimit) => number } | undefined;

function native(): NonNullable<typeof libc> {
  if (!libc) {
    const lib = koffi.load('libc.so.6');
    libc = {
      get: lib.func('int getrlimit(int resource, _Out_ podnet_rlimit *rlim)') as never,
    };
  }
  return libc;
}

export interface NofileLimit {
  readonly soft: number;
  readonly hard: number;
}

export function nofileLimit(): NofileLimit {
  const r: Rlimit = { rlim_cur: 0n, rlim_max: 0n };
  if (native().get(RLIMIT_NOFILE, r) !== 0)
    throw new Error(`getrlimit(RLIMIT_NOFILE): errno ${koffi.errno()}`);
  return { soft: Number(r.rlim_cur), hard: Number(r.rlim_max) };
}

/**
 * Descriptors this process has open now. Linux 6.2+ reports the count as the size of /proc/self/fd (one
 * stat); listing the directory instead cost ~30 ms per /status at 1,000 netns (~9,000 fds kept: procfs
 * files and netlink sockets per netns; benchmarks/suite/scale.ts profile). Older kernels report 0: listed.
 */
export function openFiles(): number {
  const n = statSync('/proc/self/fd').size;
  return n > 0 ? n : readdirSync('/proc/self/fd').length;
}

/** Below this hard limit the agent warns: ~8 descriptors per watched netns at 1,000 pods, plus slack. */
export const LOW_NOFILE_HARD = 16_384;
