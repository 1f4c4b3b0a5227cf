// One capture: a PacketSocket in the target netns, its packets encoded as pcapng and written to a
// stream, until a limit (packet count, duration, output bytes) is reached or stop() is called. Memory is
// bounded by the kernel ring plus one staging buffer: while the output stream is backed up, the ring is
// not read, so the kernel drops (and counts) packets instead of podnet buffering them.
import koffi from 'koffi';
import type { Logger } from '../log/logger.ts';
import { PODNET_VERSION } from '../otel/version.ts';
import { headerLength } from './headers.ts';
import { PacketSocket, type RingPacket } from './packet-socket.ts';
import { type CompiledFilter, compileFilter } from './pcap-filter.ts';
import {
  encodePacket,
  interfaceDescription,
  interfaceStatistics,
  LINKTYPE_LINUX_SLL,
  packetBlockSize,
  sectionHeader,
} from './pcapng.ts';

/**
 * What the kernel keeps per packet when no snaplen is asked for: every IPv4/IPv6 + TCP header with options
 * fits; the capture then cuts each packet after its transport header (headers.ts), so no payload is kept
 * unless a snaplen is asked for (docs/capture.md#privacy).
 */
export const DEFAULT_SNAPLEN = 128;
export const MAX_SNAPLEN = 65535;
const STAGING = 256 * 1024;
/** The kernel hands a partly filled ring block over this long after its first packet. */
const BLOCK_TIMEOUT_MS = 20;

export interface CaptureLimits {
  /** Stop after this many packets. */
  readonly count?: number | undefined;
  /** Stop after this long (ms). */
  readonly durationMs?: number | undefined;
  /** Stop before the output would grow past this many bytes (pcapng headers included). */
  readonly maxBytes?: number | undefined;
}

export interface CaptureOptions extends CaptureLimits {
  readonly netnsPath: string;
  /** tcpdump syntax ('' = everything), or the same compiled for this snaplen by a caller that checked it. */
  readonly filter?: string | CompiledFilter;
  /** Bytes kept per packet, payload included; unset = headers only (IP + transport header). */
  readonly snaplen?: number | undefined;
  readonly ringBytes?: number;
  /** Receives whole pcapng blocks; returns false when it is backed up (like Writable.write). */
  readonly write: (chunk: Buffer) => boolean;
  /** Registers a callback for when a backed-up output can take more (Writable 'drain'). */
  readonly onDrain: (fn: () => void) => void;
  /** Written into the section header (shb_comment): what was captured. */
  readonly comment?: string;
  readonly log?: Logger;
}

export type StopReason = 'count' | 'duration' | 'max-bytes' | 'stopped' | 'error';

export interface CaptureResult {
  readonly reason: StopReason;
  readonly packets: number;
  readonly bytes: number;
  /** Packets the socket received in the kernel (after the filter), and those the ring had no room for. */
  readonly kernelPackets: number;
  readonly kernelDrops: number;
  readonly interfaces: readonly string[];
  readonly error?: string;
}

export class CaptureSession {
  readonly #opts: CaptureOptions;
  readonly #sock: PacketSocket;
  readonly #staging = Buffer.alloc(STAGING);
  #pos = 0;
  readonly #ifaces = new Map<number, number>();
  readonly #ifaceNames: string[] = [];
  readonly #snaplen: number;
  readonly #headersOnly: boolean;
  #packets = 0;
  #bytes = 0;
  #blocked = false;
  #poll: ReturnType<typeof koffi.node.poll> | null = null;
  #timer: NodeJS.Timeout | undefined;
  /** The limit that ended the capture, set by the packet handler. */
  #limit: StopReason | undefined;
  #finishing = false;
  #error: string | undefined;
  #resolve!: (r: CaptureResult) => void;
  readonly done: Promise<CaptureResult>;

  /** Opens the socket (throws FilterError / CaptureSocketError / NetnsError) and starts reading. */
  constructor(opts: CaptureOptions) {
    this.#opts = opts;
    this.#snaplen = opts.snaplen ?? DEFAULT_SNAPLEN;
    this.#headersOnly = opts.snaplen === undefined;
    this.done = new Promise((r) => {
      this.#resolve = r;
    });
    const filter =
      typeof opts.filter === 'object' ? opts.filter : compileFilter(opts.filter ?? '', this.#snaplen);
    if (filter.snaplen !== this.#snaplen)
      throw new Error(`filter compiled for snaplen ${filter.snaplen}, capture snaplen ${this.#snaplen}`);
    this.#sock = new PacketSocket({
      netnsPath: opts.netnsPath,
      filter,
      blockTimeoutMs: BLOCK_TIMEOUT_MS,
      ...(opts.ringBytes !== undefined ? { ringBytes: opts.ringBytes } : {}),
    });
    try {
      this.#emit(sectionHeader(`podnet ${PODNET_VERSION}`, opts.comment));
      for (const [index, name] of this.#sock.interfaces()) this.#addInterface(index, name);
      this.#poll = koffi.node.poll(this.#sock.fd, { readable: true }, () => this.#turn());
    } catch (err) {
      this.#sock.close(); // nothing may outlive a capture that did not start
      throw err;
    }
    this.#flush();
    if (opts.durationMs !== undefined)
      this.#timer = setTimeout(() => this.#finish('duration'), opts.durationMs);
  }

  get packets(): number {
    return this.#packets;
  }
  get bytes(): number {
    return this.#bytes;
  }

  /** Stops the capture: whatever the ring holds is written (within the limits), then the result. */
  stop(): Promise<CaptureResult> {
    this.#finish('stopped');
    return this.done;
  }

  #emit(b: Buffer): void {
    if (this.#pos + b.length > STAGING) this.#flush();
    b.copy(this.#staging, this.#pos);
    this.#pos += b.length;
    this.#bytes += b.length;
  }

  #flush(): void {
    if (this.#pos === 0) return;
    const chunk = Buffer.from(this.#staging.subarray(0, this.#pos));
    this.#pos = 0;
    if (!this.#opts.write(chunk) && !this.#blocked && !this.#finishing) {
      this.#blocked = true;
      this.#poll?.stop();
      this.#opts.onDrain(() => {
        this.#blocked = false;
        if (!this.#finishing) {
          this.#poll?.start({ readable: true }, () => this.#turn());
          this.#turn();
        }
      });
    }
  }

  #addInterface(ifindex: number, name: string): number {
    const id = this.#ifaceNames.length;
    this.#ifaces.set(ifindex, id);
    this.#ifaceNames.push(name);
    this.#emit(interfaceDescription(name, LINKTYPE_LINUX_SLL, this.#snaplen + 16));
    return id;
  }

  /** Returns false when a limit is reached (the packet is not written). */
  readonly #onPacket = (p: RingPacket): boolean => {
    if (this.#limit !== undefined) return false;
    if (this.#headersOnly) p.capLen = Math.min(p.capLen, headerLength(p));
    let id = this.#ifaces.get(p.ifindex);
    const name = id === undefined ? this.#sock.interfaceName(p.ifindex) : '';
    const idb =
      id === undefined ? interfaceDescription(name, LINKTYPE_LINUX_SLL, this.#snaplen + 16) : undefined;
    const need = packetBlockSize(p.capLen) + (idb?.length ?? 0);
    const max = this.#opts.maxBytes;
    if (max !== undefined && this.#bytes + need > max) {
      this.#limit = 'max-bytes';
      return false;
    }
    if (idb) id = this.#addInterface(p.ifindex, name); // appeared during the capture
    if (this.#pos + need > STAGING) this.#flush();
    const end = encodePacket(this.#staging, this.#pos, id!, p);
    this.#bytes += end - this.#pos;
    this.#pos = end;
    this.#packets++;
    if (this.#opts.count !== undefined && this.#packets >= this.#opts.count) {
      this.#limit = 'count';
      return false;
    }
    return true;
  };

  #turn(): void {
    if (this.#finishing || this.#blocked) return;
    try {
      // a few blocks per turn keeps the event loop responsive; the level-triggered poll brings us back
      this.#sock.drain(this.#onPacket, 8);
    } catch (err) {
      this.#error = (err as Error).message;
      this.#limit = 'error';
    }
    this.#flush();
    if (this.#limit !== undefined) this.#finish(this.#limit);
  }

  #finish(reason: StopReason): void {
    if (this.#finishing) return;
    this.#finishing = true;
    this.#poll?.stop();
    this.#poll?.close();
    this.#poll = null;
    if (this.#timer) clearTimeout(this.#timer);
    if (reason === 'stopped' || reason === 'duration') {
      // Packets of the capture window may sit in the block the kernel is still filling; it retires
      // that block at the latest blockTimeoutMs after its first packet. Wait for that, then write them.
      setTimeout(
        () => {
          try {
            this.#sock.drain(this.#onPacket);
          } catch (err) {
            this.#error = (err as Error).message;
          }
          this.#close(this.#limit ?? reason);
        },
        2 * BLOCK_TIMEOUT_MS + 10,
      );
    } else this.#close(reason);
  }

  #close(reason: StopReason): void {
    this.#sock.close();
    if (this.#ifaceNames.length > 0) {
      // The socket's counters cover every interface: one statistics block, on the first interface.
      const isb = interfaceStatistics(0, Date.now() * 1000, this.#sock.kernelPackets, this.#sock.kernelDrops);
      if (this.#opts.maxBytes === undefined || this.#bytes + isb.length <= this.#opts.maxBytes)
        this.#emit(isb);
    }
    this.#flush();
    const result: CaptureResult = {
      reason,
      packets: this.#packets,
      bytes: this.#bytes,
      kernelPackets: this.#sock.kernelPackets,
      kernelDrops: this.#sock.kernelDrops,
      interfaces: [...this.#ifaceNames],
      ...(this.#error !== undefined ? { error: this.#error } : {}),
    };
    this.#opts.log?.debug({ ...result }, 'capture finished');
    this.#resolve(result);
  }
}

/** Counts of what happened to captures, for self-telemetry (podnet.capture.count by outcome). */
export interface CaptureCounts {
  on_demand: number;
  refused: number;
  triggered: number;
  skipped: number;
  failed: number;
}

/** The capture slots sessions occupy (service.ts): what triggered captures (trigger.ts) need of them. */
export interface CaptureSlots {
  readonly counts: CaptureCounts;
  /** Captures running now. */
  readonly active: number;
  hasRoom(): boolean;
  track(session: CaptureSession): void;
}
