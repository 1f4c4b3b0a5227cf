// dns probe against a real DNS server (unbound, with dnsmasq as a failing upstream) in a test netns and
// real clients (dig, getent through glibc) in another: every count equals what the clients saw, what the
// server logged, and (timeouts) what an nft drop rule counted. Latency: the server behind a tbf delay
// lands in the bucket of its wire time (tshark). Cleans up netns, processes and files.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createDnsProbe, type DnsArgs, dnsProbe, M } from '../../probes/dns/dns.ts';
import type { MetricPoint, Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import {
  counterPoint,
  histPoint,
  sideEntity,
  sleep,
  type TestContext,
  testContext,
  waitFor,
} from '../latency/env.ts';
import { DnsServer, dig } from './server.ts';

const QT = 'podnet.dns.question.type';
const RC = 'podnet.dns.response_code';
let pair: NetnsPair;
let server: DnsServer;
let ctx: TestContext;
let probe: Probe<DnsArgs>;
let srv: NetnsPair['a'];
let cli: NetnsPair['b'];
const etcNetns = () => `/etc/netns/${cli.name}`;

before(async () => {
  removeStaleNetns('pnd');
  pair = createNetnsPair({ prefix: 'pnd', ipv4Net: '10.253.7', ipv6Net: 'fd00:253:7::' });
  srv = pair.a;
  cli = pair.b;
  server = await DnsServer.start(srv);
  ctx = testContext([sideEntity(srv), sideEntity(cli)]);
  const args = dnsProbe.args.parse({
    hook: 'auto',
    timeoutMs: 1500,
    sweepMs: 200,
    slowMs: 50,
    rateLimit: 1000,
  });
  probe = await dnsProbe.create(ctx, args);
  // getent (glibc) in the client netns uses this resolv.conf (ip netns exec bind-mounts /etc/netns/<ns>)
  mkdirSync(etcNetns(), { recursive: true });
  writeFileSync(`${etcNetns()}/resolv.conf`, `nameserver ${srv.ipv4}\noptions timeout:1 attempts:1\n`);
});

after(async () => {
  await probe?.close();
  server?.stop();
  rmSync(etcNetns(), { recursive: true, force: true });
  pair?.cleanup();
});

const collect = async (): Promise<MetricPoint[]> => [...(await probe.collect([]))];
const n = (p: MetricPoint[], metric: string, match: Record<string, string> = {}) =>
  counterPoint(p, metric, cli.inode, match);
// Events are taken from the client's netns only, like the counts: the probe sees DNS in every netns of the
// machine (netns this context does not watch come as netns 0), and another run of these tests at the same
// time sends the same names (t0.ok.podnet, …) from its own netns pair, so its timeouts would be taken as ours.

test('answered, NXDOMAIN and SERVFAIL over UDP, IPv4 and IPv6: counts equal dig and the server log', async () => {
  const seen: Record<string, number> = {};
  const ask = (server: string, name: string, o: Parameters<typeof dig>[3] = {}) => {
    const r = dig(cli, server, name, o);
    seen[r.status] = (seen[r.status] ?? 0) + 1;
    return r;
  };
  for (let i = 0; i < 7; i++) ask(srv.ipv4, 'a.ok.podnet'); // NOERROR A over IPv4/UDP
  for (let i = 0; i < 3; i++) ask(srv.ipv6, 'a.ok.podnet', { type: 'AAAA' }); // IPv6/UDP
  for (let i = 0; i < 5; i++) ask(srv.ipv4, `nx${i}.ok.podnet`); // NXDOMAIN
  for (let i = 0; i < 3; i++) ask(srv.ipv4, `s${i}.fail.podnet`); // SERVFAIL
  assert.deepEqual(seen, { NOERROR: 10, NXDOMAIN: 5, SERVFAIL: 3 }, 'what dig saw');
  // the server's log
  await waitFor(() => server.replies.length >= 18, 3000);
  const logged = (rc: string) => server.count(cli.ipv4, rc) + server.count(cli.ipv6, rc);
  assert.equal(logged('NOERROR'), 10);
  assert.equal(logged('NXDOMAIN'), 5);
  assert.equal(logged('SERVFAIL'), 3);

  const p = await collect();
  assert.equal(n(p, M.responses, { [RC]: 'NOERROR' }), 10);
  assert.equal(n(p, M.responses, { [RC]: 'NXDOMAIN' }), 5);
  assert.equal(n(p, M.responses, { [RC]: 'SERVFAIL' }), 3);
  assert.equal(n(p, M.responses, { [RC]: 'NOERROR', [QT]: 'AAAA' }), 3);
  assert.equal(n(p, M.responses, { 'network.transport': 'udp' }), 18);
  assert.equal(n(p, M.queries), 18);
  assert.equal(n(p, M.timeouts), 0);
  const h = histPoint(p, M.duration, cli.inode, { [RC]: 'NXDOMAIN', [QT]: 'A', 'network.transport': 'udp' });
  assert.equal(h?.count, 5);
  // the server netns sent no DNS of its own on port 53 (unbound → dnsmasq is on 5399)
  assert.equal(counterPoint(p, M.queries, srv.inode), 0);
  // SERVFAIL events with the names
  const failed = ctx.events.filter((e) => e.netns === cli.inode && e.name === 'podnet.dns.failed');
  assert.deepEqual(failed.map((e) => e.attributes['dns.question.name']).sort(), [
    's0.fail.podnet',
    's1.fail.podnet',
    's2.fail.podnet',
  ]);
  const f = failed[0]!;
  assert.equal(f.netns, cli.inode);
  assert.equal(f.attributes['server.address'], srv.ipv4);
  assert.equal(f.attributes['server.port'], 53);
  assert.equal(f.attributes['error.type'], 'SERVFAIL');
  assert.match(
    String(f.attributes['podnet.dns.summary']),
    /^DNS A s\d\.fail\.podnet to 10\.253\.7\.1:53: SERVFAIL after/,
  );
});

test('getaddrinfo (getent ahosts, glibc A+AAAA) counts equal the server log', async () => {
  const before = await collect();
  const base = { a: n(before, M.responses, { [QT]: 'A' }), aaaa: n(before, M.responses, { [QT]: 'AAAA' }) };
  const logBase = {
    a: server.count(cli.ipv4, undefined, 'A'),
    aaaa: server.count(cli.ipv4, undefined, 'AAAA'),
  };
  for (let i = 0; i < 4; i++) cli.exec('getent', ['ahosts', 'a.ok.podnet']);
  await waitFor(() => server.count(cli.ipv4, undefined, 'AAAA') - logBase.aaaa >= 4, 3000);
  const la = server.count(cli.ipv4, undefined, 'A') - logBase.a;
  const l6 = server.count(cli.ipv4, undefined, 'AAAA') - logBase.aaaa;
  // at least the 4 A + 4 AAAA asked (glibc re-sends a query that waited past its resolver timeout,
  // which a loaded machine can cause): the exact check is podnet == the server's log, below
  assert.ok(la >= 4 && l6 >= 4, `server logged ${la} A, ${l6} AAAA`);
  const p = await collect();
  assert.equal(n(p, M.responses, { [QT]: 'A' }) - base.a, la);
  assert.equal(n(p, M.responses, { [QT]: 'AAAA' }) - base.aaaa, l6);
});

test('truncated answer (TXT over 512 bytes without EDNS, no TCP retry)', async () => {
  const r = dig(cli, srv.ipv4, 'big.ok.podnet', { type: 'TXT', extra: ['+noedns', '+ignore'] });
  assert.equal(r.status, 'NOERROR');
  const p = await collect();
  assert.equal(n(p, M.truncated, { [QT]: 'TXT' }), 1);
});

// No netem on this kernel (reference/kernel-and-bpf.md): the delay is a tbf on the server's side whose
// bucket holds exactly one big TXT response. One dig asks for the TXT (it empties the bucket) and then,
// right after its answer, for an A record: that ~100-byte response waits for tokens, ~100 ms at the
// rate chosen below (the turnaround between the two is ~1 ms of dig and unbound).
test('latency: a server behind a tbf delay (~100 ms) lands in the bucket of its wire time (tcpdump + tshark)', async () => {
  const counts = (p: MetricPoint[]) => {
    const h = histPoint(p, M.duration, cli.inode, { [RC]: 'NOERROR', [QT]: 'A', 'network.transport': 'udp' });
    assert.ok(h);
    return h;
  };
  const probeSizes = dig(cli, srv.ipv4, 'big.ok.podnet', { type: 'TXT', extra: ['a.ok.podnet', 'A'] });
  const [txt, a] = probeSizes.sizes as [number, number];
  const frame = (msg: number) => msg + 42; // Ethernet 14 + IPv4 20 + UDP 8
  const rate = Math.round((frame(a) / 0.1) * 8); // bits/s: the A response takes ~100 ms of tokens
  // ground truth for the wire time: tcpdump on the client's interface (AF_PACKET taps sit next to the
  // probe's hooks) and tshark's query/response matching (dns.time)
  const pcap = join(server.dir, 'latency.pcap');
  const cap = spawn(
    'ip',
    [
      'netns',
      'exec',
      cli.name,
      'tcpdump',
      '--immediate-mode',
      '-i',
      cli.ifname,
      '-U',
      '-w',
      pcap,
      'udp port 53',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let capErr = '';
  cap.stderr?.on('data', (d: Buffer) => {
    capErr += d.toString();
  });
  assert.ok(await waitFor(() => capErr.includes('listening on'), 10_000), `tcpdump: ${capErr}`);
  const latencies: number[] = [];
  const digMs: number[] = [];
  srv.exec('tc', [
    'qdisc',
    'add',
    'dev',
    srv.ifname,
    'root',
    'tbf',
    'rate',
    `${rate}bit`,
    'burst',
    String(frame(txt)),
    'latency',
    '5s',
  ]);
  try {
    for (let i = 0; i < 3; i++) {
      await sleep(((frame(txt) + frame(a)) / (rate / 8)) * 1000 + 200); // the bucket is full again
      const before = counts(await collect());
      const evBefore = ctx.events.length;
      const r = dig(cli, srv.ipv4, 'big.ok.podnet', { type: 'TXT', extra: ['a.ok.podnet', 'A'] });
      assert.equal(r.status, 'NOERROR');
      const after = counts(await collect());
      assert.equal(after.count - before.count, 1);
      const k = after.counts.findIndex((c, j) => c !== before.counts[j]);
      const upper = after.boundaries[k]!;
      // the delay took effect: above 2^25 ns (33.5 ms); a response without it takes well under 1 ms
      // Known flake under CPU load (3 of 3 runs at load 17–22): dig's turnaround between the two answers,
      // during which the bucket refills, can exceed the ~100 ms of tokens (latency then ~30 ms or < 1 ms).
      assert.ok(upper > 2 ** 26 / 1e9, `bucket (.., ${upper}] s; dig's times ${r.times.join(', ')} ms`);
      // the slow event carries the exact latency of that response, in that bucket
      await waitFor(
        () => ctx.events.slice(evBefore).some((e) => e.netns === cli.inode && e.name === 'podnet.dns.slow'),
        2000,
      );
      const ev = ctx.events
        .slice(evBefore)
        .find((e) => e.netns === cli.inode && e.name === 'podnet.dns.slow');
      assert.equal(ev?.attributes['dns.question.name'], 'a.ok.podnet');
      const lat = Number(ev?.attributes['podnet.latency.duration']);
      const lower = after.boundaries[k - 1] ?? 0;
      assert.ok(lat > lower && lat <= upper, `event latency ${lat} s, bucket (${lower}, ${upper}]`);
      latencies.push(lat);
      digMs.push(r.times[1]!);
    }
  } finally {
    srv.exec('tc', ['qdisc', 'del', 'dev', srv.ifname, 'root']);
    await sleep(300);
    if (cap.pid !== undefined) process.kill(cap.pid, 'SIGINT');
    await new Promise((r) => cap.once('exit', r));
  }
  const wire = execFileSync(
    'tshark',
    [
      '-r',
      pcap,
      '-Y',
      'dns.flags.response == 1 && dns.qry.name == "a.ok.podnet"',
      '-T',
      'fields',
      '-e',
      'dns.time',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  )
    .trim()
    .split('\n')
    .map(Number);
  const all = () =>
    execFileSync(
      'tshark',
      [
        '-r',
        pcap,
        '-T',
        'fields',
        '-e',
        'frame.time_relative',
        '-e',
        'dns.id',
        '-e',
        'dns.qry.name',
        '-e',
        'dns.time',
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
  assert.equal(wire.length, 3, `tshark matched ${wire.length} responses: ${all()}`);
  for (let i = 0; i < 3; i++) {
    // the probe's time equals the wire time within 1 ms (dig's own, taken in user space, is later:
    // the client's wakeup under load)
    assert.ok(
      Math.abs(latencies[i]! - wire[i]!) < 0.001,
      `probe ${latencies[i]} s, tshark ${wire[i]} s, dig ${digMs[i]} ms`,
    );
  }
});

test('timeouts: queries an nft rule drops are counted once each, with the names, and no conntrack cause', async () => {
  const table = `pnd${process.pid}`;
  srv.exec('nft', [
    `add table inet ${table}; add chain inet ${table} in { type filter hook input priority 0; }; add rule inet ${table} in ip saddr ${cli.ipv4} udp dport 53 counter drop`,
  ]);
  const before = n(await collect(), M.timeouts);
  const evBefore = ctx.events.length;
  try {
    for (let i = 0; i < 3; i++)
      assert.equal(dig(cli, srv.ipv4, `t${i}.ok.podnet`, { time: 1 }).status, 'TIMEOUT');
    const dropped = Number(/packets (\d+)/.exec(srv.exec('nft', ['list', 'table', 'inet', table]))?.[1]);
    assert.equal(dropped, 3, 'nft counted the drops');
  } finally {
    srv.exec('nft', ['delete', 'table', 'inet', table]);
  }
  // the sweep decides them once the 1.5 s window has passed
  const timeouts = () =>
    ctx.events.slice(evBefore).filter((e) => e.netns === cli.inode && e.name === 'podnet.dns.timeout');
  assert.ok(
    await waitFor(() => timeouts().length === 3, 4000),
    `${timeouts().length} timeout events: ${JSON.stringify(timeouts().map((e) => [e.attributes['dns.question.name'], e.attributes[QT], e.attributes['podnet.dns.timeout.kind'], e.attributes['podnet.latency.duration']]))}`,
  );
  assert.equal(n(await collect(), M.timeouts) - before, 3);
  // By name, not by the count of the log: a reply of an earlier test logged late (a loaded machine) would
  // move the count (this used a fixed 300 ms wait for the log to settle first).
  assert.deepEqual(
    server.replies.filter((r) => /^t\d\.ok\.podnet$/.test(r.name)),
    [],
    'the server logged no reply to these queries',
  );
  assert.deepEqual(
    timeouts()
      .map((e) => e.attributes['dns.question.name'])
      .sort(),
    ['t0.ok.podnet', 't1.ok.podnet', 't2.ok.podnet'],
  );
  // ground truth of the netns' conntrack: nothing failed to insert, so no cause is claimed
  const ct = cli.exec('conntrack', ['-S']);
  assert.ok(!/insert_failed=[1-9]/.test(ct), ct);
  for (const e of timeouts()) {
    assert.equal(e.attributes['podnet.dns.timeout.kind'], 'no_response');
    assert.equal(e.attributes['podnet.dns.cause'], undefined);
    assert.equal(e.attributes['podnet.dns.conntrack.insert_failed'], 0);
    // waited at least the 1.5 s window (the sweep decides only after it) and at most until the wait
    // above ended: the first query went out ~2 s (two 1 s digs) before the 4 s wait started
    const waited = Number(e.attributes['podnet.latency.duration']);
    assert.ok(waited >= 1.5 && waited < 7, `waited ${waited} s`);
  }
  await sleep(500); // no late double count
  assert.equal(n(await collect(), M.timeouts) - before, 3);
});

// The conntrack race itself (parallel A/AAAA through a DNAT losing the conntrack insert) could not be
// produced on this 2-CPU machine within the time spent (docs/probes-dns.md): the correlation is shown with
// a forced insert_failed, the counter source replaced by one the test moves at the moment of the query.
test('conntrack diagnosis: a timeout while insert_failed moved carries podnet.dns.cause (forced counter)', async () => {
  let insertFailed = 7;
  const ctx2 = testContext([sideEntity(srv), sideEntity(cli)]);
  const create = createDnsProbe({
    conntrackReader: (e) => (e.netnsInode === cli.inode ? { insertFailed, clashResolve: 0 } : undefined),
  });
  const p2 = await create(
    ctx2,
    dnsProbe.args.parse({ hook: 'auto', timeoutMs: 1500, sweepMs: 200, rateLimit: 1000 }),
  );
  const table = `pnd${process.pid}c`;
  try {
    dig(cli, srv.ipv4, 'a.ok.podnet'); // DNS activity: the netns is sampled from now on
    await sleep(600);
    srv.exec('nft', [
      `add table inet ${table}; add chain inet ${table} in { type filter hook input priority 0; }; add rule inet ${table} in ip saddr ${cli.ipv4} udp dport 53 drop`,
    ]);
    dig(cli, srv.ipv4, 'race.ok.podnet', { time: 1 }); // times out ...
    insertFailed += 1; // ... while insert_failed moves
    await sleep(600);
    dig(cli, srv.ipv4, 'plain.ok.podnet', { time: 1 }); // times out with the counters still
    const ev = (name: string) =>
      ctx2.events.find(
        (e) =>
          e.netns === cli.inode &&
          e.name === 'podnet.dns.timeout' &&
          e.attributes['dns.question.name'] === name,
      );
    assert.ok(await waitFor(() => !!ev('race.ok.podnet') && !!ev('plain.ok.podnet'), 5000));
    const race = ev('race.ok.podnet')!;
    assert.equal(race.attributes['podnet.dns.cause'], 'conntrack_insert_race');
    assert.equal(race.attributes['podnet.dns.conntrack.insert_failed'], 1);
    assert.match(String(race.attributes['podnet.dns.summary']), /likely the conntrack insert race/);
    const plain = ev('plain.ok.podnet')!;
    assert.equal(plain.attributes['podnet.dns.cause'], undefined);
    assert.equal(plain.attributes['podnet.dns.conntrack.insert_failed'], 0);
  } finally {
    try {
      srv.exec('nft', ['delete', 'table', 'inet', table]);
    } catch {}
    await p2.close();
  }
});
