// Durations in the config file: `500ms`, `10s`, `1.5m`, `1h`, as a zod schema with bounds. Its own file so
// that config sections defined elsewhere (receiver/capture/config.ts) use it without importing the schema.
import { z } from 'zod';

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `10s`, `1.5m`, `1h` → milliseconds; undefined when malformed. */
export function parseDuration(v: string): number | undefined {
  const m = DURATION_RE.exec(v.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}

export function duration(min: number, max: number) {
  return z.string().transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration such as 500ms, 10s, 1m or 1h', input: v });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration between ${formatMs(min)} and ${formatMs(max)}`,
        input: v,
      });
      return z.NEVER;
    }
    return ms;
  });
}

export function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
