// A netns deleted before or during a collection: no points for it (never a partial set), no crash, the
// other netns are unaffected and the failure shows in the probe status.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { conntrackProbe } from '../../probes/conntrack/conntrack.ts';
import { qdiscProbe } from '../../probes/qdisc/qdisc.ts';
import { socketsProbe } from '../../probes/sockets/sockets.ts';
import type { EntityStatusDetails } from '../../receiver/kit/status.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricPoint, Probe, ProbeContext, ProbeSpec } from '../../receiver/probe/types.ts';
import { sh, TestNetwork } from './env.ts';

const net = new TestNetwork('d');
const N = 12;
let names: string[] = [];
const ctx = { log: childLogger('test'), entities: undefined as never, emit() {} } as unknown as ProbeContext;
// biome-ignore lint/suspicious/noExplicitAny: probes of different argument types
const specs: ProbeSpec<any>[] = [socketsProbe, conntrackProbe, qdiscProbe];
const probes: Probe[] = [];

before(async () => {
  for (let i = 0; i < N; i++) {
    const ns = net.addNetns(`n${i}`);
    sh('ip', ['-n', ns, 'link', 'add', 'pnle0', 'type', 'veth', 'peer', 'name', 'pnle1']);
    // Up, so each netns has qdiscs to report (a down veth has none).
    sh('ip', ['-n', ns, 'link', 'set', 'pnle0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'pnle1', 'up']);
    names.push(ns);
  }
  for (const s of specs) probes.push(await s.create(ctx, s.args.parse({})));
});
after(async () => {
  for (const p of probes) await p.close();
  net.cleanup();
});

function perNetns(points: readonly MetricPoint[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const p of points) m.set(p.netns!, (m.get(p.netns!) ?? 0) + 1);
  return m;
}

test('deleted netns: gone before the collection → no points for it, others complete', async () => {
  const entities = names.slice(0, 6).map((n) => net.entity(n));
  sh('ip', ['netns', 'del', names[2]!]);
  for (const p of probes) {
    const counts = perNetns(await p.collect(entities));
    assert.equal(counts.has(entities[2]!.netnsInode), false);
    assert.equal(counts.size, 5);
    assert.equal(new Set(counts.values()).size, 1, 'every live netns has the same full set of points');
    const st = p.status();
    assert.equal(st.state, 'running');
    // The per-entity status every kit reports (receiver/kit/status.ts).
    const d = st.details as unknown as EntityStatusDetails;
    assert.equal(d.failedEntities, 1);
    assert.equal(d.entities, 6);
    assert.deepEqual(
      d.failures.map((f) => [f.entity, f.netns]),
      [[entities[2]!.displayName, entities[2]!.netnsInode]],
    );
    assert.equal(typeof d.failures[0]!.error, 'string');
    assert.ok(d.failures[0]!.error.length > 0);
    assert.equal(typeof d.lastDurationMs, 'number');
  }
});

test('deleted netns: deleted at the moment the probe opens it (mid-collection) → no points, no crash', async () => {
  for (const [k, p] of probes.entries()) {
    const victim = names[6 + k]!;
    const real = net.entity(victim);
    // The netns disappears exactly when the collection loop reaches it.
    const dying: Entity = {
      ...real,
      get netnsPath() {
        try {
          sh('ip', ['netns', 'del', victim]);
        } catch {}
        return real.netnsPath;
      },
    };
    const others = [names[9]!, names[10]!, names[11]!].map((n) => net.entity(n));
    const entities = [others[0]!, dying, others[1]!, others[2]!];
    const counts = perNetns(await p.collect(entities));
    assert.equal(counts.has(real.netnsInode), false);
    assert.deepEqual(
      others.map((e) => counts.has(e.netnsInode)),
      [true, true, true],
    );
    assert.equal((p.status().details as { failedEntities: number }).failedEntities, 1);
  }
});

test('deleted netns: every netns gone → probe degraded with a reason', async () => {
  const gone = [net.entity(names[0]!)];
  sh('ip', ['netns', 'del', names[0]!]);
  for (const p of probes) {
    assert.deepEqual(await p.collect(gone), []);
    const st = p.status();
    assert.equal(st.state, 'degraded');
    assert.match(st.reason ?? '', /netns/);
  }
  names = names.filter((n) => n !== names[0]);
});
