// docs/kernels.md's per-probe minimum-kernel table equals what the code derives from the hooks
// (ProbeSpec.kernel(), receiver/kit/ebpf/kernels.ts), for every registered probe.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { probeSpecs } from '../../probes/registry.ts';

test('docs/kernels.md minimum kernels == ProbeSpec.kernel() for every eBPF probe', () => {
  const md = readFileSync(new URL('../../docs/kernels.md', import.meta.url), 'utf8');
  const rows = new Map<string, { min: string; all: string }>();
  for (const m of md.matchAll(/^\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|([^|]+)\|([^|]+)\|/gm))
    rows.set(m[1]!, { min: m[3]!.trim(), all: m[4]!.trim() });
  const ebpf = probeSpecs.filter((s) => s.kernel);
  assert.ok(ebpf.length >= 9);
  for (const s of ebpf) {
    const k = s.kernel!();
    assert.deepEqual(rows.get(s.name), { min: k.min, all: k.all }, s.name);
  }
  for (const s of probeSpecs.filter((x) => !x.kernel))
    assert.ok(!rows.has(s.name) || rows.get(s.name)!.min === 'any');
});
