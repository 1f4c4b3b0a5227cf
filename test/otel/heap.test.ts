// V8 young-generation setting (receiver/otel/heap.ts), applied by Agent.start (never as a side effect of
// importing a module): in a fresh node process that then keeps bursts of objects alive (as a collection at
// 1,000 pods does), the new space stays at its initial size; without the setting (PODNET_V8_FLAGS empty, or
// the metric store imported without applyHeapSettings being called) the same work grows it to the
// machine-sized maximum; an explicit flag on node's command line is left alone.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyHeapSettings, DEFAULT_V8_FLAGS } from '../../receiver/otel/heap.ts';

const STORE = fileURLToPath(new URL('../../receiver/otel/metric-store.ts', import.meta.url));
const HEAP = fileURLToPath(new URL('../../receiver/otel/heap.ts', import.meta.url));

// The flags are set before the store's modules load (a dynamic import after the call): loading the OTel
// SDK can itself grow the new space before a later call could stop it (seen once: 35 MB with the flag).
const CHILD = `
import { getHeapSpaceStatistics } from 'node:v8';
const { applyHeapSettings } = await import(${JSON.stringify(HEAP)});
if (process.env.APPLY === '1') applyHeapSettings();
const { MetricStore } = await import(${JSON.stringify(STORE)});
new MetricStore({ entities: { entities: () => [], byNetns: () => undefined, pods: () => [], onChange: () => () => {} } });
const keep = [];
const sizes = [];
for (let r = 0; r < 150; r++) {
  const burst = [];
  for (let i = 0; i < 100_000; i++) burst.push({ i, s: 'series-' + i });
  keep.push(burst);
  if (keep.length > 4) keep.shift();
  sizes.push(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 2 ** 20);
}
sizes.sort((a, b) => a - b);
process.stdout.write(JSON.stringify({ newSpaceMb: sizes[sizes.length >> 1], kept: keep.length }));
`;

// The median over the 150 bursts, not the size after the last: with the growth factor at 1 the new space
// still takes extra pages within a burst (up to ~50 MB seen, one burst's ~9.5 MB at a time) and gives them
// back at the next scavenge, so the size at one instant swings between 2 and ~50 MB (the last sample was
// over 8 MB in 3 of 12 runs, CI 2026-12-07 10:58, load ~6); its median is 2 MB with the setting, 128 MB
// without it and 16 MB with explicit 8 MB semi-spaces (6 runs each, the same machine and load).
function newSpaceMb(env: Record<string, string | undefined>, nodeArgs: string[] = []): number {
  const out = execFileSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', CHILD], {
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return (JSON.parse(out) as { newSpaceMb: number }).newSpaceMb;
}

test('applyHeapSettings keeps the young generation small; without the setting it grows', () => {
  const withDefault = newSpaceMb({ PODNET_V8_FLAGS: undefined, APPLY: '1' });
  const without = newSpaceMb({ PODNET_V8_FLAGS: '', APPLY: '1' });
  // Importing the store alone sets nothing (the flags are Agent.start's to set).
  const importOnly = newSpaceMb({ PODNET_V8_FLAGS: undefined, APPLY: '0' });
  // Set once the modules are loaded (module loading may already have grown it a step or two).
  assert.ok(withDefault <= 8, `new space ${withDefault} MB with ${DEFAULT_V8_FLAGS}`);
  assert.ok(without >= 4 * withDefault, `new space ${without} MB without it (${withDefault} MB with it)`);
  assert.ok(importOnly >= 4 * withDefault, `new space ${importOnly} MB on import alone (${withDefault} MB)`);
  // An explicit young-generation flag wins: 8 MB semi-spaces are used (16 MB of new space), not 1 MB.
  const explicit = newSpaceMb({ PODNET_V8_FLAGS: undefined, APPLY: '1' }, ['--max-semi-space-size=8']);
  assert.ok(explicit > 4 && explicit <= 16, `new space ${explicit} MB with --max-semi-space-size=8`);
});

test('applyHeapSettings: once per process, explicit flags and PODNET_V8_FLAGS respected', () => {
  // This test process has already created stores (or not): the first call decides and later calls repeat it.
  const first = applyHeapSettings({}, []);
  assert.equal(applyHeapSettings({ PODNET_V8_FLAGS: '--semi-space-growth-factor=3' }, []), first);
});
