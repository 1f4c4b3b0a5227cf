// A series' attributes as two parts: its point attributes, then its entity keys (both frozen objects the
// metric store shares between series). The store puts them on every data point it hands out
// (`ATTRIBUTE_PARTS`), so the OTLP encoder finds a point's entity (its Resource) by identity and the /metrics
// serializer (prometheus-text.ts) renders each part's label text once per scrape, neither looking at keys.
// Kept apart from both so the store does not depend on either.
import type { AttributeValue } from '../probe/types.ts';

/**
 * [point attributes, entity keys, joinable]: joinable when the series' attributes `{ ...point, ...entity }`
 * list exactly the point keys then the entity keys (no key in both, none integer-like: `for...in` walks
 * integer-like keys first), so their label text is the two parts' texts joined.
 */
export type AttributeParts = readonly [
  point: Record<string, AttributeValue>,
  entity: Record<string, AttributeValue>,
  joinable: boolean,
];

/**
 * Where a data point carries its AttributeParts: on the point itself (a WeakMap lookup per point cost
 * more than serializing the 170,000 points of a 1,000-pod export).
 */
export const ATTRIBUTE_PARTS: unique symbol = Symbol('podnet.attributeParts');

const INTEGER_LIKE = /^(0|[1-9]\d*)$/;

export function attributeParts(
  point: Record<string, AttributeValue>,
  entity: Record<string, AttributeValue>,
): AttributeParts {
  return [point, entity, joinable(point, entity)];
}

function joinable(point: Record<string, AttributeValue>, entity: Record<string, AttributeValue>): boolean {
  for (const k in point) if (k in entity || INTEGER_LIKE.test(k)) return false;
  for (const k in entity) if (INTEGER_LIKE.test(k)) return false;
  return true;
}
