// The direct OTLP logs encoder (receiver/otel/protobuf/logs.ts) against the SDK: the same record batches
// go through the export worker's SDK path (log-export-sdk.ts: one SDK LogRecord per event, LoggerProvider,
// BatchLogRecordProcessor) into an exporter that serializes what it gets with
// @opentelemetry/otlp-transformer's ProtobufLogsSerializer; the encoder's request must be the same bytes.
// Shapes: every event every probe declares (probes/registry.ts), with values of every attribute type,
// peer keys, stacks, bodies, all severities, several entities (pods, host, netns, unattributed) and table
// resets, keys the record object reorders (a key twice, a reserved key, an array-index key), non-finite
// numbers, long and multi-byte strings, a Resource schema URL or none, a batch split across exports, and
// an empty request. The request is also decoded with the official proto definitions.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ExportResultCode } from '@opentelemetry/core';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import protobuf from 'protobufjs';
import { probeSpecs } from '../../../probes/registry.ts';
import { entityAttributes } from '../../../receiver/otel/entity-attributes.ts';
import {
  INTERN_MAX,
  KEY_EXTRA,
  KEY_INTERNED,
  type TableEntry,
  type WorkerInit,
} from '../../../receiver/otel/log-export-protocol.ts';
import { SdkLogExport } from '../../../receiver/otel/log-export-sdk.ts';
import { LogsEncoder, type RecordRun } from '../../../receiver/otel/protobuf/logs.ts';
import { PEER_EVENT_ATTRIBUTES } from '../../../receiver/peers/types.ts';
import type { Entity } from '../../../receiver/pods/entity.ts';
import type { AttributeValue } from '../../../receiver/probe/types.ts';
import { flattenLogs } from '../../env/otlp-receiver/receiver.ts';

type Attrs = Record<string, AttributeValue>;

interface Ev {
  name: string;
  type: string;
  sev: number;
  time: bigint;
  entity: Readonly<Attrs>;
  stack?: readonly string[];
  attributes: Attrs;
  peer?: Attrs;
}

/** Record batches as EventExport.push / #post lay them out (log-export.ts), cloned as postMessage would. */
class Batcher {
  strings = new Map<string, number>();
  objects = new Map<object, number>();
  size = 0;
  add: TableEntry[] = [];
  table: TableEntry[] = [];

  #str(s: string): number {
    let i = this.strings.get(s);
    if (i === undefined) {
      i = this.size++;
      this.add.push(s);
      this.strings.set(s, i);
    }
    return i;
  }
  #obj(o: object): number {
    let i = this.objects.get(o);
    if (i === undefined) {
      i = this.size++;
      this.add.push(o as TableEntry);
      this.objects.set(o, i);
    }
    return i;
  }

  /** One batch of `evs`; `reset` starts a new table first (as past TABLE_MAX). */
  batch(
    evs: readonly Ev[],
    reset = false,
  ): { data: Float64Array; extra: unknown[]; n: number; table: TableEntry[] } {
    if (reset) {
      this.strings = new Map();
      this.objects = new Map();
      this.size = 0;
      this.table = [];
    }
    const d: number[] = [];
    const extra: unknown[] = [];
    for (const e of evs) {
      const countAt = d.length + 7;
      const ns = e.time;
      d.push(this.#str(e.name), this.#str(e.type), e.sev, Number(ns / 1_000_000_000n));
      d.push(Number(ns % 1_000_000_000n), this.#obj(e.entity), e.stack ? this.#obj(e.stack) : -1, 0);
      let count = 0;
      for (const [key, v] of [...Object.entries(e.attributes), ...Object.entries(e.peer ?? {})]) {
        if (typeof v === 'number') d.push(this.#str(key), v);
        else if (typeof v === 'string' && v.length <= INTERN_MAX)
          d.push(KEY_INTERNED + this.#str(key), this.#str(v));
        else {
          d.push(KEY_EXTRA + this.#str(key), extra.length);
          extra.push(v);
        }
        count++;
      }
      d[countAt] = count;
    }
    // The worker's side: table entries and `extra` arrive structured-cloned, the slots as they were.
    for (const a of structuredClone(this.add)) this.table.push(a);
    this.add = [];
    return { data: Float64Array.from(d), extra: structuredClone(extra), n: evs.length, table: this.table };
  }
}

const pod = (k: number): Entity => ({
  kind: 'pod',
  netnsInode: 4026530000 + k,
  netnsPath: '',
  displayName: `shop/web-${k}`,
  pod: {
    uid: `uid-${k}`,
    name: `web-${k}`,
    namespace: 'shop',
    labels: { app: 'web', 'app.kubernetes.io/part-of': 'shöp' },
    ips: [],
    sandboxId: '',
    hostNetwork: false,
  },
});
const ENTITIES: Readonly<Attrs>[] = [
  entityAttributes(pod(1), 4026530001, ['app', 'app.kubernetes.io/part-of']),
  entityAttributes({ kind: 'host', netnsInode: 4026531840, netnsPath: '', displayName: 'host' }, 0, []),
  entityAttributes(
    {
      kind: 'netns',
      netnsInode: 4026532999,
      netnsPath: '/run/netns/blue',
      displayName: 'blue',
      netnsName: 'blue',
    },
    4026532999,
    [],
  ),
  entityAttributes(undefined, 4026533333, []),
  entityAttributes(pod(2), 4026530002, ['app']),
].map((a) => Object.freeze(a));

const STACKS: readonly string[][] = [
  [
    'kfree_skb_reason+0x0/0x1a0',
    'nf_hook_slow+0x9c/0x130',
    'ip_rcv+0x6f/0xd0',
    '__netif_receive_skb_one_core+0x8f',
  ],
  Array.from(
    { length: 24 },
    (_, i) => `frame_${i}_with_a_long_symbol_name_for_length+0x${(i * 37).toString(16)}/0x200`,
  ),
];

/** A value for `key` of the kind the probes give it; `k` varies the rest over every attribute type. */
function valueFor(key: string, k: number): AttributeValue {
  if (key.endsWith('.address')) return k % 2 ? `10.0.${k % 250}.${(k * 7) % 250}` : `fd00::${k.toString(16)}`;
  if (key.endsWith('.port')) return 1024 + ((k * 131) % 60000);
  if (key.endsWith('duration')) return 0.000087 + k / 1000;
  if (key === 'podnet.task.comm') return k % 3 ? 'nginx' : 'kworker/ü:1';
  if (key === 'error.type') return k % 2 ? 'NETFILTER_DROP' : '';
  const palette: AttributeValue[] = [
    `v${k}`,
    k,
    -k - 1,
    2 ** 40 + k,
    k + 0.5,
    k % 2 === 0,
    ['a', `b${k}`, ''],
    'é😀',
    'x'.repeat(130 + k),
    -(2 ** 52),
  ];
  return palette[(key.length + k) % palette.length]!;
}

function probeEvents(): Ev[] {
  const out: Ev[] = [];
  let k = 0;
  for (const spec of probeSpecs)
    for (const def of spec.events ?? [])
      for (const type of def.types.length ? def.types : ['X']) {
        k++;
        const attributes: Attrs = {};
        for (const a of def.attributes) attributes[a] = valueFor(a, k);
        const peer: Attrs | undefined = k % 3 === 0 ? undefined : {};
        if (peer)
          for (const [i, a] of PEER_EVENT_ATTRIBUTES.entries())
            if ((i + k) % 4 !== 0) peer[a] = a === 'podnet.peer.kind' ? 'pod' : `peer-${k}-${i}`;
        out.push({
          name: def.name,
          type,
          sev: k % 4,
          time: 1_765_000_000_123_456_789n + BigInt(k) * 1_000_003n,
          entity: ENTITIES[k % ENTITIES.length]!,
          ...(k % 4 !== 1 ? { stack: STACKS[k % 2]! } : {}),
          attributes,
          ...(peer ? { peer } : {}),
        });
      }
  return out;
}

/** Records the object path must take (the record object reorders or overwrites their keys). */
function oddEvents(): Ev[] {
  const base = { name: 'podnet.packet.drop', type: 'PACKETLOSS', sev: 2, time: 1n, entity: ENTITIES[0]! };
  return [
    {
      ...base,
      attributes: { 'source.address': '10.0.0.1', 'podnet.peer.kind': 'probe' },
      peer: { 'podnet.peer.kind': 'service' },
    },
    { ...base, attributes: { 'podnet.event.type': 'FROM_PROBE', 'source.port': 1 }, stack: STACKS[0]! },
    { ...base, attributes: { 'network.transport': 'tcp', '42': 'index-like', 'code.stacktrace': 'x' } },
    {
      ...base,
      attributes: { n: Number.NaN, p: Number.POSITIVE_INFINITY, m: Number.NEGATIVE_INFINITY, z: -0 },
    },
    { ...base, name: '', attributes: {}, time: 0n },
    { ...base, attributes: { big: 'y'.repeat(20_000), uni: 'ü'.repeat(9000) } },
  ];
}

class Capture implements LogRecordExporter {
  records: ReadableLogRecord[] = [];
  export(records: ReadableLogRecord[], cb: (r: { code: ExportResultCode }) => void): void {
    this.records.push(...records);
    cb({ code: ExportResultCode.SUCCESS });
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

function init(schemaUrl?: string): WorkerInit {
  return {
    settings: {
      protocol: 'http/protobuf',
      endpoint: 'http://127.0.0.1:1',
      headers: {},
      timeoutMs: 1000,
      maxQueueSize: 1_000_000,
      maxExportBatchSize: 1_000_000,
      scheduledDelayMs: 60_000,
    },
    resource: { 'service.name': 'podnet', 'service.version': '1.2.3', 'host.name': 'node-1' },
    ...(schemaUrl !== undefined ? { schemaUrl } : {}),
    scopeName: 'podnet',
    scopeVersion: '1.2.3',
  } as WorkerInit;
}

const OBSERVED: [number, number] = [1_765_000_100, 250_000_000];

/** Both serializations of the same batches: [direct encoder, SDK path + ProtobufLogsSerializer]. */
async function both(
  batches: { data: Float64Array; extra: unknown[]; n: number; table: TableEntry[] }[],
  schemaUrl?: string,
  split?: number,
): Promise<[Uint8Array, Uint8Array]> {
  const runs: RecordRun[] = batches.map((b) => ({ ...b, at: 0, observed: OBSERVED }));
  let direct: Uint8Array;
  if (split !== undefined) {
    // A run cut where an export ends (log-export-direct.ts #take): the two requests' records, in order.
    const b = runs[0]!;
    let at = 0;
    for (let k = 0; k < split; k++) at += 8 + 2 * b.data[at + 7]!;
    const enc = new LogsEncoder(init(schemaUrl));
    const first = Buffer.from(enc.encode([{ ...b, n: split }]));
    const second = Buffer.from(enc.encode([{ ...b, at, n: b.n - split }, ...runs.slice(1)]));
    direct = Buffer.concat([first, second]);
  } else direct = Buffer.from(new LogsEncoder(init(schemaUrl)).encode(runs));
  const cap = new Capture();
  const rejected: unknown[] = [];
  const sdk = await SdkLogExport.create(
    init(schemaUrl),
    { onResult: () => undefined, onQueueFull: () => undefined, onRejected: (e) => rejected.push(e) },
    cap,
  );
  for (const b of batches) sdk.push(b.data, b.extra, b.n, b.table, OBSERVED);
  await sdk.forceFlush();
  await sdk.shutdown();
  assert.deepEqual(rejected, []);
  if (split !== undefined) {
    const n = batches[0]!.n;
    const a = ProtobufLogsSerializer.serializeRequest(cap.records.slice(0, split))!;
    const b2 = ProtobufLogsSerializer.serializeRequest(cap.records.slice(split))!;
    assert.equal(cap.records.length >= n, true);
    return [direct, Buffer.concat([a, b2])];
  }
  return [direct, Buffer.from(ProtobufLogsSerializer.serializeRequest(cap.records) ?? new Uint8Array(0))];
}

function sameBytes(a: Uint8Array, b: Uint8Array): void {
  if (Buffer.compare(a, b) === 0) return;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  assert.fail(`requests differ at byte ${i} of ${a.length} (direct) / ${b.length} (SDK)`);
}

test('logs encoder: every probe event shape, byte for byte the SDK serializer', async () => {
  const evs = probeEvents();
  assert.ok(evs.length >= 25, `${evs.length} event shapes`);
  const bt = new Batcher();
  const batches = [bt.batch(evs.slice(0, 10)), bt.batch(evs.slice(10))];
  const [direct, sdk] = await both(batches);
  sameBytes(direct, sdk);
  // What the bytes hold, read with the official proto definitions (test/env/otlp-receiver/proto).
  const root = new protobuf.Root();
  const dir = join(dirname(fileURLToPath(import.meta.url)), '../../env/otlp-receiver/proto');
  root.resolvePath = (_o, target) => (target.startsWith('/') ? target : join(dir, target));
  root.loadSync('opentelemetry/proto/collector/logs/v1/logs_service.proto');
  const type = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
  const req = type.toObject(type.decode(direct), { longs: String, enums: Number, bytes: String });
  assert.equal(req.resourceLogs.length, ENTITIES.length);
  const logs = flattenLogs(req, 'http/protobuf');
  assert.equal(logs.length, evs.length);
  const byTime = new Map(evs.map((e) => [e.time, e]));
  for (const l of logs) {
    const e = byTime.get(l.timeUnixNano)!;
    assert.equal(l.eventName, e.name);
    assert.equal(l.observedTimeUnixNano, 1_765_000_100_250_000_000n);
    assert.equal(l.attributes['podnet.event.type'], e.type);
    for (const [k, v] of Object.entries({ ...e.attributes, ...e.peer }))
      assert.deepEqual(l.attributes[k], Array.isArray(v) ? [...v] : v, k);
    assert.equal(l.resource['podnet.entity.kind'], e.entity['podnet.entity.kind']);
  }
});

test('logs encoder: table resets, reordered keys, odd values, schema URL: byte for byte', async () => {
  const bt = new Batcher();
  const evs = probeEvents();
  const batches = [
    bt.batch(evs.slice(0, 7)),
    bt.batch(oddEvents()),
    bt.batch(evs.slice(7, 20), true), // a new table: new entity objects, so Resources of their own
    bt.batch(evs.slice(20)),
  ];
  const [direct, sdk] = await both(batches, 'https://opentelemetry.io/schemas/1.37.0');
  sameBytes(direct, sdk);
});

test('logs encoder: a batch split across two exports; an empty request', async () => {
  const bt = new Batcher();
  const evs = probeEvents();
  const [direct, sdk] = await both([bt.batch(evs.slice(0, 20)), bt.batch(evs.slice(20))], undefined, 9);
  sameBytes(direct, sdk);
  const empty = new LogsEncoder(init()).encode([]);
  assert.equal(empty.length, 0);
  assert.equal(ProtobufLogsSerializer.serializeRequest([])?.length ?? 0, 0);
});

test('logs encoder: requests written into the buffers of earlier ones given back (release): byte for byte', async () => {
  const bt = new Batcher();
  const evs = probeEvents();
  // Large enough to be kept (≥ 64 KiB); then smaller ones written into the same bytes.
  const big = Array.from({ length: 30 }, () => bt.batch(evs));
  const big2 = Array.from({ length: 25 }, () => bt.batch([...evs].reverse()));
  const small = [bt.batch(evs.slice(3, 6))];
  const [sdkBig, sdkBig2, sdkSmall] = [(await both(big))[1], (await both(big2))[1], (await both(small))[1]];
  const enc = new LogsEncoder(init());
  const encode = (bs: typeof big): Uint8Array =>
    enc.encode(bs.map((b) => ({ ...b, at: 0, observed: OBSERVED })));
  const r1 = encode(big);
  assert.ok(r1.length > 256 << 10, `${r1.length} bytes`);
  sameBytes(r1, sdkBig);
  enc.release(r1);
  const r2 = encode(big2); // in the buffer the writer went on with after r1
  sameBytes(r2, sdkBig2);
  enc.release(r2);
  const r3 = encode(small);
  assert.equal(r3.buffer, r1.buffer, 'the first request given back is written over');
  sameBytes(r3, sdkSmall);
  const r4 = encode(big2);
  assert.equal(r4.buffer, r2.buffer, 'the second request given back is written over');
  sameBytes(r4, sdkBig2);
  // Requests not given back are never written over.
  const kept3 = Buffer.from(r3);
  const kept4 = Buffer.from(r4);
  sameBytes(encode(big), sdkBig);
  sameBytes(encode(small), sdkSmall);
  sameBytes(r3, kept3);
  sameBytes(r4, kept4);
  // A buffer more than 4 times larger than the request it held is not kept (a burst is over).
  enc.release(r3);
  sameBytes(encode(big), sdkBig);
  const r6 = encode(small);
  assert.notEqual(r6.buffer, r1.buffer, 'a large buffer holding a small request is let go');
  sameBytes(r6, sdkSmall);
});

/** Every attribute the body text reads (receiver/otel/protobuf/log-body.ts), and a few it does not. */
const BODY_KEYS = [
  'error.type',
  'network.transport',
  'source.address',
  'source.port',
  'destination.address',
  'destination.port',
  'network.local.address',
  'network.local.port',
  'network.peer.address',
  'network.peer.port',
  'network.interface.name',
  'network.connection.state',
  'podnet.latency.duration',
  'podnet.task.comm',
  'process.pid',
  'podnet.peer.k8s.namespace.name',
  'podnet.peer.k8s.pod.name',
  'podnet.peer.k8s.service.name',
  'podnet.peer.k8s.node.name',
  'podnet.drop.location',
  'podnet.tcp.reset.kind',
  'podnet.other.kind',
  'podnet.peer.kind',
  'kind',
  'unrelated.key',
];
const BODY_VALUES: AttributeValue[] = [
  '',
  'eth0',
  '10.1.2.3',
  'fe80::1',
  '::',
  'kworker/ü:1',
  '😀 x',
  'y'.repeat(200),
  0,
  80,
  65535,
  2 ** 31 - 1,
  2 ** 31,
  1e21,
  -0,
  -1,
  0.153,
  0.000087,
  1.5,
  2e-9,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  true,
  false,
  ['a', 'b:c'],
  ['1', ''],
];

test('logs encoder: body text written from the values = eventBody, over random records, byte for byte', async () => {
  // A fixed-seed generator (xorshift32): the same records every run, a failure reproduces.
  let seed = 0x9e3779b9;
  const rnd = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const stacks: readonly string[][] = [...STACKS, [], [''], ['tcp_v4_rcv+0x1A/0x2B0'], ['dev_queue_xmit']];
  const names = ['podnet.packet.drop', 'podnet.a.b.c', 'other.name', 'podnet.', ''];
  const evs: Ev[] = [];
  for (let k = 0; k < 600; k++) {
    const attributes: Attrs = {};
    const keys = [...BODY_KEYS];
    const count = rnd(keys.length + 1);
    for (let i = 0; i < count; i++) {
      const key = keys.splice(rnd(keys.length), 1)[0]!;
      attributes[key] = BODY_VALUES[rnd(BODY_VALUES.length)]!;
    }
    const s = rnd(stacks.length + 1);
    evs.push({
      name: names[rnd(names.length)]!,
      type: rnd(5) === 0 ? '' : `TYPE_${rnd(3)}`,
      sev: rnd(4),
      time: 1_765_000_000_000_000_000n + BigInt(k),
      entity: ENTITIES[rnd(ENTITIES.length)]!,
      ...(s < stacks.length ? { stack: stacks[s]! } : {}),
      attributes,
    });
  }
  const bt = new Batcher();
  const batches = [bt.batch(evs.slice(0, 300)), bt.batch(evs.slice(300))];
  const [direct, sdk] = await both(batches);
  sameBytes(direct, sdk);
});
