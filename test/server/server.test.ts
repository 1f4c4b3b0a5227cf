// The local server: /healthz, /readyz, /status, /inspect, /events (recent + live, filters, parameter validation),
// /metrics, errors; the JSON-lines event sink; a non-loopback bind is warned about.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { HOST_ENTITY } from '../../receiver/pods/entity.ts';
import { LocalServer } from '../../receiver/server/server.ts';

const dir = mkdtempSync(join(tmpdir(), `pno${process.pid}-server-`));
const sinkFile = join(dir, 'events.jsonl');
const POD: Entity = {
  kind: 'pod',
  netnsInode: 4026500001,
  netnsPath: '/proc/1/ns/net',
  displayName: 'shop/web-1',
  pod: {
    uid: 'uid-web-1',
    name: 'web-1',
    namespace: 'shop',
    labels: {},
    ips: [],
    sandboxId: 's',
    hostNetwork: false,
  },
};

let agent: Agent;
let url: string;

before(async () => {
  agent = await Agent.start({
    configText: `
collection_interval: 200ms
server: { address: "127.0.0.1:0" }
probes: { synthetic: { enabled: true, args: { event_rate_per_sec: 40 } } }
exporters: { events_jsonl: { enabled: true, path: "${sinkFile}" } }
`,
    specs: [],
    extraSpecs: [syntheticSpec],
    entitySource: new StaticEntitySource([HOST_ENTITY, POD]),
    env: {},
  });
  url = agent.serverUrl!;
  // Let some events happen.
  const deadline = Date.now() + 15_000;
  while (agent.pipeline.events.recent().length < 10 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
});

after(async () => {
  await agent.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function lines(path: string): Promise<Array<Record<string, unknown>>> {
  const text = await (await fetch(`${url}${path}`)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('/healthz, /readyz, /status, /inspect', async () => {
  const h = await fetch(`${url}/healthz`);
  assert.equal(h.status, 200);
  assert.equal(await h.text(), 'ok\n');
  // before() waited for events, so collections have run and the static entity source has answered.
  assert.ok(agent.collections > 0);
  const r = await fetch(`${url}/readyz`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'ready\n');
  const s = (await (await fetch(`${url}/status`)).json()) as {
    probes: Array<{ name: string; state: string; source: string; enabled: boolean }>;
    entities: Array<{ kind: string; displayName: string }>;
    pods: number;
    events: Record<string, number>;
    exporters: { prometheus: boolean; otlpMetrics: unknown };
  };
  assert.deepEqual(
    s.probes.map((p) => [p.name, p.state, p.source, p.enabled]),
    [['synthetic', 'running', 'synthetic', true]],
  );
  assert.deepEqual(s.entities.map((e) => e.displayName).sort(), ['host', 'shop/web-1']);
  assert.equal(s.pods, 1);
  assert.ok(s.events['emitted']! >= 10);
  assert.equal(s.events['suppressed'], 0);
  assert.equal(s.exporters.prometheus, true);
  assert.equal(s.exporters.otlpMetrics, null);
  // ?entities=0: the same view without the entity list (what grows with the pods; benchmarks poll it).
  const lean = (await (await fetch(`${url}/status?entities=0`)).json()) as typeof s;
  assert.equal(lean.entities, undefined);
  assert.equal(lean.pods, 1);
  assert.deepEqual(
    Object.keys(lean),
    Object.keys(s).filter((k) => k !== 'entities'),
  );
  assert.equal(((await (await fetch(`${url}/status?entities=1`)).json()) as typeof s).entities.length, 2);
  const bad = await fetch(`${url}/status?entities=no`);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /^entities: 0 or 1/);
  const i = (await (await fetch(`${url}/inspect`)).json()) as {
    entities: Array<{ name: string; totals: Record<string, number> }>;
    recentEvents: unknown[];
    metrics: Record<string, { kind: string }>;
  };
  const pod = i.entities.find((e) => e.name === 'shop/web-1')!;
  assert.ok(pod.totals['podnet.synthetic.packet.count/receive']! >= 1);
  assert.equal(pod.totals['podnet.synthetic.queue.length'], 42);
  assert.equal(i.metrics['podnet.synthetic.queue.length']?.kind, 'gauge');
  assert.ok(i.recentEvents.length > 0);
});

test('/events: recent events with pod and name filters', async () => {
  const all = await lines('/events?follow=0');
  assert.ok(all.length >= 10);
  const pod = await lines('/events?follow=0&pod=shop/web-1');
  assert.ok(pod.length > 0);
  assert.ok(pod.every((e) => e['entity'] === 'shop/web-1'));
  assert.deepEqual(
    (await lines('/events?follow=0&pod=web-1')).length > 0 &&
      (await lines('/events?follow=0&pod=uid-web-1')).length > 0,
    true,
    'pod matches by name and uid too',
  );
  assert.ok(pod.length < all.length, 'host events are filtered out');
  assert.equal((await lines('/events?follow=0&name=podnet.packet.drop')).length, 0);
  assert.ok((await lines('/events?follow=0&name=podnet.synthetic.anomaly')).length > 0);
  // A parameter is only ever compared with event fields.
  assert.equal((await lines('/events?follow=0&pod=../../../../etc/passwd')).length, 0);
});

test('/events: parameter validation', async () => {
  for (const [q, msg] of [
    ['file=/etc/passwd', /unknown parameter "file"/],
    ['follow=maybe', /follow and recent take/],
    [`pod=${'x'.repeat(300)}`, /longer than 256/],
  ] as const) {
    const r = await fetch(`${url}/events?${q}`);
    assert.equal(r.status, 400, q);
    assert.match(((await r.json()) as { error: string }).error, msg);
  }
});

test('/events: live stream of matching events only', async () => {
  const ac = new AbortController();
  const r = await fetch(`${url}/events?pod=shop/web-1`, { signal: ac.signal });
  assert.equal(r.headers.get('content-type'), 'application/x-ndjson');
  const reader = r.body!.getReader();
  let buf = '';
  const got: Array<Record<string, unknown>> = [];
  const deadline = Date.now() + 15_000;
  while (got.length < 3 && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += new TextDecoder().decode(value);
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      got.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
    }
  }
  ac.abort();
  assert.ok(got.length >= 3);
  assert.ok(got.every((e) => e['entity'] === 'shop/web-1' && e['name'] === 'podnet.synthetic.anomaly'));
  const attrs = got[0]!['attributes'] as Record<string, unknown>;
  assert.equal(attrs['k8s.pod.uid'], 'uid-web-1');
  assert.equal(attrs['podnet.event.type'], 'SYNTHETIC_DROP');
  // kernel_stacks is on by default: the probe's stack is on the record, also as code.stacktrace.
  assert.ok(Array.isArray(attrs['podnet.kernel.stack']), 'stacks are on by default');
  assert.equal(attrs['code.stacktrace'], (attrs['podnet.kernel.stack'] as string[]).join('\n'));
  assert.match(
    String(got[0]!['body']),
    /^synthetic anomaly NETFILTER_DROP tcp .* in pod shop\/web-1 \(kfree_skb_reason\)$/,
  );
});

test('errors: unknown path 404, POST 405', async () => {
  const r = await fetch(`${url}/nope`);
  assert.equal(r.status, 404);
  assert.match(((await r.json()) as { error: string }).error, /no such endpoint \/nope/);
  assert.equal((await fetch(`${url}/status`, { method: 'POST' })).status, 405);
});

test('the JSON-lines sink writes every event to the file', async () => {
  const deadline = Date.now() + 10_000;
  let rows: Array<{ name: string; timeUnixNano: string; entity: string }> = [];
  while (rows.length < 5 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    rows = readFileSync(sinkFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { name: string; timeUnixNano: string; entity: string });
  }
  assert.ok(rows.length >= 5);
  assert.ok(rows.every((r) => r.name === 'podnet.synthetic.anomaly' && /^\d+$/.test(r.timeUnixNano)));
  assert.ok(new Set(rows.map((r) => r.entity)).has('shop/web-1'));
});

test('/metrics is 404 when the Prometheus exporter is off; a non-loopback bind logs a warning', async () => {
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
  const srv = await LocalServer.start(
    '0.0.0.0',
    0,
    {
      metrics: () => undefined,
      status: () => ({}),
      inspect: () => ({}),
      recentEvents: () => [],
      subscribe: () => () => undefined,
      healthy: () => false,
      notReady: () => ['first collection not done', 'pod discovery has not answered'],
    },
    log,
  );
  try {
    assert.match(logged, /non-loopback address/);
    const base = `http://127.0.0.1:${srv.port}`;
    const m = await fetch(`${base}/metrics`);
    assert.equal(m.status, 404);
    assert.match(await m.text(), /Prometheus exporter is disabled/);
    assert.equal((await fetch(`${base}/healthz`)).status, 503);
    const r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 503);
    assert.equal(await r.text(), 'not ready: first collection not done; pod discovery has not answered\n');
  } finally {
    await srv.close();
  }
});
