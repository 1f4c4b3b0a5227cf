// A netlink socket over koffi (Node's net module cannot open AF_NETLINK): opened inside a netns with
// `socketInNetns` (the fd stays bound to that netns), requests sent with sendto(2) (./send.ts), replies received
// with blocking recv(2) (dumps: recvmmsg(2), up to three datagrams a call: ./recvmmsg.ts) into a reusable buffer, bounded by
// SO_RCVTIMEO.
//
// Blocking is deliberate: a netlink request to the kernel is answered synchronously from kernel tables
// (microseconds per message), and a koffi `.async` round trip costs ~10 µs of CPU per call — more than
// the work. The receive timeout bounds the worst case. Callers that loop over many netns yield to the
// event loop between netns (see `yieldEvery`).
import koffi from 'koffi';
import { socketInNetns } from '../netns/setns.ts';
import {
  NetlinkError,
  type NetlinkMessage,
  NetlinkProtocolError,
  NLM_F_DUMP,
  type ReplyReader,
} from './codec.ts';
import {
  giveBack,
  MM_SLOT,
  type NetlinkSocketStats,
  receiveMany,
  sharedRecvBuffer,
  takeReader,
} from './recvmmsg.ts';
import { encodeRequest, KERNEL_ADDR, put32, sendRequest } from './send.ts';

export type { NetlinkSocketStats };

export const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20; // SO_RCVTIMEO_OLD: struct timeval with 64-bit fields on x86-64/arm64
const SO_RCVBUF = 8;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;

/** Netlink protocol families used by podnet. */
export const NETLINK_ROUTE = 0;
export const NETLINK_SOCK_DIAG = 4;
export const NETLINK_NETFILTER = 12;

const libc = koffi.load('libc.so.6');
const recvCall = libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)');
const closeCall = libc.func('int close(int fd)');
const bindCall = libc.func('int bind(int fd, const void *addr, uint32_t addrlen)');
const pollCall = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const setsockoptCall = libc.func(
  'int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)',
);

/** Netlink dumps arrive in datagrams of at most 32 KiB; 64 KiB leaves room and detects truncation. */
export const DEFAULT_RECV_BUFFER = MM_SLOT;

// A reply is delivered to its callback from the buffer it arrived in: the shared recv buffer, the
// shared recvmmsg slots (dumps, ./recvmmsg.ts) or a socket's own. A request made from inside that
// callback into the same shared buffer, or on the same socket (it would read the outer reply's datagrams
// as its own), would corrupt the outer reply silently: it throws instead (test/netlink/socket.test.ts).
const SHARED_RECV = 1;
const SHARED_SLOTS = 2;
/** The shared buffers (SHARED_* bits) a reply is being received into or delivered from. */
let sharedBusy = 0;

/** poll(2)'s `struct pollfd` array of `pollPending`, reused (grown when more sockets are polled). */
let pollFds = Buffer.alloc(8 * 64);
const POLLIN = 1;

export interface NetlinkSocketOptions {
  /** Receive timeout per recv(2), ms. Default 2000. */
  readonly timeoutMs?: number;
  /** Kernel receive buffer size (SO_RCVBUF), bytes; default: the kernel's. */
  readonly rcvbuf?: number;
  /** Own receive buffer (else a shared one). Must hold the largest datagram (32 KiB for dumps). */
  readonly buffer?: Buffer;
}

/** One request of `NetlinkSocket.requestPair`: as the arguments of `request`. */
export interface NetlinkRequest {
  readonly type: number;
  readonly flags: number;
  readonly payload: Uint8Array;
  readonly onMessage: (msg: NetlinkMessage) => void;
}

export class NetlinkSocket {
  readonly protocol: number;
  readonly netnsPath: string;
  readonly stats: NetlinkSocketStats = { requests: 0, datagrams: 0, bytes: 0, messages: 0, skipped: 0 };
  #fd: number;
  #seq: number;
  readonly #buffer: Buffer | undefined;
  #view: DataView | undefined;
  /** Bound to a port id (explicitly by `join`, or by the kernel at the first request). */
  #bound = false;
  /** A joined group's notification was read (and dropped) after a dump reply's end (./recvmmsg.ts `receiveMany`). */
  #noticed = false;
  /** A reply of this socket is being received or delivered. */
  #busy = false;

  private constructor(fd: number, protocol: number, netnsPath: string, buffer: Buffer | undefined) {
    this.#fd = fd;
    this.protocol = protocol;
    this.netnsPath = netnsPath;
    this.#buffer = buffer;
    // Random start so replies to another socket's (or an earlier process') requests never match.
    this.#seq = (Math.random() * 0x7fffffff) >>> 0;
  }

  /** Opens a netlink socket of `protocol` inside the netns at `netnsPath` (throws NetnsError). */
  static open(netnsPath: string, protocol: number, opts: NetlinkSocketOptions = {}): NetlinkSocket {
    const fd = socketInNetns(netnsPath, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    const sock = new NetlinkSocket(fd, protocol, netnsPath, opts.buffer);
    try {
      sock.setTimeout(opts.timeoutMs ?? 2000);
      if (opts.rcvbuf !== undefined) sock.setIntOption(SOL_SOCKET, SO_RCVBUF, opts.rcvbuf);
    } catch (err) {
      sock.close();
      throw err;
    }
    return sock;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  setTimeout(ms: number): void {
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
    tv.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
    this.#setsockopt(SOL_SOCKET, SO_RCVTIMEO, tv);
  }

  setIntOption(level: number, name: number, value: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(value, 0);
    this.#setsockopt(level, name, b);
  }

  #setsockopt(level: number, name: number, value: Buffer): void {
    if ((setsockoptCall(this.#liveFd(), level, name, value, value.length) as number) !== 0) {
      const errno = koffi.errno();
      throw new NetlinkError(`setsockopt(${level}, ${name}): errno ${errno}`, errno);
    }
  }

  #liveFd(): number {
    if (this.#fd < 0) throw new NetlinkError('netlink socket is closed', 9);
    return this.#fd;
  }

  /** Next sequence number (wraps at 2^32). */
  nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0;
    return this.#seq;
  }

  /**
   * Sends one request (header type/flags + payload) and delivers every message of its reply to
   * `onMessage` until the reply is complete (NLMSG_DONE, ACK, or a single non-multipart message).
   * Throws NetlinkError (kernel errno, timeout as EAGAIN) or NetlinkProtocolError (malformed reply).
   * The socket stays usable after a NetlinkError from the kernel; close it after any other error.
   */
  request(
    type: number,
    flags: number,
    payload: Uint8Array,
    onMessage: (msg: NetlinkMessage) => void,
  ): number {
    const fd = this.#liveFd();
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    const shared = this.#enter('request', dump ? SHARED_SLOTS : SHARED_RECV);
    const seq = this.nextSeq();
    const reader = takeReader(seq, onMessage, dump);
    try {
      sendRequest(fd, encodeRequest(type, flags, seq, payload));
      this.stats.requests++;
      if (dump && this.#buffer === undefined) {
        if (receiveMany(fd, this.stats, reader, undefined) && this.#bound) this.#noticed = true;
      } else this.#receive(fd, reader);
      this.stats.messages += reader.messages;
      this.stats.skipped += reader.skipped;
      return reader.messages;
    } finally {
      giveBack(reader);
      this.#leave(shared);
    }
  }

  /** Marks this socket, and the shared buffer `use` unless it has its own, busy; throws if either is. */
  #enter(what: string, use: number): number {
    const shared = this.#buffer === undefined ? use : 0;
    if (this.#busy || (sharedBusy & shared) !== 0) {
      const whose = this.#busy ? 'on the same socket' : 'both using the shared receive buffer';
      throw new Error(
        `netlink ${what} made from inside a reply callback (${whose}): it would overwrite the reply ` +
          'being delivered; collect what the callback needs and request after it returns',
      );
    }
    this.#busy = true;
    sharedBusy |= shared;
    return shared;
  }

  #leave(shared: number): void {
    this.#busy = false;
    sharedBusy &= ~shared;
  }

  /** The datagrams of `reader`'s reply, one recv(2) each, into the socket's buffer or the shared one. */
  #receive(fd: number, reader: ReplyReader): void {
    const buf = this.#buffer ?? sharedRecvBuffer();
    if (this.#view === undefined || this.#view.buffer !== buf.buffer) {
      this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const view = this.#view;
    for (;;) {
      const n = recvCall(fd, buf, buf.length, MSG_TRUNC) as number;
      if (n < 0) {
        const errno = koffi.errno();
        if (errno === EINTR) continue;
        if (errno === EAGAIN) throw new NetlinkError('netlink receive timed out', EAGAIN);
        throw new NetlinkError(`netlink recv: errno ${errno}`, errno);
      }
      if (n > buf.length) {
        throw new NetlinkProtocolError(`netlink datagram of ${n} bytes truncated to ${buf.length}`);
      }
      if (n === 0) throw new NetlinkProtocolError('empty netlink datagram');
      this.stats.datagrams++;
      this.stats.bytes += n;
      if (reader.feed(view, 0, n)) return;
    }
  }

  /**
   * Two requests in one sendto(2) and their replies through recvmmsg(2): `first` must not be a dump
   * (the kernel answers the messages of a datagram in order, `netlink_rcv_skb`; a dump's first reply
   * datagram is made at once, so it comes after the first request's reply) — e.g. conntrack's global
   * stats then its per-CPU dump: 2 system calls instead of 4. Returns the data messages of each reply.
   * Errors as `request`; after one, a reply left queued is skipped by the next request (other seq).
   */
  requestPair(first: NetlinkRequest, second: NetlinkRequest): [number, number] {
    if ((first.flags & NLM_F_DUMP) === NLM_F_DUMP) throw new RangeError('requestPair: first is a dump');
    if (this.#buffer !== undefined)
      return [
        this.request(first.type, first.flags, first.payload, first.onMessage),
        this.request(second.type, second.flags, second.payload, second.onMessage),
      ];
    const fd = this.#liveFd();
    const shared = this.#enter('requestPair', SHARED_SLOTS);
    const seq1 = this.nextSeq();
    const seq2 = this.nextSeq();
    const a = takeReader(seq1, first.onMessage, false);
    const b = takeReader(seq2, second.onMessage, (second.flags & NLM_F_DUMP) === NLM_F_DUMP);
    try {
      const mid = encodeRequest(first.type, first.flags, seq1, first.payload);
      sendRequest(fd, encodeRequest(second.type, second.flags, seq2, second.payload, mid));
      this.stats.requests += 2;
      if (receiveMany(fd, this.stats, a, b) && this.#bound) this.#noticed = true;
      this.stats.messages += a.messages + b.messages;
      this.stats.skipped += a.skipped + b.skipped;
      return [a.messages, b.messages];
    } finally {
      giveBack(a);
      giveBack(b);
      this.#leave(shared);
    }
  }

  /**
   * Joins a multicast group (NETLINK_ADD_MEMBERSHIP, e.g. RTNLGRP_IPV4_IFADDR): the kernel then queues
   * the group's notifications on this socket, to be noticed with `drainPending` (a request skips them).
   */
  join(group: number): void {
    // An unbound socket (no request sent yet: the kernel binds at the first send) gets no notification:
    // bind it now (port id chosen by the kernel; a second bind with another id would fail).
    if (!this.#bound && this.stats.requests === 0) {
      if ((bindCall(this.#liveFd(), KERNEL_ADDR, KERNEL_ADDR.length) as number) !== 0) {
        const errno = koffi.errno();
        throw new NetlinkError(`netlink bind: errno ${errno}`, errno);
      }
    }
    this.#bound = true;
    this.setIntOption(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group);
  }

  /**
   * Reads (and discards) whatever is queued without waiting: true when anything was (a joined group's
   * notification, or ENOBUFS: notifications the kernel dropped). One recv(2) when nothing is.
   */
  drainPending(): boolean {
    const fd = this.#liveFd();
    const shared = this.#enter('drainPending', SHARED_RECV);
    try {
      return this.#drain(fd);
    } finally {
      this.#leave(shared);
    }
  }

  #drain(fd: number): boolean {
    const buf = this.#buffer ?? sharedRecvBuffer();
    let any = this.#noticed;
    this.#noticed = false;
    for (;;) {
      const n = recvCall(fd, buf, buf.length, MSG_DONTWAIT | MSG_TRUNC) as number;
      if (n >= 0) {
        any = true;
        continue;
      }
      const errno = koffi.errno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) return any;
      if (errno === ENOBUFS) {
        any = true;
        continue;
      }
      throw new NetlinkError(`netlink recv: errno ${errno}`, errno);
    }
  }

  /**
   * Which of `socks` have something queued (a joined group's notification, or an error such as ENOBUFS:
   * notifications the kernel dropped), from one poll(2) over all of them instead of a `drainPending`
   * recv(2) each: at 1,000 netns that was 1,000 recv(2) calls finding nothing per pass. `pending[i]` is set
   * to 1 when `socks[i]` has (or is closed: its next use fails and is handled there), else 0. Nothing is
   * read: a pending socket still has to be drained.
   */
  static pollPending(socks: readonly NetlinkSocket[], pending: Uint8Array): void {
    const n = socks.length;
    if (pollFds.length < n * 8) pollFds = Buffer.alloc(Math.max(n * 8, pollFds.length * 2));
    const b = pollFds;
    for (let i = 0; i < n; i++) {
      const p = i * 8;
      put32(b, p, socks[i]!.#fd); // struct pollfd: int fd, short events (POLLIN), short revents
      b[p + 4] = POLLIN;
      b[p + 5] = 0;
      b[p + 6] = 0;
      b[p + 7] = 0;
    }
    for (;;) {
      if ((pollCall(b, n, 0) as number) >= 0) break;
      const errno = koffi.errno();
      if (errno !== EINTR) throw new NetlinkError(`poll: errno ${errno}`, errno);
    }
    // revents: POLLIN, POLLERR (sk_err, e.g. ENOBUFS), POLLNVAL — any of them is "look". A closed socket
    // (fd -1, which poll ignores) is "look" too: its next use fails and is handled there.
    for (let i = 0; i < n; i++)
      pending[i] =
        b[i * 8 + 6]! !== 0 || b[i * 8 + 7]! !== 0 || socks[i]!.#fd < 0 || socks[i]!.#noticed ? 1 : 0;
  }

  /**
   * The sockets among `socks` with nothing queued, from one `pollPending`: a pass over many kept sockets
   * (qdisc's link names per collection, the peer resolver's addresses per rebuild) skips their recv(2).
   */
  static quiet(socks: readonly NetlinkSocket[]): Set<NetlinkSocket> {
    const pending = new Uint8Array(socks.length);
    if (socks.length > 0) NetlinkSocket.pollPending(socks, pending);
    const quiet = new Set<NetlinkSocket>();
    for (let i = 0; i < socks.length; i++) if (pending[i] === 0) quiet.add(socks[i]!);
    return quiet;
  }

  /** Closes the fd. Idempotent. */
  close(): void {
    if (this.#fd >= 0) {
      closeCall(this.#fd);
      this.#fd = -1;
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens a socket in a netns, runs `fn` with it and always closes it. The usual way to read one netns.
 */
export function withNetlinkSocket<T>(
  netnsPath: string,
  protocol: number,
  fn: (sock: NetlinkSocket) => T,
  opts: NetlinkSocketOptions = {},
): T {
  const sock = NetlinkSocket.open(netnsPath, protocol, opts);
  try {
    return fn(sock);
  } finally {
    sock.close();
  }
}

/** Returns a function that resolves (after a macrotask) once `budgetMs` of synchronous work passed. */
export function yieldEvery(budgetMs: number): () => Promise<void> {
  let last = performance.now();
  return async () => {
    const now = performance.now();
    if (now - last < budgetMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    last = performance.now();
  };
}
