// Without a usable CRI socket: clear errors for each way the socket can be wrong, and podnet keeps
// running on host/netns discovery (named netns and netns held only by a process), checked against the kernel.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { hostNetnsInode } from '../../receiver/netns/setns.ts';
import { CriClient, CriError } from '../../receiver/pods/cri-client.ts';
import type { EntityChange } from '../../receiver/pods/entity.ts';
import { EntityRegistry } from '../../receiver/pods/registry.ts';
import { netnsInodeOfPid } from '../env/cri/procs.ts';

const tag = `pnp${process.pid}`;
const dir = mkdtempSync(`/tmp/${tag}-nocri-`);
const ns1 = `${tag}n1`;
const ns2 = `${tag}n2`;
const stale = `/run/netns/${tag}stale`;
const httpSock = join(dir, 'http.sock');
const grpcSock = join(dir, 'grpc.sock');
const deadSock = join(dir, 'dead.sock');
const plainFile = join(dir, 'plain.sock');
let http: Server;
let grpcServer: grpc.Server;
let holder: ChildProcess | undefined;

function cleanupNetns(): void {
  for (const n of [ns1, ns2]) {
    try {
      execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    } catch {
      // not there
    }
  }
  rmSync(stale, { force: true });
}

before(async () => {
  cleanupNetns();
  http = createServer((c) => c.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
  await new Promise<void>((r) => http.listen(httpSock, r));
  grpcServer = new grpc.Server();
  // a real gRPC server that does not implement runtime.v1.RuntimeService
  grpcServer.addService(
    {
      Ping: {
        path: '/pnp.Other/Ping',
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    { Ping: (_c: unknown, cb: (e: null, r: Buffer) => void) => cb(null, Buffer.alloc(0)) },
  );
  await new Promise<void>((res, rej) =>
    grpcServer.bindAsync(`unix://${grpcSock}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? rej(e) : res(),
    ),
  );
  // a socket file nobody listens on any more (its process was killed)
  try {
    execFileSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(deadSock)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
  } catch (err) {
    if ((err as { signal?: string }).signal !== 'SIGKILL') throw err; // killed on purpose
  }
  assert.ok(statSync(deadSock).isSocket(), 'dead socket file should remain');
  writeFileSync(plainFile, 'not a socket');
});

after(async () => {
  cleanupNetns();
  if (holder?.pid && holder.exitCode === null) holder.kill('SIGKILL');
  http?.close();
  await new Promise<void>((r) => (grpcServer ? grpcServer.tryShutdown(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
});

async function connectError(endpoint: string): Promise<CriError> {
  try {
    const { client } = await CriClient.connect(endpoint, { timeoutMs: 3000 });
    client.close();
  } catch (err) {
    assert.ok(err instanceof CriError, `expected CriError, got ${String(err)}`);
    return err;
  }
  assert.fail(`connect to ${endpoint} unexpectedly succeeded`);
}

test('a CRI socket that is missing, not a socket, dead, HTTP or non-CRI gRPC gives a clear error', async () => {
  const missing = await connectError(join(dir, 'nope.sock'));
  assert.equal(missing.kind, 'missing');
  assert.match(missing.message, /nope\.sock does not exist/);
  assert.match(missing.message, /CONTAINER_RUNTIME_ENDPOINT/);

  const file = await connectError(plainFile);
  assert.equal(file.kind, 'not-socket');
  assert.match(file.message, /plain\.sock exists but is not a unix socket/);

  const dead = await connectError(deadSock);
  assert.equal(dead.kind, 'refused');
  assert.match(dead.message, /nothing accepts connections/);

  const h = await connectError(`unix://${httpSock}`);
  assert.equal(h.kind, 'not-cri');
  assert.match(h.message, /does not speak gRPC\/CRI/);

  const g = await connectError(`unix://${grpcSock}`);
  assert.equal(g.kind, 'not-cri');
  assert.match(g.message, /answers gRPC but not runtime\.v1\.RuntimeService\/Version/);
});

test('without CRI: host, named netns and process-held netns become entities; removals are fed as changes', async () => {
  execFileSync('ip', ['netns', 'add', ns1]);
  execFileSync('ip', ['netns', 'add', ns2]);
  writeFileSync(stale, ''); // a leftover file that is not a netns mount: must be ignored
  holder = spawn('unshare', ['-n', 'sleep', '600'], { stdio: 'ignore' });
  const holderPid = holder.pid;
  assert.ok(holderPid);
  // unshare execs sleep in the same pid once the netns exists
  for (let i = 0; i < 100 && netnsInodeOfPid(holderPid) === hostNetnsInode; i++)
    await new Promise((r) => setTimeout(r, 10));
  const holderInode = netnsInodeOfPid(holderPid);
  assert.notEqual(holderInode, hostNetnsInode);

  // a non-CRI socket as endpoint: the registry reports it and keeps discovering netns
  const reg = new EntityRegistry({ criEndpoint: `unix://${grpcSock}`, criTimeoutMs: 3000 });
  const changes: EntityChange[] = [];
  reg.onChange((c) => changes.push(...c));
  await reg.start();
  try {
    const st = reg.status();
    assert.equal(st.mode, 'netns');
    assert.equal(st.cri.connected, false);
    assert.match(st.cri.lastError ?? '', /not runtime\.v1\.RuntimeService/);

    const host = reg.byNetns(hostNetnsInode);
    assert.equal(host?.kind, 'host');
    assert.equal(host?.displayName, 'host');
    for (const n of [ns1, ns2]) {
      const ino = statSync(`/run/netns/${n}`).ino;
      const e = reg.byNetns(ino);
      assert.ok(e, `named netns ${n} (inode ${ino}) missing`);
      assert.equal(e.kind, 'netns');
      assert.equal(e.netnsName, n);
      assert.equal(e.netnsPath, `/run/netns/${n}`);
      assert.ok(changes.some((c) => c.type === 'added' && c.entity.netnsInode === ino));
    }
    assert.ok(!reg.entities().some((e) => e.netnsName === `${tag}stale`), 'stale non-mount file listed');
    const held = reg.byNetns(holderInode);
    assert.ok(held, 'netns held only by a process missing');
    assert.equal(held.kind, 'netns');
    assert.equal(held.pid, holderPid);
    assert.equal(held.displayName, `pid ${holderPid} (sleep)`);
    assert.equal(statSync(held.netnsPath).ino, holderInode);
    assert.equal(reg.pods().length, 0);

    // remove one named netns and the process: both leave within one refresh, as 'removed' changes
    const ino1 = statSync(`/run/netns/${ns1}`).ino;
    execFileSync('ip', ['netns', 'del', ns1]);
    holder.kill('SIGKILL');
    await new Promise((r) => holder?.once('exit', r));
    changes.length = 0;
    await reg.refresh();
    assert.equal(reg.byNetns(ino1), undefined);
    assert.equal(reg.byNetns(holderInode), undefined);
    const removed = changes.filter((c) => c.type === 'removed').map((c) => c.entity.netnsInode);
    assert.ok(removed.includes(ino1) && removed.includes(holderInode), `removed: ${removed.join(',')}`);
    assert.ok(reg.byNetns(statSync(`/run/netns/${ns2}`).ino));
  } finally {
    reg.stop();
  }
});

test('disableCri: pure host/netns discovery; netnsDiscovery "never" keeps only the host', async () => {
  execFileSync('ip', ['netns', 'add', ns1]);
  const ino = statSync(`/run/netns/${ns1}`).ino;
  const a = new EntityRegistry({ disableCri: true, scanProc: false });
  const b = new EntityRegistry({ disableCri: true, netnsDiscovery: 'never' });
  await a.refresh();
  await b.refresh();
  assert.equal(a.byNetns(ino)?.netnsName, ns1);
  assert.equal(a.status().cri.enabled, false);
  assert.deepEqual(
    b.entities().map((e) => e.kind),
    ['host'],
  );
  a.stop();
  b.stop();
});
