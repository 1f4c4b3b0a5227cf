// Capabilities the kernel demands before it loads podnet's eBPF programs, read from this process's
// effective set (CapEff of /proc/self/status), so that a missing one is named instead of surfacing as a
// bare EPERM. The kernel's rules (kernel/bpf/syscall.c, Linux >= 5.8):
//   - creating any map podnet uses (ring buffer, per-CPU hash, stack trace) and loading any program type
//     other than socket filters needs bpf_capable(): CAP_BPF or CAP_SYS_ADMIN;
//   - loading tracing program types (tp_btf/fentry = TRACING, raw_tp, tracepoint, kprobe, LSM) also needs
//     perfmon_capable(): CAP_PERFMON or CAP_SYS_ADMIN.
import { readFileSync } from 'node:fs';

const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

/** What each capability disables when it is missing (and CAP_SYS_ADMIN does not cover it). */
export const BPF_CAPABILITY_NEEDS = {
  CAP_BPF: 'to create BPF maps and load BPF programs',
  CAP_PERFMON: 'to load tracing programs (tp_btf, raw_tp, tracepoint, kprobe, fentry)',
} as const;

export type BpfCapability = keyof typeof BPF_CAPABILITY_NEEDS;

/** Effective capability mask of this process, or null when /proc/self/status cannot be read. */
export function effectiveCapabilityMask(status?: string): bigint | null {
  let text = status;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  return m ? BigInt(`0x${m[1]}`) : null;
}

const has = (mask: bigint, bit: number) => ((mask >> BigInt(bit)) & 1n) === 1n;

/**
 * The capabilities eBPF loading needs that this process lacks (CAP_SYS_ADMIN covers both). `tracing`: the
 * programs are tracing types (everything podnet hooks except tc), which also need CAP_PERFMON.
 */
export function missingBpfCapabilities(mask = effectiveCapabilityMask(), tracing = true): BpfCapability[] {
  if (mask === null || has(mask, CAP_SYS_ADMIN)) return [];
  const out: BpfCapability[] = [];
  if (!has(mask, CAP_BPF)) out.push('CAP_BPF');
  if (tracing && !has(mask, CAP_PERFMON)) out.push('CAP_PERFMON');
  return out;
}

/**
 * Why the kernel will refuse podnet's eBPF programs here, naming each missing capability with what it
 * disables; undefined when the capabilities are there. `short` is the one-line form for hook checks.
 */
export function bpfCapabilityProblem(
  o: { short?: boolean; mask?: bigint | null; tracing?: boolean } = {},
): string | undefined {
  const mask = o.mask === undefined ? effectiveCapabilityMask() : o.mask;
  const missing = missingBpfCapabilities(mask, o.tracing ?? true);
  if (missing.length === 0) return undefined;
  const names = missing.join(' and ');
  if (o.short) return `${names} missing (no CAP_SYS_ADMIN either): the kernel refuses to load eBPF programs`;
  const parts = missing.map((c) => `${c} missing: the kernel refuses ${BPF_CAPABILITY_NEEDS[c]}`);
  const probes = missing.includes('CAP_BPF')
    ? 'every eBPF probe'
    : 'every eBPF probe built on tracing programs';
  return `${parts.join('; ')} (CAP_SYS_ADMIN, which would cover ${missing.length > 1 ? 'them' : 'it'}, is missing too), so ${probes} is unavailable; add ${names} to the container's securityContext.capabilities.add`;
}

/** Thrown by BpfSpec.load() when the kernel would refuse the object for lack of a capability. */
export class BpfCapabilityError extends Error {
  readonly missing: readonly BpfCapability[];
  constructor(object: string, missing: readonly BpfCapability[], problem: string) {
    super(`cannot load ${object}: ${problem}`);
    this.name = 'BpfCapabilityError';
    this.missing = missing;
  }
}
