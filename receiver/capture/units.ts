// Command-line and query-string values of a capture: durations and byte sizes with units.
import { parseDuration } from '../config/duration.ts';

/** `10s`, `500ms`, `2m`, or bare seconds (`10`, as tcpdump's -G). */
export function parseDurationArg(v: string): number | undefined {
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v) * 1000);
  return parseDuration(v);
}

const SIZE_RE = /^(\d+)\s*([kKmMgG]i?[bB]?|[bB])?$/;

/** `1000`, `64k`, `10M`, `1GiB` (binary multiples) → bytes. */
export function parseBytesArg(v: string): number | undefined {
  const m = SIZE_RE.exec(v.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(m[1]) * mult;
}
