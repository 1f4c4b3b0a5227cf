// Netlink sockets kept per netns across collections (NetnsSocketPool) and the sockets probe's skipping of
// empty dumps (net/sockstat counts first):
// - one socket per netns, the same fds from one collection to the next; closed when the entity is
//   removed (change feed), when it leaves the collection's entity list, and on close;
// - a netns deleted while its socket is kept (the socket holds it alive) gives no points and its socket
//   is closed;
// - in netns holding nothing, only UDP (v4 or v6), only a TIME_WAIT socket or only a listener, the
//   sockets probe with `skipEmpty` gives exactly the summary of the full dumps and of `ss`, and opens no
//   socket for a netns without sockets.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { qdiscProbe } from '../../probes/qdisc/qdisc.ts';
import { socketsProbe, summarize } from '../../probes/sockets/sockets.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { NETLINK_SOCK_DIAG, withNetlinkSocket } from '../../receiver/netlink/socket.ts';
import type { Entity, EntityChange, EntitySource } from '../../receiver/pods/entity.ts';
import type { MetricPoint, ProbeContext } from '../../receiver/probe/types.ts';
import { socketValues, ssTruth } from './truth.ts';

const PREFIX = `pnc${process.pid}p`;
const made: string[] = [];
const procs: ChildProcess[] = [];

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function addNetns(suffix: string): string {
  const ns = `${PREFIX}${suffix}`;
  sh('ip', ['netns', 'add', ns]);
  made.push(ns);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

function entity(ns: string): Entity {
  const netnsPath = `/run/netns/${ns}`;
  return { kind: 'netns', netnsInode: statSync(netnsPath).ino, netnsPath, netnsName: ns, displayName: ns };
}

/**
 * Sockets open in this process (`socket:[…]` fds). The netlink sockets in other netns are not listed in
 * this netns' /proc/net/netlink, so all sockets are counted: the test opens no other.
 */
function netlinkFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:[')) n++;
    } catch {}
  }
  return n;
}

/** Runs a node script inside the netns; resolves once it printed "ready". */
async function runIn(ns: string, script: string): Promise<void> {
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push(p);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${ns}: script not ready`)), 30_000);
    p.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(t);
        resolve();
      }
    });
    p.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${ns}: script exited ${code}`));
    });
  });
}

class FeedSource implements EntitySource {
  listeners: ((c: readonly EntityChange[]) => void)[] = [];
  list: Entity[] = [];
  entities(): readonly Entity[] {
    return this.list;
  }
  byNetns(inode: number): Entity | undefined {
    return this.list.find((e) => e.netnsInode === inode);
  }
  pods(): [] {
    return [];
  }
  onChange(l: (c: readonly EntityChange[]) => void): () => void {
    this.listeners.push(l);
    return () => {
      this.listeners = this.listeners.filter((x) => x !== l);
    };
  }
  remove(e: Entity): void {
    this.list = this.list.filter((x) => x !== e);
    for (const l of this.listeners) l([{ type: 'removed', entity: e }]);
  }
}

const netnsOf = (points: readonly MetricPoint[]): Set<number> => new Set(points.map((p) => p.netns!));

let A = '';
let B = '';
let C = '';
let EMPTY = '';
let UDP4 = '';
let UDP6 = '';
let TW = '';
let LISTEN = '';

before(async () => {
  [A, B, C, EMPTY, UDP4, UDP6, TW, LISTEN] = ['a', 'b', 'c', 'e', 'u4', 'u6', 'tw', 'l'].map(addNetns) as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const hold = 'setInterval(() => {}, 1e6);';
  await runIn(
    UDP4,
    `require('dgram').createSocket('udp4').bind(0, '127.0.0.1', () => console.log('ready'));${hold}`,
  );
  await runIn(
    UDP6,
    `require('dgram').createSocket('udp6').bind(0, '::1', () => console.log('ready'));${hold}`,
  );
  await runIn(
    LISTEN,
    `require('net').createServer().listen(7070, '127.0.0.1', () => console.log('ready'));${hold}`,
  );
  // The client closes first: its side stays in TIME_WAIT after every socket is closed.
  await runIn(
    TW,
    `const net = require('net');
     const srv = net.createServer((s) => s.on('end', () => { s.end(); srv.close(); }));
     srv.listen(7071, '127.0.0.1', () => {
       const c = net.connect(7071, '127.0.0.1', () => c.end());
       c.on('close', () => setTimeout(() => console.log('ready'), 200));
     });${hold}`,
  );
});

after(() => {
  for (const p of procs) if (p.exitCode === null && p.pid !== undefined) process.kill(p.pid, 'SIGKILL');
  for (const ns of made) {
    try {
      for (const pid of sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean))
        process.kill(Number(pid), 'SIGKILL');
    } catch {}
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {}
  }
});

test('pool: one socket per netns across collections, closed on removal, when the netns leaves, on close', async () => {
  const source = new FeedSource();
  const [a, b, c] = [A, B, C].map(entity) as [Entity, Entity, Entity];
  source.list = [a, b, c];
  const ctx = { log: childLogger('test'), entities: source, emit() {} } as unknown as ProbeContext;
  const base = netlinkFds();
  const probe = await qdiscProbe.create(ctx, qdiscProbe.args.parse({}));
  try {
    // lo is the only link: the noqueue qdisc of lo is excluded by default, so count collections via status.
    for (let i = 0; i < 3; i++) {
      await probe.collect([a, b, c]);
      assert.equal(netlinkFds(), base + 3, `collection ${i + 1}: one kept socket per netns`);
    }
    assert.equal((probe.status().details as { failedEntities: number }).failedEntities, 0);
    source.remove(b);
    assert.equal(netlinkFds(), base + 2, 'removed entity: its socket closed at once');
    await probe.collect([a]);
    assert.equal(netlinkFds(), base + 1, 'entity no longer collected: its socket closed');
  } finally {
    await probe.close();
  }
  assert.equal(netlinkFds(), base, 'close releases every socket');
  assert.equal(source.listeners.length, 0, 'close stops following the entity changes');
});

test('pool: a netns deleted while its socket is kept gives no points, and its socket is closed', async () => {
  const ns = addNetns('d');
  sh('ip', ['-n', ns, 'link', 'add', 'pnce0', 'type', 'veth', 'peer', 'name', 'pnce1']);
  sh('ip', ['-n', ns, 'link', 'set', 'pnce0', 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'pnce1', 'up']);
  const d = entity(ns);
  const a = entity(A);
  const ctx = {
    log: childLogger('test'),
    entities: undefined as never,
    emit() {},
  } as unknown as ProbeContext;
  const base = netlinkFds();
  const probe = await qdiscProbe.create(ctx, qdiscProbe.args.parse({}));
  try {
    assert.ok(netnsOf(await probe.collect([a, d])).has(d.netnsInode), 'points while the netns exists');
    assert.equal(netlinkFds(), base + 2);
    sh('ip', ['netns', 'del', ns]); // the kept socket still holds the netns alive in the kernel
    const points = await probe.collect([a, d]);
    assert.equal(netnsOf(points).has(d.netnsInode), false, 'no points for the deleted netns');
    assert.equal((probe.status().details as { failedEntities: number }).failedEntities, 1);
    assert.equal(netlinkFds(), base + 1, "the deleted netns' socket is closed");
  } finally {
    await probe.close();
  }
  assert.equal(netlinkFds(), base);
});

test('sockets: skipping empty dumps (sockstat counts) gives the full dumps and ss, in netns with nothing, UDP only, TIME_WAIT only, a listener only', async () => {
  const ctx = {
    log: childLogger('test'),
    entities: undefined as never,
    emit() {},
  } as unknown as ProbeContext;
  const skipping = await socketsProbe.create(ctx, socketsProbe.args.parse({}));
  const full = await socketsProbe.create(ctx, socketsProbe.args.parse({ skipEmpty: false }));
  try {
    const cases = [EMPTY, UDP4, UDP6, TW, LISTEN];
    const es = cases.map(entity);
    const base = netlinkFds();
    const a = await skipping.collect(es);
    // Only the netns with sockets got a (kept) socket.
    assert.equal(netlinkFds(), base + cases.length - 1, 'no socket opened for the empty netns');
    const b = await full.collect(es);
    for (const [i, ns] of cases.entries()) {
      const e = es[i]!;
      const mine = socketValues(a, e.netnsInode);
      const all = socketValues(b, e.netnsInode);
      const ss = ssTruth((cmd, args) => sh('ip', ['netns', 'exec', ns, cmd, ...args]));
      assert.deepEqual(mine, all, `${ns}: skipping equals the full dumps`);
      for (const [k, v] of ss) assert.deepEqual(mine.get(k), v, `${ns}: ${k} equals ss`);
    }
    const count = (ns: string, metric: string, state?: string): unknown =>
      a.find(
        (p) =>
          p.netns === entity(ns).netnsInode &&
          p.metric === metric &&
          (state === undefined || p.attributes?.['network.connection.state'] === state),
      )?.value;
    // The cases are what they claim to be (else the comparison above proves little).
    assert.equal(count(UDP4, 'podnet.udp.sockets'), 1);
    assert.equal(count(UDP6, 'podnet.udp.sockets'), 1);
    assert.equal(count(TW, 'podnet.tcp.connections', 'time_wait'), 1);
    assert.equal(count(LISTEN, 'podnet.tcp.connections', 'listen'), 1);
    assert.equal(count(EMPTY, 'podnet.udp.sockets'), 0);
    // And the summary helper agrees when given the socket directly.
    const direct = withNetlinkSocket(entity(TW).netnsPath, NETLINK_SOCK_DIAG, (s) =>
      summarize(s, socketsProbe.args.parse({})),
    );
    assert.equal(direct.states.get('time_wait'), 1);
  } finally {
    await skipping.close();
    await full.close();
  }
});
