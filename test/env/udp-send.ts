// UDP traffic generator for tests and benchmarks; run it inside a netns:
//   ip netns exec <ns> node test/env/udp-send.ts <addr> <port> <count> [size]
// Sends `count` datagrams as fast as sendto(2) allows and prints `{"sent":N,"seconds":S}` on stdout.
import koffi from 'koffi';
import { sockaddr } from './netns.ts';

const [addr, portText, countText, sizeText] = process.argv.slice(2);
if (!addr || !portText || !countText) {
  process.stderr.write('usage: udp-send.ts <addr> <port> <count> [size]\n');
  process.exit(2);
}
const libc = koffi.load('libc.so.6');
const socketCall = libc.func('int socket(int domain, int type, int protocol)') as (
  d: number,
  t: number,
  p: number,
) => number;
const sendto = libc.func(
  'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
) as (fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, addrlen: number) => number;
const sa = sockaddr(addr, Number(portText));
const fd = socketCall(sa.family, 2, 0);
if (fd < 0) throw new Error(`socket: errno ${koffi.errno()}`);
const payload = Buffer.alloc(Number(sizeText ?? 32), 0x62);
const count = Number(countText);
const t0 = process.hrtime.bigint();
let sent = 0;
for (let i = 0; i < count; i++) {
  if (sendto(fd, payload, payload.length, 0, sa.bytes, sa.bytes.length) >= 0) sent++;
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(`${JSON.stringify({ sent, seconds })}\n`);
