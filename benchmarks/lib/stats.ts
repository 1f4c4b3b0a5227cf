// Small statistics and formatting helpers for benchmark tables.

export function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = sorted(xs);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export function min(xs: readonly number[]): number {
  return xs.length ? Math.min(...xs) : Number.NaN;
}

export function max(xs: readonly number[]): number {
  return xs.length ? Math.max(...xs) : Number.NaN;
}

/** `n` with `d` decimals; `–` for NaN/undefined. */
export function fmt(n: number | undefined, d = 1): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** Integer with thousands separators. */
export function int(n: number | undefined): string {
  return fmt(n, 0);
}

/** Ratio as a percentage change: 0.987 → "−1.3 %". */
export function pctChange(ratio: number, d = 1): string {
  if (!Number.isFinite(ratio)) return '–';
  const p = (ratio - 1) * 100;
  return `${p >= 0 ? '+' : '−'}${fmt(Math.abs(p), d)} %`;
}

export function mb(bytes: number, d = 1): string {
  return fmt(bytes / 2 ** 20, d);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
