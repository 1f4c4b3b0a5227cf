// Netlink multicast subscriptions inside a netns (rtnetlink link/address changes, ctnetlink conntrack
// events, ...): a socket joined to groups with NETLINK_ADD_MEMBERSHIP, woken by libuv through
// `koffi.node.poll` (no thread, no busy loop), drained with non-blocking recv(2) on the event loop.
// When the kernel could not queue a notification (receive buffer full) the next recv fails with
// ENOBUFS: the loss is counted in `stats.overruns` (how many notifications is unknown) and reading
// continues.
import koffi from 'koffi';
import { socketInNetns } from '../netns/setns.ts';
import {
  forEachMessage,
  NetlinkError,
  type NetlinkMessage,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
} from './codec.ts';
import { AF_NETLINK } from './socket.ts';

const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const SOCK_NONBLOCK = 0x800;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const MSG_TRUNC = 0x20;
const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;

/** Multicast groups (linux/rtnetlink.h, linux/netfilter/nfnetlink.h). */
export const RTNLGRP_LINK = 1;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV6_IFADDR = 9;
export const NFNLGRP_CONNTRACK_NEW = 1;
export const NFNLGRP_CONNTRACK_UPDATE = 2;
export const NFNLGRP_CONNTRACK_DESTROY = 3;

const libc = koffi.load('libc.so.6');
const recvCall = libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
const closeCall = libc.func('int close(int fd)');
const bindCall = libc.func('int bind(int fd, const void *addr, uint32_t len)');
const setsockoptCall = libc.func(
  'int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)',
);

export interface SubscriptionStats {
  datagrams: number;
  messages: number;
  /** recv() reported ENOBUFS: notifications were dropped by the kernel (count unknown). */
  overruns: number;
  /** Datagrams that were not valid netlink (should stay 0). */
  malformed: number;
}

export interface SubscriptionOptions {
  /** Kernel receive buffer (SO_RCVBUFFORCE as root, else SO_RCVBUF), bytes. Default 4 MiB. */
  readonly rcvbuf?: number;
  /** Most datagrams drained per wake-up before yielding to the event loop. Default 256. */
  readonly budget?: number;
  /** Called for errors other than ENOBUFS (the subscription keeps running). */
  readonly onError?: (err: Error) => void;
}

function setInt(fd: number, level: number, name: number, value: number): number {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  return setsockoptCall(fd, level, name, b, 4) as number;
}

export class NetlinkSubscription {
  readonly netnsPath: string;
  readonly stats: SubscriptionStats = { datagrams: 0, messages: 0, overruns: 0, malformed: 0 };
  #fd: number;
  readonly #buf = Buffer.alloc(64 * 1024);
  readonly #view: DataView;
  readonly #onMessage: (msg: NetlinkMessage) => void;
  readonly #onError: (err: Error) => void;
  readonly #budget: number;
  #poll: ReturnType<typeof koffi.node.poll> | null = null;

  private constructor(
    fd: number,
    netnsPath: string,
    onMessage: (msg: NetlinkMessage) => void,
    opts: SubscriptionOptions,
  ) {
    this.#fd = fd;
    this.netnsPath = netnsPath;
    this.#onMessage = onMessage;
    this.#onError = opts.onError ?? (() => {});
    this.#budget = opts.budget ?? 256;
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  }

  /**
   * Opens a netlink socket of `protocol` in the netns, joins `groups` and starts delivering every
   * notification message (NOOP/DONE/ERROR skipped) to `onMessage` on the event loop. The message view
   * is valid only during the call.
   */
  static open(
    netnsPath: string,
    protocol: number,
    groups: readonly number[],
    onMessage: (msg: NetlinkMessage) => void,
    opts: SubscriptionOptions = {},
  ): NetlinkSubscription {
    const fd = socketInNetns(netnsPath, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
    const sub = new NetlinkSubscription(fd, netnsPath, onMessage, opts);
    try {
      const rcvbuf = opts.rcvbuf ?? 4 * 1024 * 1024;
      if (setInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf) !== 0) setInt(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf);
      // Bind (port id chosen by the kernel): an unbound socket has port id 0, the id of the kernel's
      // own notifications, and the kernel skips the sender's port id when broadcasting.
      const addr = Buffer.alloc(12);
      addr.writeUInt16LE(AF_NETLINK, 0);
      if ((bindCall(fd, addr, addr.length) as number) !== 0) {
        const errno = koffi.errno();
        throw new NetlinkError(`netlink bind: errno ${errno}`, errno);
      }
      for (const g of groups) {
        if (setInt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g) !== 0) {
          const errno = koffi.errno();
          throw new NetlinkError(`NETLINK_ADD_MEMBERSHIP ${g}: errno ${errno}`, errno);
        }
      }
      sub.#poll = koffi.node.poll(fd, { readable: true }, () => sub.drain());
    } catch (err) {
      sub.close();
      throw err;
    }
    return sub;
  }

  /** The socket fd (e.g. to check it is open); owned by the subscription. */
  get socketFd(): number {
    return this.#fd;
  }

  /** Lets the process exit while subscribed. */
  unref(): void {
    this.#poll?.unref();
  }

  /** Reads what is queued now (at most `budget` datagrams); normally called by the poll wake-up. */
  drain(): void {
    let overrun = false;
    try {
      this.#drainSome(() => {
        overrun = true;
      });
    } finally {
      // After an error condition on the fd (ENOBUFS shows as POLLERR) the libuv poll handle stops
      // reporting; arm it again so later notifications still wake us.
      if (overrun && this.#poll) {
        this.#poll.stop();
        this.#poll.start({ readable: true }, () => this.drain());
      }
    }
  }

  #drainSome(onFdError: () => void): void {
    for (let i = 0; i < this.#budget && this.#fd >= 0; i++) {
      const n = recvCall(this.#fd, this.#buf, this.#buf.length, MSG_TRUNC) as number;
      if (n < 0) {
        const errno = koffi.errno();
        if (errno === EAGAIN) return;
        if (errno === EINTR) continue;
        if (errno === ENOBUFS) {
          this.stats.overruns++;
          onFdError();
          continue;
        }
        onFdError(); // re-arm the poll handle as after ENOBUFS
        this.#onError(new NetlinkError(`netlink recv: errno ${errno}`, errno));
        return;
      }
      this.stats.datagrams++;
      if (n > this.#buf.length) {
        this.stats.malformed++;
        continue;
      }
      try {
        forEachMessage(this.#view, 0, n, (msg) => {
          if (msg.type === NLMSG_NOOP || msg.type === NLMSG_DONE || msg.type === NLMSG_ERROR) return;
          this.stats.messages++;
          this.#onMessage(msg);
        });
      } catch (err) {
        this.stats.malformed++;
        this.#onError(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  /** Stops polling and closes the socket. Idempotent. */
  close(): void {
    if (this.#poll) {
      this.#poll.stop();
      this.#poll.close();
      this.#poll = null;
    }
    if (this.#fd >= 0) {
      closeCall(this.#fd);
      this.#fd = -1;
    }
  }
}
