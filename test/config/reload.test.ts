// Hot reload through a real file: a good change takes effect within 2 s (probe starts, args change via
// reconfigure, probe stops); a bad file is rejected and the running config keeps running.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { Agent } from '../../receiver/agent/agent.ts';

const dir = mkdtempSync(join(tmpdir(), `pno${process.pid}-reload-`));
const file = join(dir, 'podnet.yaml');
after(() => rmSync(dir, { recursive: true, force: true }));

function yaml(enabled: boolean, gauge: number): string {
  return `
collection_interval: 200ms
server: { address: "127.0.0.1:0" }
probes:
  synthetic:
    enabled: ${enabled}
    args: { gauge_value: ${gauge} }
`;
}

interface Status {
  probes: Array<{ name: string; state: string; reason: string | null }>;
  config: { reloadsApplied: number; reloadsRejected: number; lastReloadError: string | null };
}

async function status(agent: Agent): Promise<Status> {
  return (await (await fetch(`${agent.serverUrl}/status`)).json()) as Status;
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function gaugeValue(agent: Agent): Promise<number | undefined> {
  const text = await (await fetch(`${agent.serverUrl}/metrics`)).text();
  const m = /^podnet_synthetic_queue_length\{[^}]*podnet_entity_kind="host"[^}]*\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Replace the file atomically, as editors and ConfigMap updates do. */
function replaceFile(text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

test('hot reload: good changes apply within 2 s, a bad file keeps the running config', async () => {
  writeFileSync(file, yaml(false, 1));
  const agent = await Agent.start({ configPath: file, specs: [], extraSpecs: [syntheticSpec], env: {} });
  try {
    const synth = async () => (await status(agent)).probes.find((p) => p.name === 'synthetic')!;
    assert.equal((await synth()).state, 'stopped');

    // 1. Enable the probe: running within 2 s.
    let t0 = Date.now();
    replaceFile(yaml(true, 1));
    await until(async () => ((await synth()).state === 'running' ? true : undefined), 5000, 'probe running');
    const startMs = Date.now() - t0;
    assert.ok(startMs < 2000, `probe started after ${startMs} ms`);
    assert.equal(await until(() => gaugeValue(agent), 5000, 'gauge exported'), 1);

    // 2. A bad file (wrong type in a probe arg): rejected, the probe keeps running with the old args.
    const before = (await status(agent)).config.reloadsRejected;
    writeFileSync(file, yaml(true, 1).replace('gauge_value: 1', 'gauge_value: lots'));
    const st = await until(
      async () => {
        const s = await status(agent);
        return s.config.reloadsRejected > before ? s : undefined;
      },
      5000,
      'reload rejected',
    );
    assert.match(
      st.config.lastReloadError ?? '',
      /probes\.synthetic\.args\.gauge_value: got "lots", expected number/,
    );
    assert.equal(st.probes.find((p) => p.name === 'synthetic')!.state, 'running');
    await agent.collectNow();
    assert.equal(await gaugeValue(agent), 1, 'old args still in effect');

    // 3. A good args change: applied by reconfigure (no restart) within 2 s.
    t0 = Date.now();
    replaceFile(yaml(true, 99));
    await until(async () => ((await gaugeValue(agent)) === 99 ? true : undefined), 5000, 'gauge 99');
    assert.ok(Date.now() - t0 < 2000, `args applied after ${Date.now() - t0} ms`);

    // 4. Disable: stopped within 2 s, its series gone.
    t0 = Date.now();
    replaceFile(yaml(false, 99));
    await until(async () => ((await synth()).state === 'stopped' ? true : undefined), 5000, 'probe stopped');
    assert.ok(Date.now() - t0 < 2000, `probe stopped after ${Date.now() - t0} ms`);
    assert.equal(await gaugeValue(agent), undefined);
    assert.equal((await synth()).reason, 'disabled in the config');
  } finally {
    await agent.stop();
  }
});
