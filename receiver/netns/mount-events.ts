// Changes of this process' mount table, noticed with one poll(2) on a kept fd of /proc/self/mountinfo:
// the kernel bumps the mount namespace's event count on every mount, umount or move in it (including
// those propagated from the host into a container's view), and poll reports POLLPRI | POLLERR once for
// each new count seen on that fd (fs/proc_namespace.c `mounts_poll`; the poll itself marks it seen).
//
// A named netns (`ip netns add`, a CRI's /var/run/netns/cni-…) is an nsfs bind mount: the path can only
// come to name another netns, or nothing, through a mount change. So a path checked against its netns
// inode while `generation()` was g still names that netns while `generation()` is still g — which lets
// the liveness check (receiver/procfs/liveness.ts) skip the stat of each named netns per collection
// while nothing was mounted or unmounted. Not covered: renaming a directory above the mount point (e.g.
// `mv /run/netns /run/old`) moves the mount without a mount change; the netns is alive and still read
// correctly through the kept fds, but its old path is listed and checked until the next mount change.
import { openSync } from 'node:fs';
import koffi from 'koffi';

const POLLPRI = 0x2;
const POLLERR = 0x8;

const libc = koffi.load('libc.so.6');
const pollCall = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');

/** struct pollfd { int fd; short events; short revents; } */
const pfd = Buffer.alloc(8);
let generation = 0;

/**
 * Opened at load, like receiver/netns/setns.ts' fd of the home netns (one fd for the process' life, not
 * one that appears at the first collection). The fd starts at the current count: changes before the open
 * are not reported; none matter, as nothing was checked against an earlier generation.
 */
function openMountinfo(): number | undefined {
  try {
    return openSync('/proc/self/mountinfo', 'r');
  } catch {
    return undefined;
  }
}
let fd = openMountinfo();
if (fd !== undefined) {
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLPRI, 4);
}

/**
 * A number that changes whenever this process' mount table changed since the last call (one
 * non-blocking poll(2)); undefined when /proc/self/mountinfo cannot be watched (then nothing may be
 * assumed unchanged).
 */
export function mountGeneration(): number | undefined {
  if (fd === undefined) return undefined;
  pfd.writeInt16LE(0, 6);
  const n = pollCall(pfd, 1, 0) as number;
  if (n < 0) {
    fd = undefined; // (with a 0 timeout poll never sleeps, so never fails with EINTR)
    return undefined;
  }
  if ((pfd.readInt16LE(6) & (POLLPRI | POLLERR)) !== 0) generation++;
  return generation;
}
