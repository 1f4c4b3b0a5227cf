// The attribute part of a series key (sorted attributes as one string), cached for the frozen attribute
// objects probes share. Used by the store (series-state.ts, metric-store.ts), the column path
// (point-buffer.ts) and delta.ts; its own file so that point-buffer.ts and series-state.ts do not import
// each other.
import type { Attributes as ProbeAttributes } from '../probe/types.ts';

/** Attribute part of a series key: the sorted attributes. */
function attributesKey(attrs: ProbeAttributes): string {
  const keys = Object.keys(attrs);
  if (keys.length > 1) keys.sort();
  let k = '';
  for (const key of keys) {
    const v = attrs[key];
    k += `${key}\u0001${typeof v === 'string' ? v : JSON.stringify(v)}\u0000`;
  }
  return k;
}

/** Keys of frozen attribute objects, which probes share between points and collections. */
const frozenKeys = new WeakMap<ProbeAttributes, string>();

export function cachedAttributesKey(attrs: ProbeAttributes): string {
  if (!Object.isFrozen(attrs)) return attributesKey(attrs);
  let k = frozenKeys.get(attrs);
  if (k === undefined) {
    k = attributesKey(attrs);
    frozenKeys.set(attrs, k);
  }
  return k;
}
