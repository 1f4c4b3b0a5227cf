// Kernel stacks are on by default for the drop, reset, retransmit and overflow events (their probes'
// `stacks` arg) and for event records (`kernel_stacks`), off by default for the other eBPF probes; each
// probe's switch stays.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { probeSpecs } from '../../probes/registry.ts';
import { sockoverflowProbe } from '../../probes/sockoverflow/sockoverflow.ts';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { tcpresetProbe } from '../../probes/tcpreset/tcpreset.ts';
import { tcpretransProbe } from '../../probes/tcpretrans/tcpretrans.ts';
import { resolveConfigText } from '../../receiver/config/load.ts';

const ON = [packetlossProbe, tcpresetProbe, tcpretransProbe, sockoverflowProbe];

test('stacks default on for packetloss, tcpreset, tcpretrans, sockoverflow; off elsewhere; switchable', () => {
  for (const p of ON) {
    assert.equal((p.args.parse({}) as { stacks: boolean }).stacks, true, p.name);
    assert.equal((p.args.parse({ stacks: false }) as { stacks: boolean }).stacks, false, p.name);
  }
  const others = probeSpecs.filter((s) => s.source === 'ebpf' && !ON.some((p) => p.name === s.name));
  for (const s of others) {
    const a = s.args.safeParse({});
    if (a.success && typeof (a.data as { stacks?: unknown }).stacks === 'boolean')
      assert.equal((a.data as { stacks: boolean }).stacks, false, s.name);
  }
  const c = resolveConfigText('', 'x', { specs: [syntheticSpec], env: {} });
  assert.equal(c.kernelStacks, true);
  assert.equal(
    resolveConfigText('kernel_stacks: false', 'x', { specs: [syntheticSpec], env: {} }).kernelStacks,
    false,
  );
});
