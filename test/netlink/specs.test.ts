// The netlink probes' declarations against the project's contract (as test/otel/docs.test.ts checks for
// registered probes): unique podnet.* names, units, no entity keys, args defaults parse, and every
// point a probe emits is declared with its attributes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { conntrackProbe } from '../../probes/conntrack/conntrack.ts';
import { qdiscProbe } from '../../probes/qdisc/qdisc.ts';
import { socketsProbe } from '../../probes/sockets/sockets.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { ENTITY_KEYS } from '../../receiver/otel/semconv.ts';
import type { ProbeContext, ProbeSpec } from '../../receiver/probe/types.ts';
import { sh, TestNetwork } from './env.ts';

// biome-ignore lint/suspicious/noExplicitAny: probes of different argument types
const specs: ProbeSpec<any>[] = [socketsProbe, conntrackProbe, qdiscProbe];
const net = new TestNetwork('v');
let ns = '';
before(() => {
  ns = net.addNetns('a');
  sh('ip', ['-n', ns, 'link', 'add', 'pnlv0', 'type', 'veth', 'peer', 'name', 'pnlv1']);
  sh('ip', ['-n', ns, 'link', 'set', 'pnlv0', 'up']);
});
after(() => net.cleanup());

test('specs: names, units, attributes, source, args defaults', () => {
  const seen = new Set<string>();
  for (const s of specs) {
    assert.equal(s.source, 'netlink');
    assert.deepEqual(s.events, []);
    assert.ok(s.args.parse({}), `${s.name} args defaults`);
    for (const m of s.metrics) {
      assert.ok(!seen.has(m.name), `duplicate ${m.name}`);
      seen.add(m.name);
      assert.match(m.name, /^podnet\.[a-z0-9_.]+$/);
      assert.notEqual(m.unit, '');
      for (const a of m.attributes) assert.ok(!ENTITY_KEYS.includes(a), `${m.name} declares entity key ${a}`);
    }
  }
  assert.throws(() => socketsProbe.args.parse({ rttBoundaries: [1, 0.5] }));
  assert.throws(() => socketsProbe.args.parse({ listenFillThreshold: 2 }));
});

test('specs: every emitted point is declared, with declared attributes and the declared value type', async () => {
  const ctx = {
    log: childLogger('test'),
    entities: undefined as never,
    emit() {},
  } as unknown as ProbeContext;
  const e = net.entity(ns);
  for (const s of specs) {
    const probe = await s.create(ctx, s.args.parse(s === conntrackProbe ? { perCpu: true } : {}));
    const points = await probe.collect([e]);
    assert.ok(points.length > 0, s.name);
    const defs = new Map(s.metrics.map((m) => [m.name, m]));
    for (const p of points) {
      const d = defs.get(p.metric);
      assert.ok(d, `${s.name}: ${p.metric} not declared`);
      assert.equal(p.netns, e.netnsInode);
      for (const k of Object.keys(p.attributes ?? {}))
        assert.ok(d.attributes.includes(k), `${p.metric}: ${k}`);
      assert.equal(typeof p.value === 'number', d.kind !== 'histogram', p.metric);
    }
    await probe.close();
    assert.equal(probe.status().state, 'stopped');
  }
});
