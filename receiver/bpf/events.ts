// Decoding helpers for ring records built on probes/include/pn_event.h.
// Every record starts with `struct pn_event_hdr` (layout generated into pn.layout.gen.ts from the objects'
// BTF); the probe's payload follows it. Offsets are relative to the record start the ring reader
// hands over; the view aliases the ring, so decode into plain values before returning.
import { PN_EVENT_HDR_SIZE, pnEventHdr } from './pn.layout.gen.ts';

export const EVENT_HEADER_SIZE = PN_EVENT_HDR_SIZE;

export interface EventHeader {
  /** bpf_ktime_get_ns() (CLOCK_MONOTONIC). */
  readonly tsNs: bigint;
  readonly type: number;
  /** Netns inode, 0 = unattributed. */
  readonly netns: number;
}

export function readEventHeader(view: DataView, offset: number): EventHeader {
  return {
    tsNs: pnEventHdr.ts_ns(view, offset),
    type: pnEventHdr.type(view, offset),
    netns: pnEventHdr.netns(view, offset),
  };
}

// CLOCK_MONOTONIC → Unix time: process.hrtime.bigint() is CLOCK_MONOTONIC on Linux.
let offsetNs: bigint | undefined;
let offsetAt = 0;

/** Converts a kernel monotonic timestamp (bpf_ktime_get_ns) to ns since the Unix epoch. */
export function monotonicToUnixNano(tsNs: bigint): bigint {
  const now = Date.now();
  if (offsetNs === undefined || now - offsetAt > 10_000) {
    // re-derive every 10 s: follows wall-clock adjustments
    offsetNs = BigInt(now) * 1_000_000n - process.hrtime.bigint();
    offsetAt = now;
  }
  return tsNs + offsetNs;
}

/** IPv4 / IPv6 address text from 16 bytes at `offset` (IPv4 in the first 4 bytes when family is 2). */
export function ipString(view: DataView, offset: number, family: number): string {
  if (family === 2) {
    return `${view.getUint8(offset)}.${view.getUint8(offset + 1)}.${view.getUint8(offset + 2)}.${view.getUint8(offset + 3)}`;
  }
  if (family === 10) {
    const parts: string[] = [];
    for (let i = 0; i < 16; i += 2) parts.push(view.getUint16(offset + i, false).toString(16));
    // compress the longest run of zeros (RFC 5952)
    let best = -1;
    let bestLen = 0;
    for (let i = 0; i < 8; ) {
      if (parts[i] !== '0') {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && parts[j] === '0') j++;
      if (j - i > bestLen && j - i > 1) {
        best = i;
        bestLen = j - i;
      }
      i = j;
    }
    if (best < 0) return parts.join(':');
    return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
  }
  return '';
}

/** A DataView over a Buffer's bytes (a map key or value), for the generated layout readers. */
export function dataView(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
