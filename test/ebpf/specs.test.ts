// The anomaly probe specs: available on this kernel (hook checks only), names and declarations sound,
// default args valid, and an eBPF probe reports each program's state with a reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cteventsProbe } from '../../probes/ctevents/ctevents.ts';
import { packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { sockoverflowProbe } from '../../probes/sockoverflow/sockoverflow.ts';
import { tcpresetProbe } from '../../probes/tcpreset/tcpreset.ts';
import { tcpretransProbe } from '../../probes/tcpretrans/tcpretrans.ts';
import { SELF_METRIC_DEFS } from '../../receiver/kit/ebpf/runtime.ts';
import type { ProbeSpec } from '../../receiver/probe/types.ts';
import { testContext } from './env.ts';

const specs: ProbeSpec<unknown>[] = [
  packetlossProbe,
  tcpresetProbe,
  tcpretransProbe,
  sockoverflowProbe,
  cteventsProbe,
] as ProbeSpec<unknown>[];

test('every spec is available here and declares unique podnet.* names', async () => {
  const names = new Set<string>();
  for (const s of specs) {
    const av = await s.availability();
    assert.equal(av.available, true, `${s.name}: ${av.reason}`);
    assert.equal(av.reason, undefined, `${s.name}: ${av.reason}`);
    assert.ok(s.args.parse({}), `${s.name}: default args`);
    for (const m of s.metrics) {
      assert.match(m.name, /^podnet\./);
      if (SELF_METRIC_DEFS.includes(m)) continue;
      assert.ok(!names.has(m.name), `${m.name} declared twice`);
      names.add(m.name);
    }
    for (const e of s.events) {
      assert.match(e.name, /^podnet\./);
      assert.ok(e.types.length > 0);
      assert.equal(new Set(e.attributes).size, e.attributes.length, `${e.name}: duplicate attribute`);
    }
  }
  assert.ok(names.has('podnet.kernel.drop.count'));
  assert.ok(names.has('podnet.tcp.reset.count'));
  assert.ok(names.has('podnet.tcp.retransmit.count'));
});

test('bad args are rejected by the schema', () => {
  assert.throws(() => packetlossProbe.args.parse({ ringBytes: 5000 }));
  assert.throws(() => packetlossProbe.args.parse({ rateLimit: -1 }));
  assert.throws(() => packetlossProbe.args.parse({ excludeLocations: Array(17).fill('x') }));
  assert.throws(() => tcpresetProbe.args.parse({ attach: 'kprobe' }));
});

test('status lists every program with its state; the variant for another arity is skipped with a reason', async () => {
  const p = await tcpresetProbe.create(testContext(), tcpresetProbe.args.parse({}));
  try {
    const st = p.status();
    assert.equal(st.state, 'running');
    const progs = st.details?.['programs'] as { name: string; state: string; reason?: string }[];
    const by = new Map(progs.map((x) => [x.name, x]));
    assert.equal(by.get('rst_send3')?.state, 'attached');
    assert.equal(by.get('rst_receive')?.state, 'attached');
    assert.equal(by.get('rst_send2')?.state, 'skipped');
    assert.match(by.get('rst_send2')?.reason ?? '', /2 args; tcp_send_reset has 3/);
    assert.equal(by.get('rst_send3_raw')?.state, 'disabled');
  } finally {
    await p.close();
  }
  assert.equal(p.status().state, 'stopped');
  await p.close(); // idempotent
});
