// sockets probe against `ss` read in the same netns: real TCP/UDP traffic between two test netns over a
// veth pair (tbf on the client side makes drops and retransmits). Read probe, ss, probe again; when both
// probe reads agree the netns was quiet across the ss read, and the values must equal ss exactly.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { M, socketsProbe, summarize } from '../../probes/sockets/sockets.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { NETLINK_SOCK_DIAG, withNetlinkSocket } from '../../receiver/netlink/socket.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { HistogramValue, MetricPoint, Probe, ProbeContext } from '../../receiver/probe/types.ts';
import { inNs, sh, sleep, TestNetwork } from './env.ts';

const net = new TestNetwork('s');
let A = '';
let B = '';
let probe: Probe;
const ctx = {
  log: childLogger('test'),
  entities: undefined as never,
  emit() {},
} as unknown as ProbeContext;

const SS_STATE: Record<string, string> = {
  ESTAB: 'established',
  'SYN-SENT': 'syn_sent',
  'SYN-RECV': 'syn_received',
  'FIN-WAIT-1': 'fin_wait_1',
  'FIN-WAIT-2': 'fin_wait_2',
  'TIME-WAIT': 'time_wait',
  UNCONN: 'closed',
  CLOSE: 'closed',
  'CLOSE-WAIT': 'close_wait',
  'LAST-ACK': 'last_ack',
  LISTEN: 'listen',
  CLOSING: 'closing',
};
const SKMEM_KEYS = ['r', 'rb', 't', 'tb', 'f', 'w', 'o', 'bl', 'd'] as const;
const MEM_METRICS = [
  'rmem_alloc',
  'rcvbuf',
  'wmem_alloc',
  'sndbuf',
  'fwd_alloc',
  'wmem_queued',
  'optmem',
  'backlog',
];
const BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

function parseSkmem(line: string): number[] {
  const m = /skmem:\(([^)]*)\)/.exec(line);
  if (!m) return [];
  const kv = new Map<string, number>();
  for (const part of m[1]!.split(',')) {
    const mm = /^([a-z]+)(\d+)$/.exec(part);
    if (mm) kv.set(mm[1]!, Number(mm[2]));
  }
  return SKMEM_KEYS.map((k) => kv.get(k) ?? 0);
}

/** What the probe must report, computed from `ss` output of one netns. */
function expectedFromSs(ns: string): Map<string, number | HistogramValue> {
  const exp = new Map<string, number | HistogramValue>();
  const states = new Map<string, number>(Object.values(SS_STATE).map((s) => [s, 0]));
  let rx = 0;
  let tx = 0;
  const mem = new Array<number>(9).fill(0);
  let lq = 0;
  let ll = 0;
  let fillMax = 0;
  let atRisk = 0;
  const counts = new Array<number>(BOUNDS.length + 1).fill(0);
  let rttSum = 0;
  let rttCount = 0;
  let retrans = 0;
  let bytesRetrans = 0;
  for (const line of inNs(ns, 'ss', ['-H', '-O', '-tanmi']).split('\n').filter(Boolean)) {
    const [st, rq, sq] = line.trim().split(/\s+/);
    const state = SS_STATE[st!];
    assert.ok(state, `unknown ss state ${st}`);
    states.set(state, states.get(state)! + 1);
    const sk = parseSkmem(line);
    sk.forEach((v, i) => {
      mem[i]! += v;
    });
    if (state === 'listen') {
      lq += Number(rq);
      ll += Number(sq);
      const fill = Number(sq) > 0 ? Number(rq) / Number(sq) : Number(rq) > 0 ? 1 : 0;
      fillMax = Math.max(fillMax, fill);
      if (fill >= 0.8 && Number(rq) > 0) atRisk++;
      continue;
    }
    rx += Number(rq);
    tx += Number(sq);
    const rtt = / rtt:([\d.]+)\//.exec(line);
    if (rtt) {
      const us = Math.round(Number(rtt[1]) * 1000);
      const v = us / 1e6;
      let i = 0;
      while (i < BOUNDS.length && v > BOUNDS[i]!) i++;
      counts[i]!++;
      rttSum += us;
      rttCount++;
    }
    const re = / retrans:\d+\/(\d+)/.exec(line);
    if (re) retrans += Number(re[1]);
    const br = / bytes_retrans:(\d+)/.exec(line);
    if (br) bytesRetrans += Number(br[1]);
  }
  for (const [s, v] of states) exp.set(`${M.connections}|${s}`, v);
  exp.set(M.rxQueue, rx);
  exp.set(M.txQueue, tx);
  MEM_METRICS.forEach((f, i) => {
    exp.set(M.mem(f), mem[i]!);
  });
  exp.set(M.drops, mem[8]!);
  exp.set(M.listenQueue, lq);
  exp.set(M.listenLimit, ll);
  exp.set(M.listenFillMax, fillMax);
  exp.set(M.listenAtRisk, atRisk);
  exp.set(M.rtt, { boundaries: BOUNDS, counts, sum: rttSum / 1e6, count: rttCount });
  exp.set(M.retrans, retrans);
  exp.set(M.retransBytes, bytesRetrans);
  let udp = 0;
  let urx = 0;
  let utx = 0;
  let udrops = 0;
  for (const line of inNs(ns, 'ss', ['-H', '-O', '-uanm']).split('\n').filter(Boolean)) {
    const [, rq, sq] = line.trim().split(/\s+/);
    udp++;
    urx += Number(rq);
    utx += Number(sq);
    udrops += parseSkmem(line)[8] ?? 0;
  }
  exp.set(M.udpCount, udp);
  exp.set(M.udpRx, urx);
  exp.set(M.udpTx, utx);
  exp.set(M.udpDrops, udrops);
  return exp;
}

function byKey(points: readonly MetricPoint[], netns: number): Map<string, number | HistogramValue> {
  const m = new Map<string, number | HistogramValue>();
  for (const p of points) {
    if (p.netns !== netns) continue;
    const st = p.attributes?.['network.connection.state'];
    m.set(st === undefined ? p.metric : `${p.metric}|${st}`, p.value);
  }
  return m;
}

/** Probe, ss, probe until the two probe reads agree; returns [probe values, ss values]. */
async function quiescentRead(e: Entity, ns: string): Promise<[Map<string, unknown>, Map<string, unknown>]> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const p1 = byKey(await probe.collect([e]), e.netnsInode);
    const ss = expectedFromSs(ns);
    const p2 = byKey(await probe.collect([e]), e.netnsInode);
    if (JSON.stringify([...p1]) === JSON.stringify([...p2])) return [p1, ss];
    await sleep(250);
  }
  throw new Error(`netns ${ns} never quiesced`);
}

before(async () => {
  A = net.addNetns('a');
  B = net.addNetns('b');
  net.link(A, B, 1);
  // Client side egress shaped with a small queue limit: bursts are dropped → TCP retransmits.
  sh('tc', [
    '-n',
    B,
    'qdisc',
    'add',
    'dev',
    'pnlb',
    'root',
    'tbf',
    'rate',
    '20mbit',
    'burst',
    '6kb',
    'limit',
    '8kb',
  ]);
  await net.run(A, ['server', '8080']);
  await net.run(A, ['sink', '9090', '4']);
  await net.run(B, ['client', '10.200.1.1', '8080', '5', '400000']);
  await net.run(B, ['client', 'fd00:1::1', '8080', '3', '1500']);
  await net.run(B, ['client', '10.200.1.1', '9090', '5', '100']);
  // Datagrams over lo inside A (the shaped veth would drop most of them before they arrive).
  await net.run(A, ['udp', '127.0.0.1', '9090', '400', '1000']);
  probe = await socketsProbe.create(ctx, socketsProbe.args.parse({}));
});

after(async () => {
  await probe?.close();
  net.cleanup();
});

test('sockets: availability on this kernel', async () => {
  assert.deepEqual(await socketsProbe.availability(), { available: true });
});

test('sockets: server netns equals ss -tanmi / -uanm (states, queues, skmem, listen queue, RTT, UDP)', async () => {
  const e = net.entity(A);
  const [got, want] = await quiescentRead(e, A);
  assert.deepEqual(got, want);
  // The scenario is not trivial: these would be 0 in an idle netns.
  assert.equal(got.get(`${M.connections}|listen`), 2); // dual-stack server + stuck listener
  assert.equal(got.get(`${M.connections}|established`), 13); // 5 + 3 accepted, 5 in the accept queue
  assert.ok((got.get(M.rxQueue) as number) > 100_000, 'unread bytes in receive queues');
  assert.equal(got.get(M.listenQueue), 5);
  assert.equal(got.get(M.listenFillMax), 5 / 4);
  assert.equal(got.get(M.listenAtRisk), 1);
  assert.equal(got.get(M.udpCount), 2); // the never-reading sink and the sender
  assert.ok((got.get(M.udpRx) as number) > 0);
  assert.ok((got.get(M.udpDrops) as number) > 0, 'UDP receive buffer overflowed');
  assert.equal((got.get(M.rtt) as HistogramValue).count, 13);
});

test('sockets: client netns equals ss (send queues, retransmits over the shaped link)', async () => {
  const e = net.entity(B);
  const [got, want] = await quiescentRead(e, B);
  assert.deepEqual(got, want);
  assert.equal(got.get(`${M.connections}|established`), 13);
  assert.ok((got.get(M.txQueue) as number) > 100_000, 'unsent/unacked bytes in send queues');
  assert.ok((got.get(M.mem('wmem_queued')) as number) > 100_000);
  assert.ok((got.get(M.retrans) as number) > 0, 'tbf drops caused retransmits');
  assert.equal(got.get(M.udpCount), 0);
});

test('sockets: the one-walk v1 TCP dump and the per-family v2 dumps give the same summary', async () => {
  const e = net.entity(A);
  const args = socketsProbe.args.parse({});
  for (let i = 0; i < 40; i++) {
    const [v1a, v2, v1b] = withNetlinkSocket(e.netnsPath, NETLINK_SOCK_DIAG, (sock) => [
      summarize(sock, { ...args, tcpAllFamiliesRequest: true }),
      summarize(sock, { ...args, tcpAllFamiliesRequest: false }),
      summarize(sock, { ...args, tcpAllFamiliesRequest: true }),
    ]);
    const j = (x: unknown) => JSON.stringify(x, (_k, v) => (v instanceof Map ? [...v] : v));
    if (j(v1a) !== j(v1b)) {
      await sleep(200);
      continue;
    }
    assert.equal(j(v2), j(v1a));
    assert.ok(v1a!.states.get('established')! > 0);
    return;
  }
  assert.fail('never quiesced');
});
