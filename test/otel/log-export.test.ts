// The event export worker (receiver/otel/log-export.ts, log-export-worker.ts): records cross to the worker
// thread in compact batches and come out of the official SDK + OTLP exporter intact, exactly once, with
// exact accounting — also across a new string table mid-stream, a worker that dies, and a stalled backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { LogsExportSettings } from '../../receiver/otel/exporters.ts';
import { INTERN_MAX, TABLE_CHARS_MAX, TABLE_MAX } from '../../receiver/otel/log-export-protocol.ts';
import { Pipeline } from '../../receiver/otel/pipeline.ts';
import { buildResource } from '../../receiver/otel/resource.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { ProbeEvent } from '../../receiver/probe/types.ts';
import { startOtlpReceiver } from '../env/otlp-receiver/receiver.ts';

const POD: Entity = {
  kind: 'pod',
  netnsInode: 4026700001,
  netnsPath: '',
  displayName: 'ns1/pod-a',
  pod: {
    uid: 'uid-a',
    name: 'pod-a',
    namespace: 'ns1',
    labels: { app: 'web' },
    ips: [],
    sandboxId: '',
    hostNetwork: false,
  },
};
const STACK = ['kfree_skb_reason+0x0', 'nf_hook_slow+0x9c', 'ip_rcv+0x6f'];
const T0 = 1_796_000_000_123_456_789n;

function event(k: number, type: string): ProbeEvent {
  return {
    name: 'podnet.test.drop',
    type,
    netns: k % 3 === 0 ? 0 : POD.netnsInode,
    timeUnixNano: T0 + BigInt(k),
    ...(k % 5 === 0 ? { severity: 'ERROR' as const } : {}),
    attributes: {
      'error.type': 'NETFILTER_DROP',
      'source.address': `10.0.${(k >> 8) & 255}.${k & 255}`,
      'source.port': 40000 + (k % 1000),
      'podnet.test.seq': k,
      'podnet.test.ratio': k / 7,
      'podnet.test.flag': k % 2 === 0,
      ...(k % 11 === 0 ? { 'podnet.test.inf': Number.POSITIVE_INFINITY } : {}),
      // Values outside the table (log-export-protocol.ts `extra`): an array, a string past INTERN_MAX.
      ...(k % 13 === 0
        ? { 'podnet.test.list': ['a', `b${k}`], 'podnet.test.long': `${'z'.repeat(300)}${k}` }
        : {}),
    },
    stack: STACK,
  };
}

async function pipeline(logs: Partial<LogsExportSettings> & { endpoint: string }): Promise<Pipeline> {
  const p = new Pipeline({
    entities: new StaticEntitySource([POD]),
    log: childLogger('test'),
    labelAllowlist: ['app'],
  });
  p.events.configure({
    stacks: true,
    labelAllowlist: ['app'],
    defs: [
      {
        def: {
          name: 'podnet.test.drop',
          description: '',
          severity: 'WARN',
          attributes: [],
          types: [],
          enabled: true,
        },
        probe: 'test',
        enabled: true,
      },
    ],
  });
  await p.applyExports({
    resource: buildResource({ env: {} }),
    prometheus: false,
    logs: {
      protocol: 'http/protobuf',
      headers: {},
      timeoutMs: 20_000,
      maxQueueSize: 200_000,
      maxExportBatchSize: 4096,
      scheduledDelayMs: 50,
      ...logs,
    },
  });
  return p;
}

const yieldLoop = () => new Promise((r) => setImmediate(r));

test('events cross to the export worker intact and exactly once, past a string-table reset', async () => {
  const rx = await startOtlpReceiver({ maxKept: 100_000 });
  const p = await pipeline({ endpoint: rx.httpEndpoint });
  try {
    // A distinct event type per event: the shared string table fills and starts over mid-stream.
    const N = TABLE_MAX + 15_000;
    for (let k = 0; k < N; k++) {
      p.events.emit('test', event(k, `T${k}`));
      if (k % 2000 === 1999) await yieldLoop();
    }
    await p.forceFlush();
    const e = p.self.events;
    assert.equal(p.events.emitted, N);
    assert.equal(e.sent, N, JSON.stringify(e));
    assert.equal(e.lost_queue_full + e.lost_export_failed + e.suppressed, 0);
    assert.equal(p.queueSize(), 0);
    assert.equal(rx.logs.length, N, 'every record received once');
    const bySeq = new Map(rx.logs.map((l) => [l.attributes['podnet.test.seq'], l]));
    assert.equal(bySeq.size, N, 'no duplicates');
    for (const k of [0, 1, 2, 5, 11, 13, 26, 4095, 4096, TABLE_MAX - 1, TABLE_MAX, TABLE_MAX + 1, N - 1]) {
      const l = bySeq.get(k);
      assert.ok(l, `record ${k}`);
      const a = l.attributes;
      assert.equal(l.eventName, 'podnet.test.drop');
      assert.equal(l.timeUnixNano, T0 + BigInt(k));
      assert.equal(l.severityText, k % 5 === 0 ? 'ERROR' : 'WARN');
      assert.equal(l.severityNumber, k % 5 === 0 ? 17 : 13);
      assert.equal(a['podnet.event.type'], `T${k}`);
      assert.equal(a['error.type'], 'NETFILTER_DROP');
      assert.equal(a['source.address'], `10.0.${(k >> 8) & 255}.${k & 255}`);
      assert.equal(a['source.port'], 40000 + (k % 1000));
      assert.equal(a['podnet.test.ratio'], k / 7);
      assert.equal(a['podnet.test.flag'], k % 2 === 0);
      if (k % 11 === 0) assert.equal(a['podnet.test.inf'], Number.POSITIVE_INFINITY);
      else assert.equal('podnet.test.inf' in a, false);
      if (k % 13 === 0) {
        assert.deepEqual(a['podnet.test.list'], ['a', `b${k}`]);
        assert.equal(a['podnet.test.long'], `${'z'.repeat(300)}${k}`);
      } else assert.equal('podnet.test.list' in a || 'podnet.test.long' in a, false);
      assert.deepEqual(a['podnet.kernel.stack'], STACK);
      assert.match(
        String(l.body),
        new RegExp(`^test drop NETFILTER_DROP 10\\.0\\.${(k >> 8) & 255}\\.${k & 255}:`),
      );
      assert.match(String(l.body), k % 3 === 0 ? / in unattributed/ : / in pod ns1\/pod-a/);
      // The entity keys are on the record's Resource (one per entity), on top of the agent's.
      const r = l.resource;
      assert.equal(r['service.name'], 'podnet');
      assert.equal('podnet.entity.kind' in a || 'k8s.pod.uid' in a, false, 'no entity keys on the record');
      if (k % 3 === 0) {
        assert.equal(r['podnet.entity.kind'], 'unattributed');
        assert.equal('k8s.pod.uid' in r, false);
      } else {
        assert.equal(r['podnet.entity.kind'], 'pod');
        assert.equal(r['podnet.netns.inode'], POD.netnsInode);
        assert.equal(r['k8s.pod.uid'], 'uid-a');
        assert.equal(r['k8s.pod.name'], 'pod-a');
        assert.equal(r['k8s.namespace.name'], 'ns1');
        assert.equal(r['k8s.pod.label.app'], 'web');
      }
    }
    // The live view sees the same record.
    const last = p.events.recent().at(-1)!;
    assert.equal(last.type, `T${N - 1}`);
    assert.equal(last.attributes['k8s.pod.name'], (N - 1) % 3 === 0 ? undefined : 'pod-a');
  } finally {
    await p.shutdown();
    await rx.down();
  }
});

test('distinct long string values: the table starts over by its characters, every value intact', async () => {
  const rx = await startOtlpReceiver({ maxKept: 20_000 });
  const p = await pipeline({ endpoint: rx.httpEndpoint });
  // Each value distinct and INTERN_MAX long: TABLE_CHARS_MAX characters are reached after
  // TABLE_CHARS_MAX / INTERN_MAX records, far below TABLE_MAX entries.
  const blob = (k: number): string => `${k}:`.padEnd(INTERN_MAX, 'x');
  const N = Math.ceil((2.5 * TABLE_CHARS_MAX) / INTERN_MAX);
  assert.ok(N < TABLE_MAX / 2, 'the reset comes from the characters, not the entries');
  try {
    for (let k = 0; k < N; k++) {
      const e = event(k, 'T');
      p.events.emit('test', { ...e, attributes: { ...e.attributes, 'podnet.test.blob': blob(k) } });
      if (k % 2000 === 1999) await yieldLoop();
    }
    await p.forceFlush();
    assert.equal(p.self.events.sent, N, JSON.stringify(p.self.events));
    assert.equal(rx.logs.length, N);
    const seen = new Set<number>();
    for (const l of rx.logs) {
      const k = l.attributes['podnet.test.seq'] as number;
      assert.equal(l.attributes['podnet.test.blob'], blob(k), `record ${k}`);
      seen.add(k);
    }
    assert.equal(seen.size, N);
  } finally {
    await p.shutdown();
    await rx.down();
  }
});

test('a dead export worker: what it held is counted lost, a new worker takes over, accounting exact', async () => {
  const rx = await startOtlpReceiver();
  const p = await pipeline({ endpoint: rx.httpEndpoint, maxQueueSize: 5000, maxExportBatchSize: 512 });
  try {
    for (let k = 0; k < 1000; k++) p.events.emit('test', event(k, 'A'));
    await p.forceFlush();
    assert.equal(p.self.events.sent, 1000);
    // A stalled backend: the worker holds the records (the request in flight, the rest queued).
    rx.stall();
    for (let k = 1000; k < 3000; k++) p.events.emit('test', event(k, 'B'));
    const deadline = Date.now() + 20_000;
    const exp = p.eventExport;
    assert.ok(exp, 'the OTLP log export is on');
    while (exp.inWorker === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const held = p.queueSize();
    assert.equal(held, 2000);
    assert.ok(exp.inWorker > 0, 'the worker holds records');
    await exp.crashWorker();
    const t = Date.now() + 20_000;
    while (p.self.events.lost_export_failed === 0 && Date.now() < t)
      await new Promise((r) => setTimeout(r, 20));
    const e1 = { ...p.self.events };
    assert.equal(e1.sent + e1.lost_export_failed + e1.lost_queue_full, 3000, JSON.stringify(e1));
    assert.ok(e1.lost_export_failed > 0, JSON.stringify(e1));
    rx.unstall();
    // The replacement worker starts a fresh table; new events are exported.
    for (let k = 3000; k < 4000; k++) p.events.emit('test', event(k, 'C'));
    const t2 = Date.now() + 30_000;
    while (p.self.events.sent < e1.sent + 1000 && Date.now() < t2) {
      await p.forceFlush();
      await new Promise((r) => setTimeout(r, 50));
    }
    const e = p.self.events;
    assert.equal(p.events.emitted, 4000);
    assert.equal(e.sent + e.lost_export_failed + e.lost_queue_full + e.suppressed, 4000, JSON.stringify(e));
    assert.equal(e.sent, e1.sent + 1000, JSON.stringify(e));
    const types = rx.logs.filter((l) => l.attributes['podnet.event.type'] === 'C');
    assert.equal(types.length, 1000);
    assert.equal(rx.logs.length, e.sent, 'received == sent');
    assert.equal(p.queueSize(), 0);
  } finally {
    await p.shutdown();
    await rx.down();
  }
});

test('a stalled backend: the queue stays within max_queue_size, the overflow is counted', async () => {
  const rx = await startOtlpReceiver();
  const p = await pipeline({
    endpoint: rx.httpEndpoint,
    maxQueueSize: 1000,
    maxExportBatchSize: 200,
    timeoutMs: 1500,
  });
  try {
    rx.stall();
    let maxHeld = 0;
    for (let k = 0; k < 5000; k++) {
      p.events.emit('test', event(k, 'S'));
      maxHeld = Math.max(maxHeld, p.queueSize());
      if (k % 500 === 499) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(maxHeld, 1000);
    assert.ok(p.self.events.lost_queue_full >= 4000 - 200, JSON.stringify(p.self.events));
    rx.unstall();
    await p.forceFlush();
    const e = p.self.events;
    assert.equal(e.sent + e.lost_export_failed + e.lost_queue_full, 5000, JSON.stringify(e));
    assert.equal(rx.logs.length, e.sent);
    assert.equal(p.queueSize(), 0);
  } finally {
    await p.shutdown();
    await rx.down();
  }
});
