// recvmmsg(2) for netlink dump replies (./socket.ts, `NetlinkSocket.request`), over koffi, and the
// other receive state every socket shares: the recv(2) buffer and the spare reply readers.
//
// Dump replies are received up to three datagrams per recvmmsg(2) (MSG_WAITFORONE: it waits for the
// first only). Most dumps podnet makes (a netns' qdiscs, conntrack's per-CPU stats) are one datagram of
// data and one of NLMSG_DONE: the kernel makes the DONE datagram while a recvmsg drains the queue
// (`netlink_recvmsg` continues a running dump), so the next slot finds it queued and the reply takes one
// call instead of two; three slots take a pair of requests (socket.ts `requestPair`: a reply, then a
// dump's data and DONE) in one. A datagram read after the reply's end is counted as skipped and, on a
// socket that joined a group, reported as pending by the next poll/drain (socket.ts, `#noticed`).
//
// Slots of 64 KiB each (192 KiB in all), then the mmsghdr and iovec arrays, all in one Buffer of its own ArrayBuffer
// (Buffer.alloc never pools): its memory lives outside the V8 heap and never moves, so the addresses
// written into the headers stay valid.
import koffi from 'koffi';
import { NetlinkError, type NetlinkMessage, NetlinkProtocolError, ReplyReader } from './codec.ts';

/** Counters of one socket's traffic, for self-telemetry and benchmarks. */
export interface NetlinkSocketStats {
  requests: number;
  datagrams: number;
  bytes: number;
  messages: number;
  /** Messages of other sequence numbers read while a reply was awaited (e.g. joined groups' notifications). */
  skipped: number;
}

const MSG_TRUNC = 0x20;
const MSG_WAITFORONE = 0x10000;
const EINTR = 4;
const EAGAIN = 11;

const recvmmsgCall = koffi
  .load('libc.so.6')
  .func('int recvmmsg(int fd, void *msgvec, unsigned int vlen, int flags, void *timeout)');

const MM_SLOTS = 3;
export const MM_SLOT = 64 * 1024; // socket.ts DEFAULT_RECV_BUFFER: holds any dump datagram (32 KiB at most)
const MM_HDR = 64; // struct mmsghdr on 64-bit: msghdr (56) + msg_len (4) + padding
const MM_HDRS = MM_SLOTS * MM_SLOT;
const MM_IOVS = MM_HDRS + MM_SLOTS * MM_HDR;

let sharedBuffer: Buffer | undefined;
/**
 * One recv(2) buffer shared by all sockets without their own: receives are synchronous and a reply is
 * fully decoded before the next recv; a request from inside a reply callback that would reuse it throws
 * (socket.ts `#enter`). Message views are valid only inside callbacks. 64 KiB: as a slot, below.
 */
export function sharedRecvBuffer(): Buffer {
  sharedBuffer ??= Buffer.alloc(MM_SLOT);
  return sharedBuffer;
}

// Reply readers reused across requests: a request made ~3 objects for its reply (the reader, its
// handler closure, its message object), thousands of requests per collection at 1,000 netns. Taken and
// given back around each reply (requestPair takes two), also when it throws (test/netlink/socket.test.ts:
// a request after a kernel error reads its own reply).
const spareReaders: ReplyReader[] = [];
const NO_MESSAGE = (): void => {};

export function takeReader(
  seq: number,
  onMessage: (msg: NetlinkMessage) => void,
  dump: boolean,
): ReplyReader {
  const r = spareReaders.pop();
  if (r === undefined) return new ReplyReader(seq, onMessage, dump);
  r.reset(seq, onMessage, dump);
  return r;
}

export function giveBack(r: ReplyReader): void {
  r.reset(0, NO_MESSAGE, false); // keeps no caller's callback alive
  if (spareReaders.length < 4) spareReaders.push(r);
}

export interface Mmsg {
  readonly buf: Buffer;
  readonly view: DataView;
  readonly hdrs: Buffer;
}
let mmsg: Mmsg | undefined;

export function sharedMmsg(): Mmsg {
  if (mmsg) return mmsg;
  const buf = Buffer.alloc(MM_IOVS + MM_SLOTS * 16);
  const base = koffi.address(buf);
  for (let i = 0; i < MM_SLOTS; i++) {
    // struct iovec { void *iov_base; size_t iov_len; }
    buf.writeBigUInt64LE(base + BigInt(i * MM_SLOT), MM_IOVS + 16 * i);
    buf.writeBigUInt64LE(BigInt(MM_SLOT), MM_IOVS + 16 * i + 8);
    // struct msghdr: msg_name 0 (NULL), msg_namelen 8, msg_iov 16, msg_iovlen 24, control NULL/0, flags 48
    const h = MM_HDRS + MM_HDR * i;
    buf.writeBigUInt64LE(base + BigInt(MM_IOVS + 16 * i), h + 16);
    buf.writeBigUInt64LE(1n, h + 24);
  }
  mmsg = {
    buf,
    view: new DataView(buf.buffer, buf.byteOffset, MM_HDRS),
    hdrs: buf.subarray(MM_HDRS, MM_IOVS),
  };
  return mmsg;
}

/**
 * Receives up to MM_SLOTS datagrams into `m`'s slots: waits for the first (SO_RCVTIMEO bounds it), takes
 * the others only if already queued. Returns how many (-1: errno in `koffi.errno()`).
 */
export function recvDatagrams(fd: number, m: Mmsg): number {
  return recvmmsgCall(fd, m.hdrs, MM_SLOTS, MSG_TRUNC | MSG_WAITFORONE, null) as number;
}

/** msg_len of slot `i`: the datagram's whole length (MSG_TRUNC), larger than MM_SLOT when it was cut. */
export function datagramLength(m: Mmsg, i: number): number {
  return m.hdrs.readUInt32LE(MM_HDR * i + 56);
}

/**
 * The datagrams of `first`'s reply and then of `next`'s (when given), up to MM_SLOTS per recvmmsg(2),
 * counted into `stats`. A datagram holds messages of one reply only, so the datagrams after the first
 * reply's end are the second's. Returns true when datagrams after the (last) reply's end were read.
 */
export function receiveMany(
  fd: number,
  stats: NetlinkSocketStats,
  first: ReplyReader,
  next: ReplyReader | undefined,
): boolean {
  const m = sharedMmsg();
  let reader = first;
  for (;;) {
    const k = recvDatagrams(fd, m);
    if (k < 0) {
      const errno = koffi.errno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN) throw new NetlinkError('netlink receive timed out', EAGAIN);
      throw new NetlinkError(`netlink recvmmsg: errno ${errno}`, errno);
    }
    for (let i = 0; i < k; i++) {
      const n = datagramLength(m, i);
      if (n > MM_SLOT) {
        throw new NetlinkProtocolError(`netlink datagram of ${n} bytes truncated to ${MM_SLOT}`);
      }
      if (n === 0) throw new NetlinkProtocolError('empty netlink datagram');
      stats.datagrams++;
      stats.bytes += n;
      if (!reader.feed(m.view, i * MM_SLOT, n)) continue;
      if (next !== undefined) {
        reader = next;
        next = undefined;
        continue;
      }
      // A datagram after the reply's end: on a socket that joined a group, a notification (a stale
      // reply of a timed-out request otherwise). Counted as skipped, as the reader counts those it
      // reads before the end, and kept by the socket as "something was pending" for the next
      // pollPending / drainPending, which would have found it queued.
      if (i + 1 < k) {
        stats.skipped += k - i - 1;
        return true;
      }
      return false;
    }
  }
}
