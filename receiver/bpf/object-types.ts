// The shapes shared by an object's spec, its load plan and its loaded collection (object.ts,
// load-plan.ts, program.ts): their own file so that those modules can share them without importing one
// another. object.ts re-exports them; import them from there.
import type { Logger } from '../log/logger.ts';
import type { Hook } from './hooks.ts';

export interface ProgramSpec {
  readonly name: string;
  readonly section: string;
  readonly hook: Hook;
  /** BPF_PROG_TYPE_* as libbpf resolved it from the section. */
  readonly type: number;
}

export interface MapSpec {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
}

export interface RodataVar {
  readonly offset: number;
  readonly size: number;
}

export type RodataValue = number | bigint | boolean | Uint8Array;

export interface ProgramOptions {
  /** false = do not load this program (state `disabled`, not a degradation). */
  readonly enabled?: boolean;
  /**
   * Prototype variant of a tp_btf/raw_tp program: the tracepoint argument count it was written for.
   * A number means exactly that many; `{ min }` / `{ max }` bound it. Programs whose variant does not
   * match the running kernel are `skipped`; when no variant of a hook matches, all are `unavailable`.
   */
  readonly tpArgs?: number | { readonly min?: number; readonly max?: number };
  /** false = load but do not attach in attach() (attach it yourself with attachProgram). */
  readonly autoAttach?: boolean;
}

export interface LoadOptions {
  /** `.rodata` tunables (`const volatile` globals) by variable name. */
  readonly rodata?: Readonly<Record<string, RodataValue>>;
  /** Map sizes by map name (ring buffers: bytes, a power of two ≥ page size). */
  readonly maxEntries?: Readonly<Record<string, number>>;
  readonly programs?: Readonly<Record<string, ProgramOptions>>;
  /** Throw the load error (with the verifier log) instead of disabling the failing program and retrying. */
  readonly strict?: boolean;
  readonly log?: Logger;
}

export type ProgramState = 'loaded' | 'attached' | 'disabled' | 'skipped' | 'unavailable' | 'closed';

export interface ProgramStatus {
  readonly name: string;
  readonly section: string;
  readonly state: ProgramState;
  readonly reason?: string;
  /** Runs by tail call from this program (another probe's, same hook: receiver/bpf/hook-chain.ts). */
  readonly chainedAfter?: string;
}

export interface ObjectStatus {
  readonly state: 'running' | 'degraded' | 'unavailable';
  readonly reason?: string;
  readonly programs: readonly ProgramStatus[];
}
