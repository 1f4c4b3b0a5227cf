// Run a short piece of synchronous work inside another network namespace.
// setns(2) with CLONE_NEWNET switches only the calling thread; we switch the main thread, run the
// callback (read /proc/thread-self/net/*, open a netlink socket) and switch back before returning, so
// the main thread is never in a foreign netns for longer than the call. Sockets keep the netns they
// were created in, so a netlink socket opened here keeps working in that netns afterwards.
import { closeSync, openSync, statSync } from 'node:fs';
import koffi from 'koffi';

const CLONE_NEWNET = 0x40000000;

const libc = koffi.load('libc.so.6');
const setnsCall = libc.func('int setns(int fd, int nstype)');
const socketCall = libc.func('int socket(int domain, int type, int protocol)');

/** The netns this process started in; the main thread always returns to it. */
const homeFd = openSync('/proc/self/ns/net', 'r');
/** Inode of the netns this process runs in: the node's on a plain host, podnet's own pod netns in the DaemonSet. */
export const homeNetnsInode: number = statSync('/proc/self/ns/net').ino;

/**
 * PODNET_HOST_NETNS (for tests and unusual setups only): the node's netns as `/proc/<pid>/ns/net`,
 * standing in for init's. The tests run podnet in a child netns with this pointing at the test's own
 * netns (what /proc/1/ns/net is to the DaemonSet; test/dns/outside.test.ts), because this sandbox cannot
 * read /proc/1/ns/net. Read only here; docs/pods.md, "The host netns".
 */
export const HOST_NETNS_ENV = 'PODNET_HOST_NETNS';

/**
 * The host (node) netns is init's: the DaemonSet has hostPID but not hostNetwork, so /proc/self/ns/net is
 * podnet's own pod netns while /proc/1/ns/net is the node's (docs/pods.md, "The host netns"). Without
 * hostPID (or when /proc/1 cannot be read) the process's own netns is the best we know.
 */
function hostNetns(): { inode: number; path: string; pid: number; fallback?: string } {
  const own = { inode: homeNetnsInode, path: '/proc/self/ns/net', pid: process.pid };
  const override = process.env[HOST_NETNS_ENV];
  if (override) {
    const m = /^\/proc\/([1-9][0-9]*)\/ns\/net$/.exec(override);
    if (!m) throw new Error(`${HOST_NETNS_ENV}=${override}: expected /proc/<pid>/ns/net`);
    let ino: number;
    try {
      ino = statSync(override).ino;
    } catch (err) {
      throw new Error(`${HOST_NETNS_ENV}=${override}: ${(err as NodeJS.ErrnoException).code}`);
    }
    return ino === homeNetnsInode ? own : { inode: ino, path: override, pid: Number(m[1]) };
  }
  try {
    const ino = statSync('/proc/1/ns/net').ino;
    return ino === homeNetnsInode ? own : { inode: ino, path: '/proc/1/ns/net', pid: 1 };
  } catch (err) {
    return {
      ...own,
      fallback: `cannot read /proc/1/ns/net (${(err as NodeJS.ErrnoException).code}): own netns used`,
    };
  }
}
const host = hostNetns();
/** Inode of the node's netns (init's, /proc/1/ns/net); equals homeNetnsInode when podnet runs in it. */
export const hostNetnsInode: number = host.inode;
/** Path of the node's netns: /proc/self/ns/net when podnet runs in it, /proc/1/ns/net (or PODNET_HOST_NETNS) otherwise. */
export const hostNetnsPath: string = host.path;
/** A pid in the node's netns (for /proc/<pid>/net reads): this process, or init. */
export const hostNetnsPid: number = host.pid;
/** Why the own netns stands in for the node's (/proc/1/ns/net unreadable: no hostPID?), else undefined. */
export const hostNetnsFallback: string | undefined = host.fallback;

export class NetnsError extends Error {
  readonly netnsPath: string;
  readonly errno: number;
  constructor(message: string, netnsPath: string, errno: number) {
    super(message);
    this.name = 'NetnsError';
    this.netnsPath = netnsPath;
    this.errno = errno;
  }
}

const EPERM = 1;

function enter(fd: number, netnsPath: string): void {
  if (setnsCall(fd, CLONE_NEWNET) !== 0) {
    const errno = koffi.errno();
    // EPERM: setns into a network namespace needs CAP_SYS_ADMIN (the per-pod netlink probes use it).
    const why =
      errno === EPERM
        ? 'CAP_SYS_ADMIN missing (entering a pod network namespace needs it; the netlink probes sockets, conntrack, qdisc and ctevents cannot read other pods without it)'
        : `errno ${errno}`;
    throw new NetnsError(`setns(${netnsPath}) failed: ${why}`, netnsPath, errno);
  }
}

/**
 * Runs `fn` with the calling (main) thread inside the netns at `netnsPath`, then returns to the home
 * netns, also when `fn` throws. `fn` must be synchronous: awaiting inside would leak the namespace.
 */
export function inNetns<T>(netnsPath: string, fn: () => T): T {
  let fd: number;
  try {
    fd = openSync(netnsPath, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new NetnsError(`cannot open netns ${netnsPath}: ${e.code ?? e.message}`, netnsPath, e.errno ?? 0);
  }
  try {
    enter(fd, netnsPath);
    try {
      const result = fn();
      if (result instanceof Promise) throw new TypeError('inNetns callback must be synchronous');
      return result;
    } finally {
      enter(homeFd, '/proc/self/ns/net (home)');
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs `fn` with the main thread inside the netns of an open netns fd (the caller keeps and closes it),
 * then returns home, also when `fn` throws. `fn` must be synchronous.
 */
export function enterNetnsFd<T>(fd: number, netnsPath: string, fn: () => T): T {
  enter(fd, netnsPath);
  try {
    const result = fn();
    if (result instanceof Promise) throw new TypeError('enterNetnsFd callback must be synchronous');
    return result;
  } finally {
    enter(homeFd, '/proc/self/ns/net (home)');
  }
}

/** Opens a socket(2) inside a netns; the fd stays bound to that netns. Caller owns (closes) the fd. */
export function socketInNetns(netnsPath: string, domain: number, type: number, protocol: number): number {
  return inNetns(netnsPath, () => {
    const fd = socketCall(domain, type, protocol) as number;
    if (fd < 0) {
      const errno = koffi.errno();
      throw new NetnsError(
        `socket(${domain}, ${type}, ${protocol}) in ${netnsPath}: errno ${errno}`,
        netnsPath,
        errno,
      );
    }
    return fd;
  });
}

/**
 * Runs `fn` with the main thread in the node's netns (directly when podnet runs in it). For what resolves
 * in the calling thread's netns and must be the node's: interface names and indexes (if_nametoindex,
 * rtnetlink), bpf_link_create's ifindex, tc netlink requests. What is made there stays: a TCX link or a
 * clsact filter is on the device, wherever the fd lives. `fn` must be synchronous.
 */
export function inHostNetns<T>(fn: () => T): T {
  return hostNetnsInode === homeNetnsInode ? fn() : inNetns(hostNetnsPath, fn);
}
