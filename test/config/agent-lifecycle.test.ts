// Probe lifecycle driven by the config: a probe without reconfigure is re-created on an args change; an
// unavailable probe and one that fails to start show their reason; failing collections are counted and,
// from the second in a row, the probe's series are dropped; undeclared events are suppressed and counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { HOST_ENTITY } from '../../receiver/pods/entity.ts';
import type { MetricPoint, Probe, ProbeContext, ProbeSpec } from '../../receiver/probe/types.ts';

interface Args {
  level: number;
  fail: boolean;
}

const log: string[] = [];
let failNow = false;
let ctxOf: ProbeContext | undefined;

const plain: ProbeSpec<Args> = {
  name: 'plain',
  description: 'a probe without reconfigure',
  source: 'procfs',
  defaultEnabled: true,
  metrics: [
    {
      name: 'podnet.plain.level',
      kind: 'gauge',
      unit: '1',
      description: 'level',
      attributes: [],
      enabled: true,
    },
  ],
  events: [
    {
      name: 'podnet.plain.event',
      description: 'e',
      severity: 'INFO',
      attributes: [],
      types: ['PLAIN'],
      enabled: true,
    },
  ],
  args: z.strictObject({ level: z.number().default(1), fail: z.boolean().default(false) }),
  async availability() {
    return { available: true };
  },
  async create(ctx, args) {
    ctxOf = ctx;
    log.push(`create ${args.level}`);
    let closed = false;
    const probe: Probe<Args> = {
      async collect(entities): Promise<readonly MetricPoint[]> {
        if (args.fail || failNow) throw new Error('synthetic collection failure');
        return entities.map((e) => ({
          metric: 'podnet.plain.level',
          netns: e.netnsInode,
          value: args.level,
        }));
      },
      status: () => ({ state: 'running' }),
      async close() {
        if (!closed) log.push(`close ${args.level}`);
        closed = true;
      },
    };
    return probe;
  },
};

const missing: ProbeSpec<Record<string, never>> = {
  name: 'missing',
  description: 'needs something this host lacks',
  source: 'ebpf',
  defaultEnabled: true,
  metrics: [],
  events: [],
  args: z.strictObject({}),
  async availability() {
    return { available: false, reason: 'tracepoint skb/kfree_skb not found' };
  },
  async create() {
    throw new Error('must not be called');
  },
};

const broken: ProbeSpec<Record<string, never>> = {
  name: 'broken',
  description: 'fails to start',
  source: 'netlink',
  defaultEnabled: true,
  metrics: [],
  events: [],
  args: z.strictObject({}),
  async availability() {
    return { available: true };
  },
  async create() {
    throw new Error('EPERM opening netlink socket');
  },
};

const yaml = (level: number, fail = false) => `
collection_interval: 1h
server: { address: "127.0.0.1:0" }
probes: { plain: { args: { level: ${level}, fail: ${fail} } } }
`;

test('probe lifecycle from the config', async () => {
  const agent = await Agent.start({
    configText: yaml(1),
    specs: [plain, missing, broken],
    entitySource: new StaticEntitySource([HOST_ENTITY]),
    env: {},
  });
  try {
    await agent.collectNow();
    const level = () => agent.pipeline.store.series().find((s) => s.def.name === 'podnet.plain.level')?.value;
    assert.equal(level(), 1);
    const st = agent.status() as { probes: Array<{ name: string; state: string; reason: string | null }> };
    assert.deepEqual(
      st.probes.map((p) => [p.name, p.state, p.reason]),
      [
        ['plain', 'running', null],
        ['missing', 'unavailable', 'tracepoint skb/kfree_skb not found'],
        ['broken', 'unavailable', 'failed to start: EPERM opening netlink socket'],
      ],
    );

    // No reconfigure: an args change closes the old instance and creates a new one.
    assert.deepEqual(await agent.reload(yaml(2)), { ok: true });
    assert.deepEqual(log, ['create 1', 'close 1', 'create 2']);
    await agent.collectNow();
    assert.equal(level(), 2);

    // The same config again changes nothing.
    await agent.reload(yaml(2));
    assert.deepEqual(log, ['create 1', 'close 1', 'create 2']);

    // Undeclared events are suppressed and counted, declared ones pass.
    ctxOf!.emit({ name: 'podnet.other', type: 'X', netns: 0, timeUnixNano: 1n, attributes: {} });
    ctxOf!.emit({ name: 'podnet.plain.event', type: 'PLAIN', netns: 0, timeUnixNano: 1n, attributes: {} });
    assert.equal(agent.pipeline.self.events.suppressed, 1);
    assert.equal(agent.pipeline.events.recent().at(-1)?.severity, 'INFO');

    // Failing collections: counted; the first keeps the last points, the second drops them.
    failNow = true;
    await agent.collectNow();
    assert.equal(agent.pipeline.self.collectionErrors('plain'), 1);
    assert.equal(level(), 2);
    await agent.collectNow();
    assert.equal(agent.pipeline.self.collectionErrors('plain'), 2);
    assert.equal(level(), undefined);
    failNow = false;
    await agent.collectNow();
    assert.equal(level(), 2, 'back after a good collection');
    failNow = true;
    await agent.collectNow();
    const st2 = agent.status() as {
      probes: Array<{ name: string; lastCollection: { error?: string } | null; collectionErrors: number }>;
    };
    const plainSt = st2.probes.find((p) => p.name === 'plain')!;
    assert.equal(plainSt.lastCollection?.error, 'synthetic collection failure');
    assert.equal(plainSt.collectionErrors, 3);
  } finally {
    await agent.stop();
  }
  assert.equal(log.at(-1), 'close 2', 'stop closes the running probe');
});

test('server address on reload: a busy port is rejected and the running server stays; a free one moves it', async () => {
  const { createServer } = await import('node:net');
  const { freePort } = await import('../env/prometheus.ts');
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const busy = (blocker.address() as { port: number }).port;
  const cfg = (addr: string) => `collection_interval: 1h\nserver: { address: "${addr}" }\n`;
  const agent = await Agent.start({ configText: cfg('127.0.0.1:0'), specs: [], env: {} });
  try {
    const url = agent.serverUrl!;
    const bad = await agent.reload(cfg(`127.0.0.1:${busy}`));
    assert.equal(bad.ok, false);
    assert.match(bad.error ?? '', /EADDRINUSE/);
    assert.equal((await fetch(`${url}/healthz`)).status, 200, 'the running server still answers');
    assert.equal(agent.serverUrl, url);
    assert.equal(agent.config.server.address.port, 0, 'the running config is kept');
    const free = await freePort();
    assert.deepEqual(await agent.reload(cfg(`127.0.0.1:${free}`)), { ok: true });
    assert.equal(agent.serverUrl, `http://127.0.0.1:${free}`);
    // (a pooled keep-alive connection to the closed listener may fail once: retry)
    const health = async () =>
      (await fetch(`http://127.0.0.1:${free}/healthz`).catch(() => fetch(`http://127.0.0.1:${free}/healthz`)))
        .status;
    assert.equal(await health(), 200);
    await assert.rejects(fetch(`${url}/healthz`), 'the old address is closed');
    // Same port, other host: the old listener holds the port, so it is closed first, then the new one opens.
    assert.deepEqual(await agent.reload(cfg(`0.0.0.0:${free}`)), { ok: true });
    assert.equal(agent.serverUrl, `http://0.0.0.0:${free}`);
    assert.equal(await health(), 200);
  } finally {
    await agent.stop();
    blocker.close();
  }
});
