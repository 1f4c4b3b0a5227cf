// tcpdump-syntax filters compiled to classic BPF by libpcap's own compiler (pcap_open_dead +
// pcap_compile), loaded with koffi from Debian's libpcap0.8. No capture goes through libpcap: the
// program is attached to podnet's own AF_PACKET socket (packet-socket.ts).
//
// The socket is SOCK_DGRAM (cooked): the kernel runs the filter on the packet from its network header
// on, with no link-layer header (net/packet/af_packet.c pulls it off for SOCK_DGRAM). So the program is
// compiled for DLT_RAW, where offset 0 is the IPv4/IPv6 header and `ip`/`ip6` test the version nibble.
// Link-layer primitives (`ether host`, `vlan`) are rejected by libpcap with its own message.
import koffi from 'koffi';

/** DLT_RAW as libpcap defines it on Linux (pcap/dlt.h). */
const DLT_RAW = 12;
const PCAP_NETMASK_UNKNOWN = 0xffffffff;
/** struct bpf_program { u_int bf_len; struct bpf_insn *bf_insns; } on LP64. */
const BPF_PROGRAM_SIZE = 16;
/** struct bpf_insn and struct sock_filter are the same 8 bytes: u16 code, u8 jt, u8 jf, u32 k. */
export const BPF_INSN_SIZE = 8;

export class FilterError extends Error {
  readonly expression: string;
  constructor(message: string, expression: string) {
    super(message);
    this.name = 'FilterError';
    this.expression = expression;
  }
}

interface Libpcap {
  open_dead: (linktype: number, snaplen: number) => bigint | null;
  compile: (p: bigint, fp: Buffer, str: string, optimize: number, netmask: number) => number;
  geterr: (p: bigint) => string;
  freecode: (fp: Buffer) => void;
  close: (p: bigint) => void;
}

let lib: Libpcap | undefined;
let loadError: string | undefined;

function libpcap(): Libpcap {
  if (lib) return lib;
  if (loadError) throw new FilterError(loadError, '');
  let so: ReturnType<typeof koffi.load>;
  try {
    so = koffi.load('libpcap.so.0.8');
  } catch (err) {
    loadError = `libpcap.so.0.8 not found (Debian package libpcap0.8): ${(err as Error).message}`;
    throw new FilterError(loadError, '');
  }
  lib = {
    open_dead: so.func('void *pcap_open_dead(int linktype, int snaplen)'),
    compile: so.func('int pcap_compile(void *p, void *fp, const char *str, int optimize, uint32_t netmask)'),
    geterr: so.func('const char *pcap_geterr(void *p)'),
    freecode: so.func('void pcap_freecode(void *fp)'),
    close: so.func('void pcap_close(void *p)'),
  } as Libpcap;
  return lib;
}

/** A filter compiled once (a request checks it, then its socket attaches the same program). */
export interface CompiledFilter {
  readonly expression: string;
  /** The accept verdict of the program: the bytes kept per packet. */
  readonly snaplen: number;
  /** The instructions as they go into struct sock_fprog (8 bytes each). */
  readonly insns: Buffer;
}

/**
 * Compiles `expression` (tcpdump syntax; empty = every packet) into classic BPF instructions whose
 * accept verdict is `snaplen` bytes, so the kernel itself truncates every packet to the snaplen.
 */
export function compileFilter(expression: string, snaplen: number): CompiledFilter {
  const l = libpcap();
  const p = l.open_dead(DLT_RAW, snaplen);
  if (!p) throw new FilterError('pcap_open_dead failed', expression);
  try {
    const prog = Buffer.alloc(BPF_PROGRAM_SIZE);
    if (l.compile(p, prog, expression, 1, PCAP_NETMASK_UNKNOWN) !== 0) {
      throw new FilterError(`invalid filter "${expression}": ${l.geterr(p)}`, expression);
    }
    try {
      const n = prog.readUInt32LE(0);
      const insns = prog.readBigUInt64LE(8);
      const code = Buffer.from(new Uint8Array(koffi.view(insns, n * BPF_INSN_SIZE)));
      return { expression, snaplen, insns: code };
    } finally {
      l.freecode(prog);
    }
  } finally {
    l.close(p);
  }
}
