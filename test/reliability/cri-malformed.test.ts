// Malformed CRI input. A fake gRPC server on a unix socket speaks runtime.v1.RuntimeService with raw
// byte (de)serializers, so it can answer with anything: valid messages with odd fields (empty and
// duplicate ids, unknown enum values, 1 MB names, 10 000 labels, info JSON that is not JSON or has pid
// "abc"/-1/1e20, netns paths that traverse or point at files, deep nesting), protobuf garbage (random
// bytes, truncated messages, wrong wire types), oversized replies, gRPC errors with odd codes and replies
// that never come. A real runtime won't produce these; the point is that podnet treats them as errors:
// - EntityRegistry.refresh() never throws, keeps the host entity, reports the error in status();
// - no unhandled rejection or uncaught exception in the process;
// - `podnet run` (a child process) against the same fake keeps running and shows the error in /status.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { probeSpecs } from '../../probes/registry.ts';
import { EntityRegistry } from '../../receiver/pods/index.ts';
import { PodnetProcess, probesOff, until } from './lib.ts';

const PROTO = new URL('../../receiver/pods/proto/api.proto', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), `pnr${process.pid}-cri-`));
const socket = join(dir, 'fake-cri.sock');
const root = new protobuf.Root().loadSync(PROTO, { keepCase: true });
const T = (n: string) => root.lookupType(`runtime.v1.${n}`);

let x = 0x9e3779b9;
const rnd = () => {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) / 0x100000000;
};
const int = (n: number) => Math.floor(rnd() * n);

type Reply = { bytes: Buffer } | { error: grpc.ServiceError } | { hang: true };
type Handler = (req: Buffer) => Reply;

const enc = (type: string, obj: Record<string, unknown>): Buffer =>
  Buffer.from(T(type).encode(T(type).fromObject(obj)).finish());
const ok = (type: string, obj: Record<string, unknown>): Reply => ({ bytes: enc(type, obj) });
const err = (code: number, details: string): Reply => ({
  error: Object.assign(new Error(details), {
    code,
    details,
    metadata: new grpc.Metadata(),
  }) as grpc.ServiceError,
});

const VERSION = ok('VersionResponse', {
  version: '0.1.0',
  runtime_name: 'fake',
  runtime_version: '0',
  runtime_api_version: 'v1',
});

/** The current behaviour of each method; tests swap them. */
const handlers: Record<string, Handler> = {
  Version: () => VERSION,
  ListPodSandbox: () => ok('ListPodSandboxResponse', {}),
  PodSandboxStatus: () => err(grpc.status.NOT_FOUND, 'no such sandbox'),
};

let server: grpc.Server;
const hung: Array<() => void> = [];

before(async () => {
  server = new grpc.Server();
  const raw = (b: Buffer) => b;
  const def: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const m of ['Version', 'ListPodSandbox', 'PodSandboxStatus', 'Status']) {
    def[m] = {
      path: `/runtime.v1.RuntimeService/${m}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    };
  }
  const impl: grpc.UntypedServiceImplementation = {};
  for (const m of Object.keys(def)) {
    impl[m] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const h = handlers[m] ?? (() => err(grpc.status.UNIMPLEMENTED, m));
      const r = h(call.request);
      if ('hang' in r)
        hung.push(() => cb((err(grpc.status.UNAVAILABLE, 'released') as { error: grpc.ServiceError }).error));
      else if ('error' in r) cb(r.error);
      else cb(null, r.bytes);
    };
  }
  server.addService(def, impl);
  await new Promise<void>((res, rej) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? rej(e) : res(),
    ),
  );
});

after(() => {
  for (const f of hung) f();
  server?.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

const escaped: unknown[] = [];
const onEscape = (e: unknown) => escaped.push(e);
process.on('unhandledRejection', onEscape);
process.on('uncaughtException', onEscape);

function sandbox(id: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    metadata: { name: `n-${id}`, uid: `u-${id}`, namespace: 'fuzz', attempt: 0 },
    state: 'SANDBOX_READY',
    created_at: 1,
    ...extra,
  };
}

function statusReply(
  id: string,
  info: Record<string, string> | undefined,
  extra: Record<string, unknown> = {},
) {
  return ok('PodSandboxStatusResponse', {
    status: { ...sandbox(id), network: { ip: '10.9.9.9' }, ...extra },
    ...(info ? { info } : {}),
  });
}

const infoJson = (o: unknown) => ({ info: typeof o === 'string' ? o : JSON.stringify(o) });
const fileInDir = join(dir, 'plain-file');
writeFileSync(fileInDir, 'x');

/** Odd but well-formed PodSandboxStatus answers, by sandbox id. */
const ODD_STATUS: Handler[] = [
  () => statusReply('a', undefined),
  () => statusReply('a', { info: '' }),
  () => statusReply('a', infoJson('{not json')),
  () => statusReply('a', infoJson('[]')),
  () => statusReply('a', infoJson('null')),
  () => statusReply('a', infoJson({ pid: 'abc' })),
  () => statusReply('a', infoJson({ pid: -1 })),
  () => statusReply('a', infoJson({ pid: 1e20 })),
  () => statusReply('a', infoJson({ pid: 1.5 })),
  () => statusReply('a', infoJson({ pid: 0 })),
  () => statusReply('a', infoJson({ pid: 4194304 })),
  () => statusReply('a', infoJson({ pid: process.pid })), // the host netns: a hostNetwork pod
  () =>
    statusReply(
      'a',
      infoJson({
        runtimeSpec: { linux: { namespaces: [{ type: 'network', path: '../../../../etc/passwd' }] } },
      }),
    ),
  () =>
    statusReply(
      'a',
      infoJson({ runtimeSpec: { linux: { namespaces: [{ type: 'network', path: fileInDir }] } } }),
    ),
  () => statusReply('a', infoJson({ runtimeSpec: { linux: { namespaces: 'network' } } })),
  () => statusReply('a', infoJson({ runtimeSpec: { linux: { namespaces: [null, 1, 'x', { type: 1 }] } } })),
  () => statusReply('a', infoJson({ config: { linux: { cgroup_parent: { $ne: 1 } } }, cniResult: 42 })),
  () => statusReply('a', infoJson({ cniResult: { Interfaces: [{ Name: '../../x' }, null, 7] } })),
  () => statusReply('a', infoJson(JSON.parse(`${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`))),
  () => statusReply('a', { info: 'x'.repeat(2_000_000) }),
  () => statusReply('a', infoJson({ pid: process.pid }), { state: 99 }),
  () => statusReply('a', infoJson({ pid: process.pid }), { metadata: null, network: { ip: '999.1.1.1\n' } }),
  () =>
    statusReply('a', infoJson({ pid: process.pid }), {
      labels: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, 'v'.repeat(300)])),
    }),
  () => ok('PodSandboxStatusResponse', {}),
  () => ({ bytes: Buffer.alloc(0) }),
  () => err(grpc.status.INTERNAL, 'boom'),
  () => err(99 as grpc.status, '\u0000weird\ncode'),
  () => err(grpc.status.NOT_FOUND, 'gone'),
  () => ({ hang: true }),
];

/** Odd or broken ListPodSandbox answers. */
const ODD_LIST: Handler[] = [
  () => ok('ListPodSandboxResponse', { items: [sandbox('')] }),
  () => ok('ListPodSandboxResponse', { items: [sandbox('a'), sandbox('a'), sandbox('a')] }),
  () => ok('ListPodSandboxResponse', { items: [{ id: 'a' }] }),
  () => ok('ListPodSandboxResponse', { items: [sandbox('a', { state: 42 })] }),
  () => ok('ListPodSandboxResponse', { items: [sandbox('x'.repeat(1_000_000))] }),
  () => ok('ListPodSandboxResponse', { items: Array.from({ length: 500 }, (_, i) => sandbox(`s${i}`)) }),
  () => ok('ListPodSandboxResponse', { items: [sandbox('a', { created_at: '9223372036854775807' })] }),
  () => ({ bytes: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) }), // length far past the end
  () => ({ bytes: Buffer.from([0x0a, 0x05, 0x0a]) }), // truncated nested message
  () => ({ bytes: Buffer.from([0x0b, 0x0c]) }), // group wire type
  () => ({ bytes: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]) }), // varint overflow
  () => ({ bytes: Buffer.from(Array.from({ length: 64 }, () => int(256))) }),
  () => ({ bytes: Buffer.alloc(20 * 1024 * 1024, 0x0a) }), // over the client's 16 MiB limit
  () => err(grpc.status.UNAVAILABLE, 'runtime restarting'),
  () => err(grpc.status.DEADLINE_EXCEEDED, 'slow'),
  () => ({ hang: true }),
];

/** Broken Version answers (connect time). */
const ODD_VERSION: Handler[] = [
  () => ok('VersionResponse', { runtime_api_version: 'v2' }),
  () => ok('VersionResponse', {}),
  () => ({ bytes: Buffer.from([0x22, 0x10, 0x76]) }),
  () => ({ bytes: Buffer.from(Array.from({ length: 32 }, () => int(256))) }),
  () => err(grpc.status.UNIMPLEMENTED, 'not here'),
  () => ({ hang: true }),
];

function registry(): EntityRegistry {
  return new EntityRegistry({
    criEndpoint: `unix://${socket}`,
    criTimeoutMs: 300,
    netnsDiscovery: 'never',
    scanProc: false,
    refreshIntervalMs: 100_000,
  });
}

async function survive(reg: EntityRegistry, label: string): Promise<void> {
  await assert.doesNotReject(reg.refresh(), label);
  const kinds = reg.entities().map((e) => e.kind);
  assert.ok(kinds.includes('host'), `${label}: host entity kept`);
  for (const e of reg.entities()) {
    assert.ok(Number.isSafeInteger(e.netnsInode) && e.netnsInode > 0, `${label}: inode ${e.netnsInode}`);
    if (e.kind === 'pod') assert.ok(e.pod && typeof e.pod.uid === 'string', label);
  }
  const st = reg.status();
  assert.ok(typeof st === 'object', label);
}

test('odd and broken ListPodSandbox / PodSandboxStatus answers: errors, never a throw', async () => {
  const reg = registry();
  await reg.start();
  try {
    assert.equal(reg.status().cri.connected, true, JSON.stringify(reg.status().cri));
    handlers['ListPodSandbox'] = () => ok('ListPodSandboxResponse', { items: [sandbox('a')] });
    ODD_STATUS.forEach((h, i) => {
      handlers[`status-${i}`] = h;
    });
    for (let i = 0; i < ODD_STATUS.length; i++) {
      handlers['PodSandboxStatus'] = ODD_STATUS[i]!;
      await survive(reg, `PodSandboxStatus #${i}`);
    }
    // The id-less, duplicated and oversized lists with statuses that vary per call.
    for (let i = 0; i < ODD_LIST.length; i++) {
      handlers['ListPodSandbox'] = ODD_LIST[i]!;
      handlers['PodSandboxStatus'] = () => ODD_STATUS[int(ODD_STATUS.length - 1)]!(Buffer.alloc(0));
      await survive(reg, `ListPodSandbox #${i}`);
      if (i >= 7 && i <= 12) assert.ok(reg.status().cri.lastError, `ListPodSandbox #${i}: error reported`);
    }
    // Random protobuf-level mutations of a valid list reply.
    const good = enc('ListPodSandboxResponse', { items: [sandbox('a'), sandbox('b')] });
    for (let i = 0; i < 100; i++) {
      const b = Buffer.from(good.subarray(0, int(good.length + 1)));
      for (let k = int(4); k > 0 && b.length; k--) b[int(b.length)] = int(256);
      handlers['ListPodSandbox'] = () => ({ bytes: b });
      handlers['PodSandboxStatus'] = () => ({
        bytes: Buffer.from(Array.from({ length: int(40) }, () => int(256))),
      });
      await survive(reg, `mutated list #${i}`);
    }
    // A sane answer again: a hostNetwork pod (its pid is this process).
    handlers['ListPodSandbox'] = () => ok('ListPodSandboxResponse', { items: [sandbox('good')] });
    handlers['PodSandboxStatus'] = () => statusReply('good', infoJson({ pid: process.pid }));
    await until(
      async () => {
        await reg.refresh();
        return reg.pods().some((p) => p.sandboxId === 'good');
      },
      10_000,
      'recovery after garbage',
    );
  } finally {
    reg.stop();
    for (const f of hung.splice(0)) f();
  }
  assert.deepEqual(escaped, []);
});

test('broken Version answers: a CriError kind, the registry keeps running on the host', async () => {
  for (let i = 0; i < ODD_VERSION.length; i++) {
    handlers['Version'] = ODD_VERSION[i]!;
    const reg = registry();
    await assert.doesNotReject(reg.start(), `Version #${i}`);
    assert.equal(reg.status().cri.connected, false, `Version #${i}`);
    assert.ok(reg.status().cri.lastError, `Version #${i}: error named`);
    assert.ok(reg.entities().some((e) => e.kind === 'host'));
    reg.stop();
  }
  handlers['Version'] = () => VERSION;
  for (const f of hung.splice(0)) f();
  assert.deepEqual(escaped, []);
});

test('podnet run against a garbage-speaking runtime keeps running and says so in /status', async () => {
  handlers['Version'] = () => VERSION;
  let n = 0;
  handlers['ListPodSandbox'] = () => ODD_LIST[n++ % 12]!(Buffer.alloc(0));
  handlers['PodSandboxStatus'] = () => ODD_STATUS[n++ % (ODD_STATUS.length - 1)]!(Buffer.alloc(0));
  const p = await PodnetProcess.start(
    `collection_interval: 200ms
server: { address: "127.0.0.1:0" }
pods: { cri_endpoint: "unix://${socket}" }
probes: ${probesOff(
      probeSpecs.map((s) => s.name).filter((n) => n !== 'netdev'),
      'synthetic: { enabled: true }, netdev: { enabled: true }',
    )}
`,
  );
  try {
    interface St {
      collections: number;
      discovery: { cri: { lastError: string | null }; refreshes: number };
    }
    const s = await until(
      async () => {
        const s = await p.status<St>();
        return s.discovery.refreshes >= 25 ? s : undefined;
      },
      30_000,
      '25 refreshes',
    );
    assert.ok(s.collections > 5);
    assert.equal(p.exited, false);
    assert.doesNotMatch(p.stderr, /"level":60|uncaught|unhandled/i);
  } finally {
    const r = await p.stop();
    assert.equal(r.code, 0);
  }
});
