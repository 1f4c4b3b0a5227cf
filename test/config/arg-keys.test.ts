// Probe args in the config file are snake_case like every other key; the old camelCase spelling is
// accepted for one release with a warning naming the key and its new spelling. Runs against the real
// registry's schemas (every probe), the agent's log and `podnet validate`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { probeSpecs } from '../../probes/registry.ts';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { camelToSnake, snakeToCamel } from '../../receiver/config/arg-keys.ts';
import { ConfigError, type ResolvedConfig, resolveConfigText } from '../../receiver/config/load.ts';
import { podnet } from '../cli/podnet-process.ts';

const specs = [...probeSpecs, syntheticSpec];

function resolve(text: string): ResolvedConfig {
  return resolveConfigText(text, 'test.yaml', { specs, env: {} });
}

function argsOf(c: ResolvedConfig, probe: string): Record<string, unknown> {
  const p = c.probes.find((x) => x.spec.name === probe);
  assert.ok(p, probe);
  return p.args as Record<string, unknown>;
}

function issuesOf(text: string): string[] {
  try {
    resolve(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail(`accepted:\n${text}`);
}

test('snake_case probe args reach the probe under its own names, with no warning', () => {
  const c = resolve(`
probes:
  packetloss: { args: { rate_limit: 7, rate_window_ms: 500, ring_bytes: 8192, exclude_locations: [tcp_v4_rcv] } }
  netdev: { args: { exclude_interfaces: ['veth*'] } }
  softirq: { args: { slow100_threshold_ms: 50 } }
  sockets: { args: { listen_fill_threshold: 0.5, rtt_boundaries: [0.001, 0.01] } }
  kernellatency: { args: { counter_thresholds_ms: [5, 50] } }
  synthetic: { args: { gauge_value: 3 } }
`);
  assert.deepEqual(c.warnings, []);
  const pl = argsOf(c, 'packetloss');
  assert.equal(pl['rateLimit'], 7);
  assert.equal(pl['rateWindowMs'], 500);
  assert.equal(pl['ringBytes'], 8192);
  assert.deepEqual(pl['excludeLocations'], ['tcp_v4_rcv']);
  assert.deepEqual(argsOf(c, 'netdev')['excludeInterfaces'], ['veth*']);
  assert.equal(argsOf(c, 'softirq')['slow100ThresholdMs'], 50);
  assert.equal(argsOf(c, 'sockets')['listenFillThreshold'], 0.5);
  assert.deepEqual(argsOf(c, 'sockets')['rttBoundaries'], [0.001, 0.01]);
  assert.deepEqual(argsOf(c, 'kernellatency')['counterThresholdsMs'], [5, 50]);
  assert.equal(argsOf(c, 'synthetic')['gauge_value'], 3);
});

test('the old camelCase spelling still works, with one warning per key naming its new spelling', () => {
  const c = resolve(`
probes:
  packetloss: { args: { rateLimit: 9, stacks: true } }
  netdev: { args: { excludeInterfaces: [] } }
`);
  assert.equal(argsOf(c, 'packetloss')['rateLimit'], 9);
  assert.equal(argsOf(c, 'packetloss')['stacks'], true);
  assert.deepEqual(argsOf(c, 'netdev')['excludeInterfaces'], []);
  assert.deepEqual(
    c.warnings.map((w) => w.path),
    ['netdev.args.excludeInterfaces', 'packetloss.args.rateLimit'].map((p) => `probes.${p}`),
  );
  assert.match(c.warnings[0]!.message, /deprecated.*write exclude_interfaces$/);
  assert.match(c.warnings[1]!.message, /deprecated.*write rate_limit$/);
});

test('errors name the key as the file spells it; an unknown or doubled key is an error', () => {
  assert.deepEqual(issuesOf('probes: { packetloss: { args: { rate_limit: "many" } } }'), [
    'probes.packetloss.args.rate_limit: got "many", expected number',
  ]);
  // A typo used to be dropped silently by the probe's (non-strict) schema.
  const typo = issuesOf('probes: { packetloss: { args: { rate_limt: 5 } } }');
  assert.equal(typo.length, 1);
  assert.match(
    typo[0]!,
    /^probes\.packetloss\.args: unknown key "rate_limt", expected one of .*"rate_limit"/,
  );
  assert.deepEqual(issuesOf('probes: { packetloss: { args: { rate_limit: 1, rateLimit: 2 } } }'), [
    'probes.packetloss.args.rateLimit: "rateLimit" and "rate_limit" are the same key; write it once, as rate_limit',
  ]);
});

test('every registered probe arg has a snake_case spelling that maps back to it, and its default parses', () => {
  for (const spec of specs) {
    const shape = (spec.args as unknown as { shape: Record<string, { _zod: { def: { type: string } } }> })
      .shape;
    assert.ok(shape, `${spec.name}: args is an object schema`);
    const defaults = spec.args.parse({}) as Record<string, unknown>;
    const written: Record<string, unknown> = {};
    for (const key of Object.keys(shape)) {
      const snake = camelToSnake(key);
      // Synthetic's schema is snake_case already: its keys are written as they are.
      assert.ok(snake === key || snakeToCamel(snake) === key, `${spec.name}.${key} -> ${snake}`);
      assert.doesNotMatch(snake, /[A-Z]/, `${spec.name}.${key}`);
      if (defaults[key] !== undefined) written[camelToSnake(key)] = defaults[key];
    }
    const text = `probes:\n  ${spec.name}:\n    args: ${JSON.stringify(written)}\n`;
    const c = resolve(text);
    assert.deepEqual(c.warnings, [], spec.name);
    assert.deepEqual(argsOf(c, spec.name), defaults, spec.name);
  }
});

test('the agent logs each old spelling at start and on reload; podnet validate prints it', async () => {
  let logged = '';
  const log = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _enc, cb) {
        logged += String(chunk);
        cb();
      },
    }),
  );
  const text = (limit: number) =>
    `server: { enabled: false }\nexporters: { prometheus: { enabled: false } }\nprobes:\n${specs
      .map(
        (s) =>
          `  ${s.name}: { enabled: false${s.name === 'packetloss' ? `, args: { rateLimit: ${limit} }` : ''} }`,
      )
      .join('\n')}\n`;
  const agent = await Agent.start({
    configText: text(3),
    extraSpecs: [syntheticSpec],
    entitySource: new StaticEntitySource([]),
    env: {},
    log,
  });
  try {
    const lines = () =>
      logged
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { key?: string; msg: string })
        .filter((l) => l.key === 'probes.packetloss.args.rateLimit');
    assert.equal(lines().length, 1);
    assert.match(lines()[0]!.msg, /write rate_limit$/);
    assert.deepEqual(await agent.reload(text(4)), { ok: true });
    assert.equal(lines().length, 2);
  } finally {
    await agent.stop();
  }

  const dir = mkdtempSync(join(tmpdir(), 'podnet-argkeys-'));
  try {
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'probes: { netdev: { args: { excludeInterfaces: [lo] } } }\n');
    const r = await podnet(['validate', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: ok /);
    assert.match(r.stderr, /warning: probes\.netdev\.args\.excludeInterfaces: .*write exclude_interfaces/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
