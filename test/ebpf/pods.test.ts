// Real pods (private containerd + CRI, test/env/cri) discovered by the CRI entity registry: drops and
// resets between two pods are counted under the pods' netns (== the kernel counters of that pod) and
// every event is attributed to the right pod; an nft drop rule inside a pod gives NETFILTER_DROP equal to
// the rule's counter, with the pod's tuple and a kernel stack through nft_do_chain; a UDP socket with a
// tiny buffer in a pod overflows == its Udp RcvbufErrors, and 10% loss between pods gives retransmits ==
// the client pod's Tcp RetransSegs.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { M as PL, packetlossProbe } from '../../probes/packetloss/packetloss.ts';
import { M as SO, sockoverflowProbe } from '../../probes/sockoverflow/sockoverflow.ts';
import { M as RS, tcpresetProbe } from '../../probes/tcpreset/tcpreset.ts';
import { M as RT, tcpretransProbe } from '../../probes/tcpretrans/tcpretrans.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { EntityRegistry } from '../../receiver/pods/registry.ts';
import type { MetricPoint, Probe, ProbeEvent } from '../../receiver/probe/types.ts';
import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { firstJsonLine, sumPoints, waitFor } from './env.ts';

const FIXTURE = new URL('./fixtures/traffic.ts', import.meta.url).pathname;
let env: CriEnv | undefined;
let reg: EntityRegistry | undefined;
const probes: Probe<unknown>[] = [];

before(async () => {
  env = await startCriEnv();
  reg = new EntityRegistry({ criEndpoint: env.endpoint, refreshIntervalMs: 60_000 });
});
/** Fixtures still running in pods (started by startInPod), killed by pid before the pods go away. */
const started: ChildProcess[] = [];
after(async () => {
  for (const c of started) {
    if (c.pid !== undefined && c.exitCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {}
    }
  }
  for (const p of probes) await p.close();
  reg?.stop();
  const report = await env?.teardown();
  if (report) assert.deepEqual(report.leftovers, []);
});

function snmp(pid: number, group: string, field: string, file: 'snmp' | 'netstat' = 'snmp'): number {
  const lines = readFileSync(`/proc/${pid}/net/${file}`, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${group}:`));
  const i = lines[0]!.split(/\s+/).indexOf(field);
  return Number(lines[1]!.split(/\s+/)[i]);
}

/** Runs the traffic fixture inside a pod's netns (nsenter --net), returns its JSON line. */
async function inPod(pod: TestPod, args: string[]): Promise<Record<string, unknown>> {
  const child = spawn('nsenter', [`--net=/proc/${pod.pid}/ns/net`, process.execPath, FIXTURE, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.equal(code, 0, `fixture ${args.join(' ')} in pod ${pod.name}`);
  return JSON.parse(out.split('\n')[0]!) as Record<string, unknown>;
}

/** Starts the traffic fixture in a pod's netns and returns once it printed its first line (it keeps running). */
async function startInPod(pod: TestPod, args: string[]): Promise<Record<string, unknown>> {
  const child = spawn('nsenter', [`--net=/proc/${pod.pid}/ns/net`, process.execPath, FIXTURE, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  started.push(child);
  return firstJsonLine(child, `fixture ${args.join(' ')}`);
}

test('two real pods: closed-port SYNs and UDP → NOSOCK and NO_SOCKET in the server pod, equal to its kernel counters', async () => {
  const e = env!;
  const r = reg!;
  const server = await e.runPod({ name: 'pna-server', namespace: 'pna' });
  const client = await e.runPod({ name: 'pna-client', namespace: 'pna' });
  await r.start();
  assert.equal(r.byNetns(server.netnsInode)?.pod?.name, 'pna-server');
  const events: ProbeEvent[] = [];
  const ctx = { log: childLogger('test-ebpf-pods'), entities: r, emit: (ev: ProbeEvent) => events.push(ev) };
  const pl = await packetlossProbe.create(ctx, packetlossProbe.args.parse({ rateLimit: 0 }));
  probes.push(pl as Probe<unknown>);
  const rs = await tcpresetProbe.create(ctx, tcpresetProbe.args.parse({ rateLimit: 0 }));
  probes.push(rs as Probe<unknown>);

  const rst0 = snmp(server.pid, 'Tcp', 'OutRsts');
  const noports0 = snmp(server.pid, 'Udp', 'NoPorts');
  const p0 = await pl.collect([]);
  const n = 12;
  const res = await inPod(client, ['refused', server.ip, '7001', String(n), '42000']);
  assert.equal(res['refused'], n);
  const u = await inPod(client, ['udpsend', server.ip, '9', '30']);
  assert.equal(u['sent'], 30);
  // rate limits are off (rateLimit: 0), so the event counts are exact: one NOSOCK reset per refused SYN in
  // the server pod, one NO_SOCKET drop per UDP datagram, one received reset per connect in the client pod
  const mine = (type: string) => events.filter((ev) => ev.netns === server.netnsInode && ev.type === type);
  const udpDrops = () =>
    mine('PACKETLOSS').filter(
      (ev) => ev.attributes['error.type'] === 'NO_SOCKET' && ev.attributes['destination.port'] === 9,
    );
  const recv = () => events.filter((ev) => ev.netns === client.netnsInode && ev.type === 'TCPRESET_RECEIVE');
  assert.ok(
    await waitFor(() => mine('TCPRESET_NOSOCK').length >= n && udpDrops().length >= 30 && recv().length >= n),
  );
  assert.equal(snmp(server.pid, 'Tcp', 'OutRsts') - rst0, n);
  assert.equal(snmp(server.pid, 'Udp', 'NoPorts') - noports0, 30);
  const rsPoints = await rs.collect([]);
  assert.equal(sumPoints(rsPoints, RS.resets, server.netnsInode, { 'podnet.tcp.reset.kind': 'nosock' }), n);
  const p1 = await pl.collect([]);
  const udp = (p: typeof p1) =>
    sumPoints(p, PL.drops, server.netnsInode, { 'error.type': 'NO_SOCKET', 'network.transport': 'udp' });
  assert.equal(udp(p1) - udp(p0), 30);
  for (const ev of mine('TCPRESET_NOSOCK')) {
    assert.equal(r.byNetns(ev.netns)?.pod?.uid, server.uid);
    assert.equal(ev.attributes['network.local.address'], server.ip);
    assert.equal(ev.attributes['network.peer.address'], client.ip);
    assert.equal(ev.attributes['network.local.port'], 7001);
  }
  // a duplicate or a stray event would arrive within the ring reader's wakeup (ms): give it 500 ms
  await new Promise((res) => setTimeout(res, 500));
  assert.equal(mine('TCPRESET_NOSOCK').length, n);
  assert.equal(udpDrops().length, 30);
  assert.equal(recv().length, n);
  for (const ev of recv()) {
    assert.equal(ev.attributes['network.local.address'], client.ip);
    assert.equal(ev.attributes['network.peer.address'], server.ip);
    assert.equal(ev.attributes['network.peer.port'], 7001);
  }
  assert.equal(r.byNetns(client.netnsInode)?.pod?.name, 'pna-client');

  // the server pod goes away: its series disappear
  await e.removePod(server);
  await r.refresh();
  const p2 = await pl.collect([]);
  assert.equal(p2.filter((p) => p.netns === server.netnsInode).length, 0);
});

test('real pods: an nft drop rule in a pod → NETFILTER_DROP == the rule counter, events of that pod with tuple and a stack through nft_do_chain', async () => {
  const e = env!;
  const r = reg!;
  const web = await e.runPod({ name: 'pna-web', namespace: 'pna' });
  const cli = await e.runPod({ name: 'pna-cli', namespace: 'pna' });
  await r.refresh();
  assert.equal(r.byNetns(web.netnsInode)?.pod?.uid, web.uid);
  const events: ProbeEvent[] = [];
  const ctx = { log: childLogger('test-ebpf-pods'), entities: r, emit: (ev: ProbeEvent) => events.push(ev) };
  const pl = await packetlossProbe.create(ctx, packetlossProbe.args.parse({ rateLimit: 0, stacks: true }));
  probes.push(pl as Probe<unknown>);
  const nft = (...args: string[]) =>
    execFileSync('nsenter', [`--net=/proc/${web.pid}/ns/net`, 'nft', ...args], { encoding: 'utf8' });
  nft(
    'add table inet pnapod; add chain inet pnapod in { type filter hook input priority 0; policy accept; }; add rule inet pnapod in udp dport 7777 counter drop',
  );
  const n = 40;
  const p0 = await pl.collect([]);
  const u = await inPod(cli, ['udpsend', web.ip, '7777', String(n)]);
  assert.equal(u['sent'], n);
  const mine = () =>
    events.filter(
      (ev) =>
        ev.netns === web.netnsInode &&
        ev.attributes['error.type'] === 'NETFILTER_DROP' &&
        ev.attributes['destination.port'] === 7777,
    );
  assert.ok(await waitFor(() => mine().length >= n), `${mine().length} events`);
  const rules = JSON.parse(nft('-j', 'list', 'table', 'inet', 'pnapod')) as {
    nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[];
  };
  const counter = rules.nftables.flatMap((x) => x.rule?.expr ?? []).find((x) => x.counter)?.counter?.packets;
  assert.equal(counter, n);
  const p1 = await pl.collect([]);
  const drops = (p: typeof p1) => sumPoints(p, PL.drops, web.netnsInode, { 'error.type': 'NETFILTER_DROP' });
  assert.equal(drops(p1) - drops(p0), n);
  assert.equal(mine().length, n);
  for (const ev of mine()) {
    assert.equal(r.byNetns(ev.netns)?.pod?.uid, web.uid);
    assert.equal(ev.attributes['source.address'], cli.ip);
    assert.equal(ev.attributes['destination.address'], web.ip);
    assert.equal(ev.attributes['network.transport'], 'udp');
    assert.ok(
      ev.stack?.some((f) => f.startsWith('nft_do_chain+0x')),
      ev.stack?.join(' / '),
    );
  }
  await pl.close();
});

test('real pods: UDP overflow in a pod == SOCKET_RCVBUFF drops == its Udp RcvbufErrors; 10% loss → retransmits == the client pod Tcp RetransSegs', async () => {
  const e = env!;
  const r = reg!;
  const srv = await e.runPod({ name: 'pna-srv', namespace: 'pna' });
  const cli = await e.runPod({ name: 'pna-bulk', namespace: 'pna' });
  await r.refresh();
  const events: ProbeEvent[] = [];
  const ctx = { log: childLogger('test-ebpf-pods'), entities: r, emit: (ev: ProbeEvent) => events.push(ev) };
  const so = await sockoverflowProbe.create(ctx, sockoverflowProbe.args.parse({ rateLimit: 0 }));
  probes.push(so as Probe<unknown>);
  const pl = await packetlossProbe.create(ctx, packetlossProbe.args.parse({ rateLimit: 1 }));
  probes.push(pl as Probe<unknown>);
  const rt = await tcpretransProbe.create(ctx, tcpretransProbe.args.parse({ rateLimit: 0 }));
  probes.push(rt as Probe<unknown>);

  // UDP: a socket with a 1-byte receive buffer (the kernel's minimum) in srv that never reads
  await startInPod(srv, ['udpsink', '7100', '1']);
  const rcv0 = snmp(srv.pid, 'Udp', 'RcvbufErrors');
  const s0 = await so.collect([]);
  const d0 = await pl.collect([]);
  const u = await inPod(cli, ['udpsend', srv.ip, '7100', '300']);
  assert.equal(u['sent'], 300);
  const kernel = snmp(srv.pid, 'Udp', 'RcvbufErrors') - rcv0;
  assert.ok(kernel > 250, `the receive buffer overflowed (${kernel})`);
  const overflows = () =>
    events.filter((ev) => ev.netns === srv.netnsInode && ev.type === 'UDP_RCVBUF_OVERFLOW');
  assert.ok(await waitFor(() => overflows().length >= kernel), `${overflows().length} events`);
  const s1 = await so.collect([]);
  const d1 = await pl.collect([]);
  const over = (p: typeof s1) =>
    sumPoints(p, SO.udp, srv.netnsInode, { 'podnet.udp.overflow.reason': 'receive_buffer' });
  assert.equal(over(s1) - over(s0), kernel);
  const drops = (p: typeof d1) => sumPoints(p, PL.drops, srv.netnsInode, { 'error.type': 'SOCKET_RCVBUFF' });
  assert.equal(drops(d1) - drops(d0), kernel);
  for (const ev of overflows()) {
    assert.equal(r.byNetns(ev.netns)?.pod?.uid, srv.uid);
    assert.equal(ev.attributes['network.local.address'], srv.ip);
    assert.equal(ev.attributes['network.local.port'], 7100);
    assert.equal(ev.attributes['network.peer.address'], cli.ip);
  }

  // TCP: 10% random loss at the input of both pods during a bulk transfer cli → srv
  await startInPod(srv, ['sink', '7005']);
  const loss =
    'add table inet pnaloss; add chain inet pnaloss in { type filter hook input priority 0; policy accept; }; add rule inet pnaloss in tcp sport 7005 numgen random mod 10 == 0 drop; add rule inet pnaloss in tcp dport 7005 numgen random mod 10 == 0 drop';
  for (const pod of [srv, cli]) execFileSync('nsenter', [`--net=/proc/${pod.pid}/ns/net`, 'nft', loss]);
  const rs0 = snmp(cli.pid, 'Tcp', 'RetransSegs');
  const rf0 = snmp(cli.pid, 'TcpExt', 'TCPRetransFail', 'netstat');
  const p0 = await rt.collect([]);
  const b = await inPod(cli, ['bulk', srv.ip, '7005', String(3 << 20)]);
  assert.equal(b['sent'], 3 << 20);
  for (const pod of [srv, cli]) {
    execFileSync('nsenter', [`--net=/proc/${pod.pid}/ns/net`, 'nft', 'delete table inet pnaloss']);
  }
  const delta = (p: readonly MetricPoint[]) =>
    sumPoints(p, RT.retransmits, cli.netnsInode) - sumPoints(p0, RT.retransmits, cli.netnsInode);
  // The MIB counts a retransmit just before the tracepoint fires; an orphaned socket may still be
  // retransmitting: poll (30 s) until both agree.
  let k = 0;
  let p1: readonly MetricPoint[] = [];
  for (const end = Date.now() + 30_000; ; ) {
    k = snmp(cli.pid, 'Tcp', 'RetransSegs') - rs0;
    p1 = await rt.collect([]);
    if (delta(p1) === k || Date.now() > end) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(k > 0, 'the loss caused retransmits');
  // On a mismatch (seen once, at load ~17: one short; the tracepoint firings the program is not run for,
  // docs/probes-ebpf.md), say where a retransmit could have gone: failed
  // transmits (the kernel's TCPRetransFail, the probe's failed count, and the error of each event) and
  // the unattributed netns 0.
  const since = (metric: string, netns: number) =>
    sumPoints(p1, metric, netns) - sumPoints(p0, metric, netns);
  assert.equal(
    delta(p1),
    k,
    `retransmitted segments == the client pod Tcp RetransSegs delta (TcpExt TCPRetransFail +${
      snmp(cli.pid, 'TcpExt', 'TCPRetransFail', 'netstat') - rf0
    }, probe failed +${since(RT.failed, cli.netnsInode)}, unattributed +${since(RT.retransmits, 0)}, event errors ${JSON.stringify(
      events
        .filter((ev) => ev.netns === cli.netnsInode && ev.type === 'TCPRETRANS')
        .map((ev) => ev.attributes['error.type'] ?? null),
    )})`,
  );
  const retrans = () => events.filter((ev) => ev.netns === cli.netnsInode && ev.type === 'TCPRETRANS');
  assert.ok(await waitFor(() => retrans().length > 0));
  for (const ev of retrans()) {
    assert.equal(r.byNetns(ev.netns)?.pod?.uid, cli.uid);
    assert.equal(ev.attributes['network.local.address'], cli.ip);
    assert.equal(ev.attributes['network.peer.address'], srv.ip);
    assert.equal(ev.attributes['network.peer.port'], 7005);
  }
});
