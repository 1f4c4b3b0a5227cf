// The Linux capabilities podnet needs when it does not run as root, each with what needs it. One list for
// the image (setcap in Containerfile), the DaemonSet (securityContext.capabilities.add), the preflight check
// (preflight.ts) and the tests that compare them (test/deploy/).

export interface CapabilityNeed {
  /** Name as the kernel and capsh spell it. */
  readonly cap: `CAP_${string}`;
  /** Bit number in CapEff (linux/capability.h). */
  readonly bit: number;
  /** What podnet does with it, and what fails without it. */
  readonly why: string;
}

export const CAPABILITIES: readonly CapabilityNeed[] = [
  {
    cap: 'CAP_BPF',
    bit: 39,
    why: 'create BPF maps and load BPF programs; without it every eBPF probe is unavailable (bpf: EPERM)',
  },
  {
    cap: 'CAP_PERFMON',
    bit: 38,
    why: 'load and attach tracing programs (tp_btf, raw_tp); without it every eBPF probe is unavailable (EPERM)',
  },
  {
    cap: 'CAP_SYSLOG',
    bit: 34,
    why: 'real addresses in /proc/kallsyms; without it kernel stacks and drop locations cannot be symbolized',
  },
  {
    cap: 'CAP_SYS_ADMIN',
    bit: 21,
    why: "setns(2) into each pod's network namespace; without it no per-pod netlink data (sockets, links, qdiscs, conntrack)",
  },
  {
    cap: 'CAP_SYS_PTRACE',
    bit: 19,
    why: "open /proc/<pid>/ns/net and /proc/<pid>/net of other users' processes; without it pods' netns cannot be found or read",
  },
  {
    cap: 'CAP_DAC_READ_SEARCH',
    bit: 2,
    why: "list /proc/<pid>/fd of other users' processes (mode 0500); without it the process probe cannot count fds or map sockets",
  },
  {
    cap: 'CAP_NET_ADMIN',
    bit: 12,
    why: 'conntrack statistics over ctnetlink (nfnetlink requires it); without it the conntrack probe is unavailable',
  },
  {
    cap: 'CAP_NET_RAW',
    bit: 13,
    why: 'open AF_PACKET sockets for packet captures (podnet capture, /capture, triggered captures); without it captures fail with EPERM',
  },
];

/** `CAP_SYS_ADMIN` → `SYS_ADMIN` (Kubernetes spelling). */
export function kubernetesName(cap: string): string {
  return cap.replace(/^CAP_/, '');
}

/** Effective capability set of this process (`CapEff` of /proc/self/status) as a bit mask. */
export function effectiveCapabilities(status: string): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) throw new Error('no CapEff line in /proc/self/status');
  return BigInt(`0x${m[1]}`);
}

export function hasCapability(mask: bigint, bit: number): boolean {
  return ((mask >> BigInt(bit)) & 1n) === 1n;
}

/**
 * Makes the permitted capabilities effective (capset(2) through libc). The image gives the node binary its
 * capabilities as permitted-only file capabilities (`setcap ...+p`): exec then succeeds with whatever subset
 * the pod's bounding set allows (with `+ep` the kernel refuses to exec at all when one is missing, with a
 * bare "operation not permitted" that names nothing), and this call turns them on. Returns the effective mask.
 */
export async function raiseEffective(): Promise<bigint> {
  const { default: koffi } = await import('koffi');
  const libc = koffi.load('libc.so.6');
  const capget = libc.func('int capget(void *hdr, void *data)');
  const capset = libc.func('int capset(void *hdr, void *data)');
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32LE(0x20080522, 0); // _LINUX_CAPABILITY_VERSION_3
  const data = Buffer.alloc(24); // 2 × { effective, permitted, inheritable } (u32 each)
  if (capget(hdr, data) !== 0) throw new Error(`capget failed: errno ${koffi.errno()}`);
  data.writeUInt32LE(data.readUInt32LE(4), 0);
  data.writeUInt32LE(data.readUInt32LE(16), 12);
  if (capset(hdr, data) !== 0) throw new Error(`capset failed: errno ${koffi.errno()}`);
  return (BigInt(data.readUInt32LE(12)) << 32n) | BigInt(data.readUInt32LE(0));
}
