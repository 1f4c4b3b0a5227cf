// Attribute objects made of two parts: a series' point attributes followed by its entity keys (the
// metric store builds them), so a consumer that renders attributes as text (the /metrics serializer,
// prometheus-text.ts) can render each part once and join them. Kept apart from both so the store does not
// depend on the serializer.
import type { Attributes } from '@opentelemetry/api';
import type { AttributeValue } from '../probe/types.ts';

const composites = new WeakMap<Attributes, readonly [Attributes, Attributes]>();

/** A series' attributes as [point attributes, entity keys] (both shared, frozen objects). */
export type AttributeParts = readonly [
  point: Record<string, AttributeValue>,
  entity: Record<string, AttributeValue>,
];

/**
 * Where the metric store puts a data point's AttributeParts (entity-resources.ts reads them): on the point
 * itself, so the OTLP exporter splits 170,000 points without a lookup per point (a WeakMap lookup per
 * point cost more than serializing them).
 */
export const ATTRIBUTE_PARTS: unique symbol = Symbol('podnet.attributeParts');

const INTEGER_LIKE = /^(0|[1-9]\d*)$/;

/**
 * Declare `merged` (= `{ ...point, ...entity }`) as made of two parts; ignored (rendered key by key)
 * when the parts share a key or a key is integer-like (then `for...in` would not walk the point keys
 * before the entity keys).
 */
export function registerComposite(merged: Attributes, point: Attributes, entity: Attributes): void {
  for (const k in point) if (k in entity || INTEGER_LIKE.test(k)) return;
  for (const k in entity) if (INTEGER_LIKE.test(k)) return;
  composites.set(merged, [point, entity]);
}

/** The two parts of `attrs`, when it was declared as made of them. */
export function compositeParts(attrs: Attributes): readonly [Attributes, Attributes] | undefined {
  return composites.get(attrs);
}
