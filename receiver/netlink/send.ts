// Netlink requests out (./socket.ts `NetlinkSocket.request`, `requestPair`): encoded in place into one
// shared buffer and sent to the kernel with sendto(2).
import koffi from 'koffi';
import { align4, NetlinkError, NLMSG_HDRLEN } from './codec.ts';

const EINTR = 4;
const sendtoCall = koffi
  .load('libc.so.6')
  .func(
    'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
  );

/** sockaddr_nl of the kernel: family AF_NETLINK (16), pid 0, groups 0. */
export const KERNEL_ADDR = Buffer.alloc(12);
KERNEL_ADDR.writeUInt16LE(16, 0);

// One send buffer shared by all sockets (requests are sent synchronously, one at a time): a request
// is encoded into it in place instead of into a new Buffer per request (thousands per collection at
// 1,000 netns: garbage for the GC). Grown when a request is larger.
let sendBuffer = Buffer.alloc(256);

/** A little-endian u32 at `p`. */
export function put32(b: Buffer, p: number, v: number): void {
  b[p] = v & 0xff;
  b[p + 1] = (v >>> 8) & 0xff;
  b[p + 2] = (v >>> 16) & 0xff;
  b[p + 3] = (v >>> 24) & 0xff;
}

/**
 * Encodes header + payload into `sendBuffer` at `at` (as `encodeMessage` does; what is before `at` is
 * kept); returns the end of the bytes to send.
 */
export function encodeRequest(type: number, flags: number, seq: number, payload: Uint8Array, at = 0): number {
  const len = NLMSG_HDRLEN + payload.length;
  const end = at + align4(len);
  if (end > sendBuffer.length) {
    const bigger = Buffer.alloc(Math.max(end, sendBuffer.length * 2));
    bigger.set(sendBuffer.subarray(0, at));
    sendBuffer = bigger;
  }
  // Byte stores: Buffer's writeUInt*LE and fill validate their arguments through wrappers that leave
  // garbage on every call (thousands of requests per collection at 1,000 netns).
  const b = sendBuffer;
  put32(b, at, len);
  b[at + 4] = type & 0xff;
  b[at + 5] = (type >>> 8) & 0xff;
  b[at + 6] = flags & 0xff;
  b[at + 7] = (flags >>> 8) & 0xff;
  put32(b, at + 8, seq >>> 0);
  put32(b, at + 12, 0);
  b.set(payload, at + NLMSG_HDRLEN);
  for (let i = at + len; i < end; i++) b[i] = 0;
  return end;
}

/** Sends the first `len` bytes of the send buffer (`encodeRequest`) to the kernel. */
export function sendRequest(fd: number, len: number): void {
  for (;;) {
    const sent = sendtoCall(fd, sendBuffer, len, 0, KERNEL_ADDR, KERNEL_ADDR.length) as number;
    if (sent === len) return;
    const errno = sent < 0 ? koffi.errno() : 0;
    if (errno === EINTR) continue;
    throw new NetlinkError(`netlink sendto: ${sent < 0 ? `errno ${errno}` : `short write ${sent}`}`, errno);
  }
}
