// The metric store finds a netns' series by slot (receiver/otel/point-buffer.ts SlotTable) and falls back
// to maps by key only when it must (receiver/otel/series-writer.ts): a slot far past the netns' own series,
// a slot table replaced once full, key objects made again. In each case a series must stay the same series:
// its start time kept while the counter grows, reset when it goes down, a duplicate within one collection
// ignored — the same answers as a store that only looks series up by key would give.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { MetricStore } from '../../receiver/otel/metric-store.ts';
import { SeriesKey } from '../../receiver/probe/sink.ts';
import type { MetricDef } from '../../receiver/probe/types.ts';

const counter: MetricDef = {
  name: 't.count',
  kind: 'counter',
  unit: '1',
  description: 'c',
  attributes: ['k'],
  enabled: true,
};

function newStore(): MetricStore {
  const s = new MetricStore({ entities: new StaticEntitySource([]), cardinalityLimit: 1_000_000 });
  s.setDefinitions([{ def: counter, probe: 'p', enabled: true }]);
  return s;
}

/** Series of netns `inode` by their `k` attribute: [value, start ms, time ms]. */
function seriesOf(store: MetricStore, inode: number): Map<string, [number, number, number]> {
  const ms = (t: readonly [number, number]) => t[0] * 1000 + t[1] / 1e6;
  const out = new Map<string, [number, number, number]>();
  for (const s of store.series())
    if (s.attributes['podnet.netns.inode'] === inode)
      out.set(String(s.attributes['k']), [s.value as number, ms(s.startTime), ms(s.time)]);
  return out;
}

test('a netns with only keys far down the slot table: start kept, reset on a decrease, duplicates ignored', () => {
  const store = newStore();
  const keys = Array.from({ length: 600 }, (_, i) => new SeriesKey('t.count', { k: `k${i}` }));
  // netns 100 reports every key; netns 200 only the last two (slots 598 and 599, past its own 2 series).
  const collect = (t: number, v: (i: number) => number) => {
    const sink = store.sink('p');
    for (let i = 0; i < keys.length; i++) sink.value(keys[i]!, 100, v(i));
    sink.value(keys[598]!, 200, v(598));
    sink.value(keys[599]!, 200, v(599));
    sink.value(keys[599]!, 200, -1); // a duplicate: the first value counts
    // The same series as a point object (another path to the same slot): a duplicate too.
    sink.point({ metric: 't.count', netns: 200, attributes: { k: 'k598' }, value: -1 });
    store.update('p', sink, t);
  };
  collect(1000, (i) => i);
  collect(2000, (i) => i + 10);
  let b = seriesOf(store, 200);
  assert.deepEqual(
    b,
    new Map([
      ['k598', [608, 1000, 2000]],
      ['k599', [609, 1000, 2000]],
    ]),
  );
  // k599 goes down (a reset): its start moves; k598 keeps growing.
  collect(3000, (i) => (i === 599 ? 1 : i + 20));
  b = seriesOf(store, 200);
  assert.deepEqual(b.get('k598'), [618, 1000, 3000]);
  assert.deepEqual(b.get('k599'), [1, 3000, 3000]);
  assert.equal(seriesOf(store, 100).size, 600);
  assert.deepEqual(seriesOf(store, 100).get('k0'), [20, 1000, 3000]);
  // A series not reported is forgotten, and starts anew when it comes back.
  const sink = store.sink('p');
  sink.value(keys[599]!, 200, 5);
  store.update('p', sink, 4000);
  assert.deepEqual(seriesOf(store, 200), new Map([['k599', [5, 3000, 4000]]]));
  const again = store.sink('p');
  again.value(keys[598]!, 200, 700);
  again.value(keys[599]!, 200, 6);
  store.update('p', again, 5000);
  assert.deepEqual(
    seriesOf(store, 200),
    new Map([
      ['k598', [700, 5000, 5000]],
      ['k599', [6, 3000, 5000]],
    ]),
  );
});

test('key objects made again each collection find the same series (one slot per metric and attributes)', () => {
  const store = newStore();
  for (let round = 0; round < 4; round++) {
    const sink = store.sink('p');
    for (const k of ['a', 'b']) sink.value(new SeriesKey('t.count', { k }), 100, round * 2);
    // and as point objects, for a third series
    sink.point({ metric: 't.count', netns: 100, attributes: { k: 'c' }, value: round });
    store.update('p', sink, 1000 * (round + 1));
  }
  assert.deepEqual(
    seriesOf(store, 100),
    new Map([
      ['a', [6, 1000, 4000]],
      ['b', [6, 1000, 4000]],
      ['c', [3, 1000, 4000]],
    ]),
  );
});

test('a slot table replaced once full: the series of every netns keep their start times', () => {
  const store = newStore();
  const steady = new SeriesKey('t.count', { k: 'steady' });
  // Attribute sets that come and go (a new one per point) fill the probe's table (65,536 slots) during the
  // third collection; the steady series of netns 200 (by key) and 300 (a point object) must stay the same
  // series throughout, and netns 100's series come and go.
  let next = 0;
  for (let round = 0; round < 5; round++) {
    const sink = store.sink('p');
    sink.value(steady, 200, round);
    for (let i = 0; i < 30_000; i++)
      sink.point({ metric: 't.count', netns: 100, attributes: { k: `x${next++}` }, value: 1 });
    sink.point({ metric: 't.count', netns: 300, attributes: { k: 'steady' }, value: round });
    store.update('p', sink, 1000 * (round + 1));
    assert.equal(seriesOf(store, 100).size, 30_000);
  }
  assert.deepEqual(seriesOf(store, 200).get('steady'), [4, 1000, 5000]);
  assert.deepEqual(seriesOf(store, 300).get('steady'), [4, 1000, 5000]);
});
