// Availability of an eBPF probe on this kernel, judged before loading (capabilities, kernel BTF, the
// loader's own plan of hooks and prototype variants), and the per-path cache of parsed objects it and
// the loader share. Its own file: ProbeSpec.availability() and kernels.ts need it without the runtime.
// runtime.ts re-exports it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NoKernelBtfError } from '../../bpf/btf.ts';
import { bpfCapabilityProblem } from '../../bpf/caps.ts';
import { BpfSpec, type ProgramOptions } from '../../bpf/object.ts';
import type { Availability } from '../../probe/types.ts';

const specs = new Map<string, BpfSpec>();

/** The parsed object (cached per path). Throws when the committed object is missing. */
export function objectSpec(object: URL | string): BpfSpec {
  const path = typeof object === 'string' ? object : fileURLToPath(object);
  let s = specs.get(path);
  if (!s) {
    if (!existsSync(path)) throw new Error(`BPF object ${path} missing: run sh scripts/build-bpf.sh`);
    s = BpfSpec.fromFile(path);
    specs.set(path, s);
  }
  return s;
}

/**
 * Whether at least one program of the object can attach here, judged from hook checks only (BTF
 * typedefs and prototype arity, tracefs, program types): cheap and side-effect free, for
 * ProbeSpec.availability(). `groups` lists alternative program names per required hook, preferred first;
 * every group needs one usable program. `programs` are the options create() passes to the loader (the
 * prototype variants, `tpArgs`): the check runs the loader's own plan (BpfSpec.plan), so it sees exactly
 * what load needs. `variant` names the program each group will use.
 */
export function hookAvailability(
  object: URL | string,
  groups: readonly (readonly string[])[],
  programs: Readonly<Record<string, ProgramOptions>> = {},
): Availability {
  let spec: BpfSpec;
  try {
    spec = objectSpec(object);
  } catch (err) {
    return { available: false, reason: (err as Error).message };
  }
  // A missing capability (CAP_BPF / CAP_PERFMON) fails every hook alike: say it once, with what it disables.
  const caps = bpfCapabilityProblem({
    tracing: groups.some((g) => g.some((n) => spec.program(n).hook.kind !== 'other')),
  });
  if (caps) return { available: false, reason: caps };
  let plan: ReturnType<BpfSpec['plan']>;
  try {
    plan = spec.plan({ programs });
  } catch (err) {
    if (err instanceof NoKernelBtfError) return { available: false, reason: err.message };
    throw err;
  }
  const missing: string[] = [];
  const partial: string[] = [];
  const chosen: string[] = [];
  for (const group of groups) {
    const reasons: string[] = [];
    let pick: string | undefined;
    for (const name of group) {
      const st = plan.get(name);
      if (st?.state === 'loaded') pick ??= name;
      else if (st?.state === 'unavailable') reasons.push(`${name}: ${st.reason ?? 'unavailable'}`);
    }
    if (pick) chosen.push(pick);
    if (!pick) missing.push(reasons.join('; ') || `${group.join(', ')}: disabled`);
    else if (reasons.length && group.length === 1) partial.push(reasons.join('; '));
  }
  const variant = chosen.length ? chosen.join(' + ') : undefined;
  if (missing.length === groups.length) return { available: false, reason: missing.join(' | ') };
  if (missing.length)
    return { available: true, reason: `partly: ${missing.join(' | ')}`, ...(variant ? { variant } : {}) };
  return { available: true, ...(variant ? { variant } : {}) };
}
