// Per-entity totals of the store's series, for the live view (MetricStore.entityTotals). Its own file so
// metric-store.ts keeps only the collection logic.
import type { AttributeValue } from '../probe/types.ts';
import { isEntityKey } from './entity-resources.ts';
import { ATTR_NETWORK_IO_DIRECTION, ATTR_PODNET_ENTITY_KIND, ATTR_PODNET_NETNS_INODE } from './semconv.ts';
import { isHistogram, type MetricSeries } from './series-state.ts';

export type EntityTotals = Map<
  string,
  { attributes: Record<string, AttributeValue>; totals: Record<string, number> }
>;

/**
 * Per-entity totals of the latest collection, for the live view: key = metric name, plus
 * `/<direction>` when the series carries `network.io.direction`; histograms contribute their count.
 */
export function entityTotals(series: readonly MetricSeries[]): EntityTotals {
  const out: EntityTotals = new Map();
  for (const s of series) {
    if ((s.def.scope ?? 'entity') !== 'entity') continue;
    // The store's series carry their entity keys as a part of their own (attribute-parts.ts).
    const entity = s.parts?.[1] ?? entityKeys(s.attributes);
    const kind = String(entity[ATTR_PODNET_ENTITY_KIND] ?? '');
    const inode = String(entity[ATTR_PODNET_NETNS_INODE] ?? '0');
    const id = `${kind}:${inode}`;
    let e = out.get(id);
    if (!e) {
      e = { attributes: { ...entity }, totals: {} };
      out.set(id, e);
    }
    const dir = (s.parts?.[0] ?? s.attributes)[ATTR_NETWORK_IO_DIRECTION];
    const key = dir === undefined ? s.def.name : `${s.def.name}/${String(dir)}`;
    const v = isHistogram(s.value) ? s.value.count : s.value;
    e.totals[key] = (e.totals[key] ?? 0) + v;
  }
  return out;
}

function entityKeys(attrs: Record<string, AttributeValue>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const k in attrs) if (isEntityKey(k)) out[k] = attrs[k]!;
  return out;
}
