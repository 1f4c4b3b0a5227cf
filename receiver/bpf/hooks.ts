// Probe before load: does this kernel offer a program's hook? Decided from the section name, vmlinux BTF,
// tracefs and libbpf's prog-type probe, without loading the program.
//   tp_btf / raw_tp   btf_trace_<name> typedef in vmlinux BTF (+ its argument count)
//   tracepoint        /sys/kernel/tracing/events/<cat>/<name> (or the debugfs path)
//   fentry/fexit/...  libbpf_probe_bpf_prog_type(TRACING) == 1 and the BTF FUNC exists
//   lsm               libbpf_probe_bpf_prog_type(LSM) == 1 and bpf_lsm_<hook> exists
//   kprobe/kretprobe  known only at attach time (load succeeds without CONFIG_KPROBES)
// Before any of these: the capabilities the kernel demands for the program type (caps.ts); a missing one
// makes every hook unavailable with a reason that names it.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Btf } from './btf.ts';
import { bpfCapabilityProblem } from './caps.ts';
import { libbpf } from './libbpf.ts';

export type HookKind =
  | 'tp_btf'
  | 'raw_tp'
  | 'tracepoint'
  | 'fentry'
  | 'fexit'
  | 'fmod_ret'
  | 'lsm'
  | 'kprobe'
  | 'kretprobe'
  | 'other';

export interface Hook {
  readonly kind: HookKind;
  /** tracepoint / function name (`kfree_skb`, `skb/kfree_skb`, `tcp_sendmsg`); '' for `other`. */
  readonly target: string;
}

export interface HookCheck {
  /** false = known not to work here; the program must not be loaded. */
  readonly available: boolean;
  /** Why not (or, when available but unverified, what is left to chance). */
  readonly reason?: string;
  /** Argument count of a tp_btf / raw_tp target from BTF. */
  readonly args?: number;
  /** true when only attach can tell (kprobes). */
  readonly attachTime?: boolean;
}

export const BPF_PROG_TYPE = {
  KPROBE: 2,
  TRACEPOINT: 5,
  RAW_TRACEPOINT: 17,
  TRACING: 26,
  EXT: 28,
  LSM: 29,
} as const;

const TRACEFS_ROOTS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** Parses a libbpf section name into a hook. */
export function parseSection(section: string): Hook {
  const i = section.indexOf('/');
  const prefix = i < 0 ? section : section.slice(0, i);
  const target = i < 0 ? '' : section.slice(i + 1);
  switch (prefix) {
    case 'tp_btf':
      return { kind: 'tp_btf', target };
    case 'raw_tp':
    case 'raw_tracepoint':
    case 'raw_tp.w':
    case 'raw_tracepoint.w':
      return { kind: 'raw_tp', target };
    case 'tp':
    case 'tracepoint':
      return { kind: 'tracepoint', target };
    case 'fentry':
    case 'fentry.s':
      return { kind: 'fentry', target };
    case 'fexit':
    case 'fexit.s':
      return { kind: 'fexit', target };
    case 'fmod_ret':
    case 'fmod_ret.s':
      return { kind: 'fmod_ret', target };
    case 'lsm':
    case 'lsm.s':
      return { kind: 'lsm', target };
    case 'kprobe':
    case 'ksyscall':
      return { kind: 'kprobe', target };
    case 'kretprobe':
    case 'kretsyscall':
      return { kind: 'kretprobe', target };
    default:
      return { kind: 'other', target };
  }
}

const progTypeCache = new Map<number, boolean>();

/** libbpf_probe_bpf_prog_type(type) == 1, cached. */
export function progTypeAllowed(type: number): boolean {
  let v = progTypeCache.get(type);
  if (v === undefined) {
    v = libbpf().libbpf_probe_bpf_prog_type(type, null) === 1;
    progTypeCache.set(type, v);
  }
  return v;
}

/** Directory of a classic tracepoint in tracefs, or null when tracefs shows no such event. */
export function tracefsEventDir(target: string): string | null {
  for (const root of TRACEFS_ROOTS) {
    const dir = `${root}/events/${target}`;
    if (existsSync(`${dir}/id`)) return dir;
  }
  return null;
}

function tracefsMounted(): boolean {
  return TRACEFS_ROOTS.some((r) => existsSync(`${r}/events`));
}

/** Checks a hook against this kernel. `btf` is the vmlinux BTF. */
export function checkHook(hook: Hook, btf: Btf): HookCheck {
  const caps = bpfCapabilityProblem({ short: true, tracing: hook.kind !== 'other' });
  if (caps) return { available: false, reason: caps };
  switch (hook.kind) {
    case 'tp_btf':
    case 'raw_tp': {
      const args = btf.tracepointArgs(hook.target);
      if (args === null) {
        return {
          available: false,
          reason: `tracepoint ${hook.target} does not exist in this kernel (no btf_trace_${hook.target} in BTF)`,
        };
      }
      return { available: true, args };
    }
    case 'tracepoint': {
      if (tracefsEventDir(hook.target)) return { available: true };
      if (!tracefsMounted()) {
        return {
          available: false,
          reason: `tracefs is not mounted (needed for tracepoint ${hook.target}); mount it at /sys/kernel/tracing`,
        };
      }
      return {
        available: false,
        reason: `tracepoint ${hook.target} does not exist in this kernel (not in tracefs events)`,
      };
    }
    case 'fentry':
    case 'fexit':
    case 'fmod_ret': {
      if (!progTypeAllowed(BPF_PROG_TYPE.TRACING)) {
        return {
          available: false,
          reason: `${hook.kind} programs are not allowed by this kernel (BPF_PROG_TYPE_TRACING probe failed)`,
        };
      }
      if (!btf.hasFunc(hook.target)) {
        return { available: false, reason: `kernel function ${hook.target} not found in BTF` };
      }
      return { available: true };
    }
    case 'lsm': {
      if (!progTypeAllowed(BPF_PROG_TYPE.LSM)) {
        return {
          available: false,
          reason: 'BPF LSM programs are not allowed by this kernel (BPF_PROG_TYPE_LSM probe failed)',
        };
      }
      if (!btf.hasFunc(`bpf_lsm_${hook.target}`)) {
        return { available: false, reason: `LSM hook ${hook.target} not found in BTF` };
      }
      return { available: true };
    }
    case 'kprobe':
    case 'kretprobe':
      return { available: true, attachTime: true, reason: 'kprobe support is only known at attach time' };
    default:
      return { available: true };
  }
}

/**
 * Mounts tracefs at /sys/kernel/tracing when no tracefs is visible (needs root / CAP_SYS_ADMIN).
 * Only classic `tracepoint/` programs need it (libbpf reads the event id there); tp_btf/raw_tp do not.
 * Returns true when tracefs is available afterwards.
 */
export function ensureTracefs(): boolean {
  if (tracefsMounted()) return true;
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: 'ignore' });
  } catch {
    return false;
  }
  return tracefsMounted();
}
