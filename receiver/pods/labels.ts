// Which pod labels are copied onto signals (as `k8s.pod.label.<key>`), bounded so that cardinality cannot
// explode by accident: an allow-list of keys (exact, or a prefix ending in `*`), at most `maxKeys` labels
// per pod (the first keys in sorted order win) and values cut at `maxValueLength` characters.
import type { PodIdentity } from './entity.ts';

export interface LabelPolicyOptions {
  /** Label keys to copy: `app`, `app.kubernetes.io/name`, or a prefix pattern `app.kubernetes.io/*`. */
  allow?: readonly string[];
  /** Max labels copied per pod (default 8, at most 64). */
  maxKeys?: number;
  /** Max characters of a value (default 63 — the Kubernetes label value limit; at most 256). */
  maxValueLength?: number;
}

export const LABEL_DEFAULTS = { maxKeys: 8, maxValueLength: 63 } as const;
export const LABEL_CEILINGS = { allow: 64, maxKeys: 64, maxValueLength: 256 } as const;

/** Kubernetes label key: optional DNS-subdomain prefix + '/' + name of [A-Za-z0-9._-]. */
const KEY_RE = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export class LabelPolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabelPolicyError';
  }
}

export interface LabelSelection {
  readonly labels: Record<string, string>;
  /** Allowed labels left out because the pod had more than maxKeys of them. */
  readonly droppedKeys: number;
  /** Values cut to maxValueLength. */
  readonly truncatedValues: number;
}

export interface LabelPolicy {
  readonly allow: readonly string[];
  readonly maxKeys: number;
  readonly maxValueLength: number;
  select(labels: Readonly<Record<string, string>>): LabelSelection;
}

function intIn(name: string, v: number | undefined, def: number, max: number): number {
  if (v === undefined) return def;
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new LabelPolicyError(`pods.labels.${name} must be an integer from 0 to ${max}, got ${String(v)}`);
  }
  return v;
}

/** Validates the options; throws LabelPolicyError naming the bad entry. */
export function compileLabelPolicy(opts: LabelPolicyOptions = {}): LabelPolicy {
  const allow = [...(opts.allow ?? [])];
  if (allow.length > LABEL_CEILINGS.allow) {
    throw new LabelPolicyError(
      `pods.labels.allow has ${allow.length} entries, at most ${LABEL_CEILINGS.allow}`,
    );
  }
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const a of allow) {
    if (typeof a !== 'string' || a.length === 0)
      throw new LabelPolicyError('pods.labels.allow: empty label key');
    if (a.endsWith('*')) {
      const p = a.slice(0, -1);
      if (p.includes('*'))
        throw new LabelPolicyError(`pods.labels.allow: "${a}": only a trailing * is supported`);
      prefixes.push(p);
    } else {
      if (a.length > 316 || !KEY_RE.test(a)) {
        throw new LabelPolicyError(`pods.labels.allow: "${a}" is not a valid Kubernetes label key`);
      }
      exact.add(a);
    }
  }
  const maxKeys = intIn('maxKeys', opts.maxKeys, LABEL_DEFAULTS.maxKeys, LABEL_CEILINGS.maxKeys);
  const maxValueLength = intIn(
    'maxValueLength',
    opts.maxValueLength,
    LABEL_DEFAULTS.maxValueLength,
    LABEL_CEILINGS.maxValueLength,
  );
  const allowed = (k: string): boolean => exact.has(k) || prefixes.some((p) => k.startsWith(p));
  return {
    allow,
    maxKeys,
    maxValueLength,
    select(labels) {
      const out: Record<string, string> = {};
      if (allow.length === 0) return { labels: out, droppedKeys: 0, truncatedValues: 0 };
      const keys = Object.keys(labels).filter(allowed).sort();
      let truncatedValues = 0;
      for (const k of keys.slice(0, maxKeys)) {
        let v = labels[k] ?? '';
        if (v.length > maxValueLength) {
          v = v.slice(0, maxValueLength);
          truncatedValues++;
        }
        out[k] = v;
      }
      return { labels: out, droppedKeys: Math.max(0, keys.length - maxKeys), truncatedValues };
    },
  };
}

/** Attributes for a pod's copied labels: `k8s.pod.label.<key>` (OTel semantic convention). */
export function podLabelAttributes(pod: PodIdentity): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(pod.labels)) out[`k8s.pod.label.${k}`] = v;
  return out;
}
