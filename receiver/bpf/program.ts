// A loaded collection's program (fd, link, state, reason): its own file to keep object.ts, the spec and
// the collection's lifecycle, short. object.ts re-exports it.
import type { Hook } from './hooks.ts';
import { libbpf, type Ptr } from './libbpf.ts';
import type { ProgramSpec, ProgramState, ProgramStatus } from './object-types.ts';

/** A program of a loaded collection. */
export class BpfProgram {
  readonly name: string;
  readonly section: string;
  readonly hook: Hook;
  state: ProgramState;
  reason: string | undefined;
  /** libbpf / verifier log when loading or attaching failed. */
  log: string | undefined;
  readonly autoAttach: boolean;
  readonly ptr: Ptr | null;
  link: Ptr | null = null;
  /** In a shared hook's chain (hook-chain.ts) behind this program: runs by its tail call, with no link. */
  chainedAfter: string | undefined;

  constructor(
    spec: ProgramSpec,
    ptr: Ptr | null,
    st: { state: ProgramState; reason?: string },
    autoAttach: boolean,
  ) {
    this.name = spec.name;
    this.section = spec.section;
    this.hook = spec.hook;
    this.ptr = ptr;
    this.state = st.state;
    this.reason = st.reason;
    this.autoAttach = autoAttach;
  }

  /** Program fd (valid while loaded), or -1. */
  get fd(): number {
    return this.ptr && this.state !== 'closed' ? libbpf().bpf_program__fd(this.ptr) : -1;
  }

  status(): ProgramStatus {
    return {
      name: this.name,
      section: this.section,
      state: this.state,
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.chainedAfter ? { chainedAfter: this.chainedAfter } : {}),
    };
  }
}
