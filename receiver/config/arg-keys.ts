// Probe args are written in snake_case in the config file (`rate_limit`, `exclude_interfaces`), like every
// other config key, while a probe's zod schema names them as the probe's TypeScript reads them (mostly
// camelCase: `rateLimit`). This file maps one onto the other, guided by the schema:
//   - a key the schema has as written is kept (single words, and probes whose schema is snake_case);
//   - a snake_case key whose camelCase form the schema has is renamed to it;
//   - a camelCase key is the old spelling: accepted for one release, with a warning naming the new one;
//   - a key the schema has in neither form is an error (zod `object` would drop it silently: a typo
//     such as `rate_limt` must not quietly do nothing).
// Paths in zod's issues name the schema's keys; `snakePath` turns them back into what the file says.
import type { ConfigIssue } from './errors.ts';

/** `rateWindowMs` → `rate_window_ms`, `slow100ThresholdMs` → `slow100_threshold_ms`. */
export function camelToSnake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** `rate_window_ms` → `rateWindowMs`. */
export function snakeToCamel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The dotted path a user sees: each key segment in snake_case (array indexes unchanged). */
export function snakePath(path: readonly PropertyKey[]): PropertyKey[] {
  return path.map((p) => (typeof p === 'string' ? camelToSnake(p) : p));
}

interface ZodDefLike {
  readonly type: string;
  readonly shape?: Record<string, { readonly _zod: { readonly def: ZodDefLike } }>;
  readonly innerType?: { readonly _zod: { readonly def: ZodDefLike } };
  readonly in?: { readonly _zod: { readonly def: ZodDefLike } };
  readonly element?: { readonly _zod: { readonly def: ZodDefLike } };
  /** Set on `looseObject` (unknown keys kept) and `strictObject` (type `never`: unknown keys refused). */
  readonly catchall?: { readonly _zod: { readonly def: ZodDefLike } };
}

/** The object or array under wrappers (default, optional, pipe, ...); undefined for anything else. */
function unwrap(def: ZodDefLike): ZodDefLike | undefined {
  for (let d: ZodDefLike | undefined = def, i = 0; d && i < 32; i++) {
    if (d.type === 'object' || d.type === 'array') return d;
    d = (d.innerType ?? d.in)?._zod.def;
  }
  return undefined;
}

export interface ArgKeysResult {
  /** The input with snake_case keys renamed to the schema's spelling. */
  readonly value: unknown;
  readonly issues: ConfigIssue[];
  /** Old (camelCase) spellings found, each naming the key and its new spelling. */
  readonly warnings: ConfigIssue[];
}

/**
 * Rename the keys of `input` to the spelling of `schema` (a zod schema), collecting unknown or doubled
 * keys as issues and old spellings as warnings. `prefix` is the dotted path of `input`, e.g.
 * `probes.packetloss.args`.
 */
export function normalizeArgKeys(schema: unknown, input: unknown, prefix: string): ArgKeysResult {
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const walk = (def: ZodDefLike | undefined, v: unknown, path: string): unknown => {
    const d = def && unwrap(def);
    if (!d) return v;
    if (d.type === 'array') {
      if (!Array.isArray(v) || !d.element) return v;
      return v.map((x, i) => walk(d.element?._zod.def, x, `${path}.${i}`));
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !d.shape) return v;
    const shape = d.shape;
    const out: Record<string, unknown> = {};
    const from = new Map<string, string>();
    for (const [key, x] of Object.entries(v)) {
      let target: string;
      if (Object.hasOwn(shape, key)) {
        target = key;
        if (/[A-Z]/.test(key))
          warnings.push({
            path: `${path}.${key}`,
            message: `the camelCase spelling is deprecated and will stop working in the next release; write ${camelToSnake(key)}`,
          });
      } else if (Object.hasOwn(shape, snakeToCamel(key))) {
        target = snakeToCamel(key);
      } else if (d.catchall && d.catchall._zod.def.type !== 'never') {
        out[key] = x;
        continue;
      } else {
        const known = Object.keys(shape).map((k) => JSON.stringify(camelToSnake(k)));
        // The path names the object (as zod's unknown-key issues do): the key may hold any character.
        issues.push({
          path,
          message: `unknown key ${JSON.stringify(key)}, expected one of ${known.join(', ')}`,
        });
        continue;
      }
      const earlier = from.get(target);
      if (earlier !== undefined) {
        issues.push({
          path: `${path}.${key}`,
          message: `${JSON.stringify(key)} and ${JSON.stringify(earlier)} are the same key; write it once, as ${camelToSnake(target)}`,
        });
        continue;
      }
      from.set(target, key);
      out[target] = walk(shape[target]?._zod.def, x, `${path}.${camelToSnake(target)}`);
    }
    return out;
  };
  const root = (schema as { _zod?: { def: ZodDefLike } } | undefined)?._zod?.def;
  const value = walk(root, input, prefix);
  return { value, issues, warnings };
}
