// The grouping of a collection's points by entity for the direct OTLP metrics encoder (metrics.ts byEntity):
// a stable counting sort of the point indices by entity (the agent's first, then in order of first
// appearance), metrics and points in collection order within each, with each point's bucket and entry
// stored in output order (the writing loop reads them in sequence). It depends only on the series set
// (which entity each point belongs to, how many points each metric has): the last grouping is kept per
// EntityResources (3 arrays of 4 bytes per point and the collection's `entityOf`, ~2.7 MB at 1,000 netns;
// a grouping made anew writes over them unless an export still reads them, so a changed series set makes
// no new arrays) and reused when the next collection's structure matches it, checked without reading a
// series (the store collection's `entityOf` compared as bytes, its entity objects by identity, the other
// points' buckets).
// A running agent changes its series set whenever an event-driven series appears (a drop reason or a
// reset first seen in a netns): seen at 100 netns on a busy machine, one collection in five was reused;
// the grouping made anew is itself cheaper than the one in the writing generator it replaced
// (benchmarks/otel/encode-scale.ts; figures in the commit messages).
import type { Attributes } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { EntityResources } from '../entity-resources.ts';
import type { StoreCollection } from '../metric-data.ts';
import { ATTR_PODNET_ENTITY_KIND } from '../semconv.ts';
import { type Entry, partsOf, pointAt } from './metric-writer.ts';

/** Points in output order: `order[o]` is the collection index of the o-th point written. */
export interface Grouping {
  readonly order: Int32Array;
  /** The bucket (index into `resources`) and entry of `order[o]`, by output position `o`. */
  readonly bucketAt: Int32Array;
  readonly entryAt: Int32Array;
  /** The Resource of each bucket: the collection's (the agent's) first, then one per entity. */
  readonly resources: Resource[];
  /** Point attributes without the entity keys, of points that are neither store series nor store points. */
  readonly split: Map<number, Attributes>;
  /** Its reader is done with it: the arrays may be written over by the next grouping made. */
  release(): void;
}

/** What a grouping was made from, to tell whether the next collection's is the same. */
interface Kept {
  readonly grouping: Grouping;
  /** Groupings handed out over its arrays and not released yet (arrays in use are not written over). */
  readonly users: { n: number };
  /** Per entry: its point count, and whether it was read from a store collection's series (1) or not (0). */
  readonly counts: Int32Array;
  readonly fromStore: Uint8Array;
  /** The one store collection's entity index of each series, and its entity objects. */
  readonly entityOf: Int32Array | undefined;
  readonly entities: readonly Attributes[];
  /** The entity of each bucket (undefined: the agent's) and the bucket of each entity part seen. */
  readonly bucketEntity: (Attributes | undefined)[];
  readonly byPart: Map<Attributes, number>;
  readonly byEntity: Map<Attributes, number>;
  /** The entry and bucket of each point not placed by `entityOf`, by collection index. */
  readonly other: Map<number, readonly [number, number]>;
}

const kept = new WeakMap<EntityResources, Kept>();
/** Groupings made and reused so far (read by test/otel/protobuf-metrics-regroup.test.ts). */
export const groupings = { made: 0, reused: 0 };

/** A grouping over kept arrays, counted as in use until released. */
function handOut(g: Omit<Grouping, 'release'>, users: { n: number }): Grouping {
  users.n++;
  let released = false;
  return {
    ...g,
    release: () => {
      if (!released) users.n--;
      released = true;
    },
  };
}

/** The store collection whose series all the store entries are read from; undefined: none or several. */
function storeCollection(entries: readonly Entry[]): StoreCollection | undefined {
  let c: StoreCollection | undefined;
  for (const e of entries) {
    const st = e.store;
    if (st === undefined || st.points !== undefined) continue;
    if (c === undefined) c = st.collection;
    else if (c !== st.collection) return undefined;
  }
  return c;
}

function sameInts(a: Int32Array, b: Int32Array): boolean {
  return (
    a.length === b.length &&
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    )
  );
}

/** The last grouping, when `entries` have the structure it was made from (see the file comment). */
function reuse(
  rm: { resource: Resource },
  entities: EntityResources,
  entries: readonly Entry[],
): Grouping | undefined {
  const k = kept.get(entities);
  if (k === undefined || k.counts.length !== entries.length) return undefined;
  const c = storeCollection(entries);
  for (let m = 0; m < entries.length; m++) {
    const e = entries[m]!;
    const fromStore = e.store !== undefined && e.store.points === undefined ? 1 : 0;
    if (k.counts[m] !== e.count || k.fromStore[m] !== fromStore) return undefined;
  }
  if (c !== undefined) {
    if (k.entityOf === undefined || !sameInts(c.entityOf, k.entityOf)) return undefined;
    if (c.entities.length !== k.entities.length) return undefined;
    for (let i = 0; i < c.entities.length; i++) if (c.entities[i] !== k.entities[i]) return undefined;
  } else if (k.entityOf !== undefined) return undefined;
  // The points not placed by `entityOf` (few: the extra sources', frozen metrics', series without parts):
  // each must fall in the same bucket as before, found without making one.
  const split = new Map<number, Attributes>();
  for (const [j, [m, before]] of k.other) {
    const e = entries[m]!;
    const i = j - e.first;
    const given = partsOf(e, i);
    let b: number | undefined;
    if (given !== undefined) b = k.byPart.get(given[1]);
    else {
      const [point, entity] = entities.split(pointAt(e, i).attributes);
      split.set(j, point);
      b = entity === undefined ? 0 : k.byEntity.get(entity);
    }
    if (b !== before) return undefined;
  }
  const g = k.grouping;
  const resources: Resource[] = [rm.resource];
  for (let b = 1; b < k.bucketEntity.length; b++) resources.push(entities.resourceFor(k.bucketEntity[b]!));
  return handOut({ order: g.order, bucketAt: g.bucketAt, entryAt: g.entryAt, resources, split }, k.users);
}

/** The grouping of `entries` (`total` points) by entity: the last one if it still holds, else made anew. */
export function groupByEntity(
  rm: { resource: Resource },
  entities: EntityResources,
  entries: readonly Entry[],
  total: number,
): Grouping {
  const again = reuse(rm, entities, entries);
  if (again !== undefined) {
    groupings.reused++;
    return again;
  }
  groupings.made++;
  // The bucket of each point in collection order, while the grouping is made: not kept between groupings
  // (0.7 MB at 1,000 netns, where the grouping is remade only when the series set changes).
  const bucketOf = new Int32Array(total);
  const split = new Map<number, Attributes>();
  const other = new Map<number, readonly [number, number]>();
  const resources: Resource[] = [rm.resource];
  const bucketEntity: (Attributes | undefined)[] = [undefined];
  const byEntity = new Map<Attributes, number>();
  // The bucket of each entity part seen (the agent's for a part without entity keys: node-scoped series).
  const byPart = new Map<Attributes, number>();
  const bucket = (entity: Attributes | undefined): number => {
    if (entity === undefined) return 0;
    let b = byEntity.get(entity);
    if (b === undefined) {
      b = resources.length;
      resources.push(entities.resourceFor(entity));
      bucketEntity.push(entity);
      byEntity.set(entity, b);
    }
    return b;
  };
  // A store metric read from its series: its entity per point from the collection (metric-data.ts
  // StoreCollection.entityOf), the bucket once per entity of the collection, no series read here.
  const byCollection = new Map<StoreCollection, Int32Array>();
  let k = 0;
  for (let m = 0; m < entries.length; m++) {
    const e = entries[m]!;
    const st = e.store;
    const c = st !== undefined && st.points === undefined ? st.collection : undefined;
    let known: Int32Array | undefined;
    if (c !== undefined) {
      known = byCollection.get(c);
      if (known === undefined) {
        known = new Int32Array(c.entities.length).fill(-1);
        byCollection.set(c, known);
      }
    }
    for (let i = 0; i < e.count; i++, k++) {
      const ei = c !== undefined ? c.entityOf[st!.from + i]! : -1;
      if (ei >= 0) {
        let b = known![ei]!;
        if (b < 0) {
          const entity = c!.entities[ei]!;
          b = byPart.get(entity) ?? -1;
          if (b < 0) {
            b = bucket(ATTR_PODNET_ENTITY_KIND in entity ? entity : undefined);
            byPart.set(entity, b);
          }
          known![ei] = b;
        }
        bucketOf[k] = b;
        continue;
      }
      const given = partsOf(e, i);
      let b: number;
      if (given !== undefined) {
        b = byPart.get(given[1]) ?? -1;
        if (b < 0) {
          b = bucket(ATTR_PODNET_ENTITY_KIND in given[1] ? given[1] : undefined);
          byPart.set(given[1], b);
        }
      } else {
        const [point, entity] = entities.split(pointAt(e, i).attributes);
        split.set(k, point);
        b = bucket(entity);
      }
      bucketOf[k] = b;
      other.set(k, [m, b]);
    }
  }
  const start = new Int32Array(resources.length + 1);
  for (let j = 0; j < total; j++) start[bucketOf[j]! + 1]!++;
  for (let b = 0; b < resources.length; b++) start[b + 1]! += start[b]!;
  // The last grouping's arrays are written over when no reader holds them and they are long enough (their
  // length is a capacity: readers stop at `total`), so that a collection whose series set changed makes no
  // new ~2 MB of arrays; with 1/16 to spare, as a series set grows by a few series at a time.
  const prev = kept.get(entities);
  const over = prev !== undefined && prev.users.n === 0 && prev.grouping.order.length >= total;
  const size = total + (total >> 4);
  const order = over ? prev.grouping.order : new Int32Array(size);
  const bucketAt = over ? prev.grouping.bucketAt : new Int32Array(size);
  const entryAt = over ? prev.grouping.entryAt : new Int32Array(size);
  for (let m = 0; m < entries.length; m++) {
    const e = entries[m]!;
    for (let j = e.first; j < e.first + e.count; j++) {
      const b = bucketOf[j]!;
      const o = start[b]!++;
      order[o] = j;
      bucketAt[o] = b;
      entryAt[o] = m;
    }
  }
  const users = { n: 0 };
  const grouping = handOut({ order, bucketAt, entryAt, resources, split }, users);
  const c = storeCollection(entries);
  const counts = new Int32Array(entries.length);
  const fromStore = new Uint8Array(entries.length);
  for (let m = 0; m < entries.length; m++) {
    const e = entries[m]!;
    counts[m] = e.count;
    fromStore[m] = e.store !== undefined && e.store.points === undefined ? 1 : 0;
  }
  // Kept only when reuse can check it: one store collection at most (several: made anew each time).
  if (c !== undefined || byCollection.size === 0)
    kept.set(entities, {
      grouping,
      users,
      counts,
      fromStore,
      entityOf: c?.entityOf,
      entities: c !== undefined ? [...c.entities] : [],
      bucketEntity,
      byPart,
      byEntity,
      other,
    });
  else kept.delete(entities);
  return grouping;
}
