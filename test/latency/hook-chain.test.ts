// One program per shared hook across probes (receiver/bpf/hook-chain.ts, probes/include/pn_chain.bpf.h):
// with socketlatency and kernellatency both on, the kernel holds ONE link of theirs on sk_data_ready and
// ONE on net_dev_queue (bpftool), the second probe's program running by tail call; both probes' signals
// match the kernel's own counters (/proc/net/snmp of the netns). Switching the attached probe off hands
// the hook to the other one, whose signals keep matching; switching it on again chains it behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import {
  type KernelLatencyArgs,
  M as KL,
  kernellatencyProbe,
} from '../../probes/kernellatency/kernellatency.ts';
import {
  M as SL,
  type SocketLatencyArgs,
  socketlatencyProbe,
} from '../../probes/socketlatency/socketlatency.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import { App, histDelta, histPoint, sideEntity, sleep, tcpPair, testContext, waitFor } from './env.ts';

let pair: NetnsPair;
const apps: App[] = [];
let sl: Probe<SocketLatencyArgs> | undefined;
let kl: Probe<KernelLatencyArgs> | undefined;

before(() => {
  removeStaleNetns('pnt');
  pair = createNetnsPair({ prefix: 'pnt', tag: 'hc' });
});
after(async () => {
  for (const a of apps) a.kill();
  await sl?.close();
  await kl?.close();
  pair?.cleanup();
});

const udp = { 'network.transport': 'udp' };
const tcp = { 'network.transport': 'tcp' };

/** BPF program ids this process holds an fd of (/proc/self/fdinfo: `prog_id:`). */
function ownProgramIds(): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    let info: string;
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile (readdir's own fd)
    }
    const m = /^prog_id:\s+(\d+)/m.exec(info);
    if (m) ids.add(Number(m[1]));
  }
  return ids;
}

/** This process's BPF links on a tracepoint, by the kernel's own listing (bpftool), as program names. */
function linksOn(tp: string): string[] {
  const own = ownProgramIds();
  const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as {
    prog_id: number;
    tp_name?: string;
  }[];
  return links
    .filter((l) => l.tp_name === tp && own.has(l.prog_id))
    .map((l) => {
      const p = JSON.parse(
        execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(l.prog_id)], { encoding: 'utf8' }),
      );
      return p.name as string;
    });
}

function programExists(id: number): boolean {
  try {
    execFileSync('bpftool', ['prog', 'show', 'id', String(id)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function startSl(): Promise<Probe<SocketLatencyArgs>> {
  const p = await socketlatencyProbe.create(
    testContext([sideEntity(pair.a), sideEntity(pair.b)]),
    socketlatencyProbe.args.parse({}),
  );
  assert.equal(p.status().state, 'running', p.status().reason);
  return p;
}

async function startKl(): Promise<Probe<KernelLatencyArgs>> {
  const p = await kernellatencyProbe.create(
    testContext([sideEntity(pair.a), sideEntity(pair.b)]),
    kernellatencyProbe.args.parse({}),
  );
  assert.equal(p.status().state, 'running', p.status().reason);
  return p;
}

let udpPort = 7301;
/** 100 datagrams a → b read by a UDP socket in b: the read waits (socketlatency, sk_data_ready +
 * sock_recv_length) and rx stack times (kernellatency, netif_receive_skb + sk_data_ready) measured in b
 * against b's Udp InDatagrams. Undefined for a probe that is off. */
async function udpRound(): Promise<{ inDatagrams: number; slReads?: number; klRx?: number }> {
  const port = udpPort++;
  const u = new App(pair.b, ['udp', String(port)]);
  apps.push(u);
  await u.waitLine(/^ready/);
  const s0 = await sl?.collect([]);
  const k0 = await kl?.collect([]);
  const in0 = pair.b.snmp('Udp', 'InDatagrams');
  for (let i = 0; i < 100; i++) pair.a.sendUdp(pair.b.ipv4, port, 1, 100);
  await u.waitLine(/^udp 100$/, 5000, 0);
  await sleep(20);
  const inDatagrams = pair.b.snmp('Udp', 'InDatagrams') - in0;
  const s1 = await sl?.collect([]);
  const k1 = await kl?.collect([]);
  u.kill();
  const b = pair.b.inode;
  return {
    inDatagrams,
    ...(s0 && s1
      ? { slReads: histDelta(histPoint(s1, SL.readWait, b, udp), histPoint(s0, SL.readWait, b, udp)).count }
      : {}),
    ...(k0 && k1
      ? { klRx: histDelta(histPoint(k1, KL.rx, b, udp), histPoint(k0, KL.rx, b, udp)).count }
      : {}),
  };
}

let tcpPort = 7351;
/** 200 writes of 1000 bytes a → b: kernellatency's tx stack times (net_dev_queue) in a, against a's Tcp
 * OutSegs (a segment the device layer sees once, or a TSO super-segment standing for several). */
async function tcpRound(): Promise<{ outSegs: number; klTx: number }> {
  const { server, client } = await tcpPair(pair, apps, tcpPort++);
  const k0 = await kl!.collect([]);
  const out0 = pair.a.snmp('Tcp', 'OutSegs');
  await client.cmd('every 2 1000 200', /^done/, 20000);
  await server.waitLine(/^read 200000$/, 5000, 0);
  await sleep(50);
  const outSegs = pair.a.snmp('Tcp', 'OutSegs') - out0;
  const k1 = await kl!.collect([]);
  client.kill();
  server.kill();
  const a = pair.a.inode;
  return { outSegs, klTx: histDelta(histPoint(k1, KL.tx, a, tcp), histPoint(k0, KL.tx, a, tcp)).count };
}

function assertTx(r: { outSegs: number; klTx: number }): void {
  // every data segment of the 200 writes passes net_dev_queue; ACKs and the handshake add a few
  assert.ok(r.klTx >= 100 && r.klTx <= r.outSegs, `tx measured ${r.klTx}, Tcp OutSegs ${r.outSegs}`);
}

test('socketlatency + kernellatency: one link per shared hook, both probes measure every datagram', async () => {
  sl = await startSl();
  kl = await startKl();
  assert.deepEqual(linksOn('sk_data_ready'), ['sl_data_ready']);
  assert.deepEqual(linksOn('net_dev_queue'), ['sl_dev_queue']);
  const progs = (kl.status().details?.['programs'] ?? []) as { name: string; chainedAfter?: string }[];
  assert.equal(progs.find((p) => p.name === 'kl_rx_socket')?.chainedAfter, 'sl_data_ready');
  assert.equal(progs.find((p) => p.name === 'kl_tx_device')?.chainedAfter, 'sl_dev_queue');
  const r = await udpRound();
  assert.equal(r.inDatagrams, 100);
  assert.equal(r.slReads, r.inDatagrams, 'socketlatency: one read wait per datagram');
  assert.equal(r.klRx, r.inDatagrams, 'kernellatency (chained): one rx time per datagram');
  assertTx(await tcpRound());
});

test('the attached probe off: the other takes the hooks over and keeps measuring; on again: chained behind', async () => {
  await sl!.close();
  sl = undefined;
  assert.deepEqual(linksOn('sk_data_ready'), ['kl_rx_socket']);
  assert.deepEqual(linksOn('net_dev_queue'), ['kl_tx_device']);
  const r = await udpRound();
  assert.equal(r.klRx, r.inDatagrams, 'kernellatency alone: one rx time per datagram');
  assertTx(await tcpRound());
  sl = await startSl();
  assert.deepEqual(linksOn('sk_data_ready'), ['kl_rx_socket']);
  assert.deepEqual(linksOn('net_dev_queue'), ['kl_tx_device']);
  const r2 = await udpRound();
  assert.equal(r2.inDatagrams, 100);
  assert.equal(r2.klRx, r2.inDatagrams);
  assert.equal(r2.slReads, r2.inDatagrams, 'socketlatency (chained): one read wait per datagram');
});

test('the chained probe off: the attached one keeps measuring, nothing of the other runs', async () => {
  const before = ownProgramIds();
  await kl!.close();
  kl = undefined;
  assert.deepEqual(linksOn('sk_data_ready'), ['sl_data_ready']);
  assert.deepEqual(linksOn('net_dev_queue'), ['sl_dev_queue']);
  // kernellatency's programs are gone from the kernel: no tail-call slot still holds one
  const gone = [...before].filter((id) => !ownProgramIds().has(id));
  assert.ok(gone.length >= 4, `kernellatency programs released: ${gone.length}`);
  assert.ok(await waitFor(() => gone.every((id) => !programExists(id))), 'a closed program is still loaded');
  const r = await udpRound();
  assert.equal(r.slReads, r.inDatagrams, 'socketlatency: one read wait per datagram');
});

test('a probe in the middle of a chain off: the programs around it stay chained', async () => {
  const first = sl!; // [socketlatency]
  kl = await startKl(); // [socketlatency, kernellatency]
  const second = await startSl(); // [socketlatency, kernellatency, socketlatency]
  try {
    await kl.close(); // [socketlatency, socketlatency]
    kl = undefined;
    assert.deepEqual(linksOn('sk_data_ready'), ['sl_data_ready']);
    const progs = (second.status().details?.['programs'] ?? []) as { name: string; chainedAfter?: string }[];
    assert.equal(progs.find((p) => p.name === 'sl_data_ready')?.chainedAfter, 'sl_data_ready');
    sl = second; // udpRound reads `sl`: the second instance, reached only through the first one's slot
    const r = await udpRound();
    assert.equal(r.inDatagrams, 100);
    assert.equal(r.slReads, r.inDatagrams, 'the chained socketlatency: one read wait per datagram');
  } finally {
    await first.close();
  }
  assert.deepEqual(linksOn('sk_data_ready'), ['sl_data_ready']); // the second took the hook over
});
