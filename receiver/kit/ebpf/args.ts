// The event tunables every eBPF anomaly probe accepts (rate limit, stacks, ring size, attach mode): their
// own file because probes spread them into their argument schemas without needing the runtime.
// runtime.ts re-exports them.
import { z } from 'zod';

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** `ringBytes` with a probe's own default (each probe sizes its ring from its record size and rate limit). */
export function ringBytesArg(defaultBytes: number) {
  return z.number().int().min(4096).refine(isPow2, 'must be a power of two').default(defaultBytes);
}

/** Event tunables every eBPF anomaly probe accepts (spread into the probe's zod object). */
export const eventArgsShape = {
  /** Events per (netns, event type) per window, limited in the kernel; 0 = unlimited. Counters are never limited. */
  rateLimit: z.number().int().min(0).default(100),
  /** Rate-limit window, ms. */
  rateWindowMs: z.number().int().positive().default(1000),
  /** Capture a kernel stack for each event that is sent (costs ~4-5x the handler). */
  stacks: z.boolean().default(false),
  /** Ring buffer size, bytes (a power of two, >= 4096). */
  ringBytes: ringBytesArg(1 << 20),
  /** Stack map entries (only allocated when stacks are on). */
  stackEntries: z.number().int().positive().default(2048),
  /**
   * `auto`: tp_btf programs, raw_tp only where a tp_btf program cannot load or attach; `raw_tp`: always
   * the raw_tp variants (kernels or policies without tp_btf).
   */
  attach: z.enum(['auto', 'raw_tp']).default('auto'),
};
export const eventArgsSchema = z.object(eventArgsShape);
export type EventArgs = z.infer<typeof eventArgsSchema>;
