// Every probe podnet knows. Adding a probe = a folder under probes/ + one line here.
import type { ProbeSpec } from '../receiver/probe/types.ts';

// biome-ignore lint/suspicious/noExplicitAny: each probe has its own args type; the registry holds them all.
export type AnyProbeSpec = ProbeSpec<any>;

export const probeSpecs: readonly AnyProbeSpec[] = [];
