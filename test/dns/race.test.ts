// The conntrack race for real: two threads send the A and AAAA queries of a round at the same moment over
// one UDP socket to a Service-like VIP that an nft rule DNATs to one of two unbound addresses, 4,000
// rounds. The netns' conntrack counters (`conntrack -S`, the ground truth) show the clashes; the probe's
// ctnetlink reader reads the same values. On 6.18 the kernel resolves these clashes (clash_resolve moves,
// insert_failed does not, nothing is dropped): every query is answered and no timeout is blamed. On a
// kernel that drops the loser (insert_failed moves), its queries time out and carry the cause.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { ctnetlinkReader } from '../../probes/dns/diagnosis.ts';
import { type DnsArgs, dnsProbe, M } from '../../probes/dns/dns.ts';
import type { Probe } from '../../receiver/probe/types.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import { counterPoint, sideEntity, sleep, type TestContext, testContext, waitFor } from '../latency/env.ts';
import { DnsServer } from './server.ts';

const VIP = '10.96.0.10';
const ROUNDS = 4000;
let pair: NetnsPair;
let server: DnsServer;
let ctx: TestContext;
let probe: Probe<DnsArgs>;
let dir: string;
let backend2: string;

const ctStats = (ns: string) => {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'conntrack', '-S'], { encoding: 'utf8' });
  const sum = (k: string) =>
    [...out.matchAll(new RegExp(`${k}=(\\d+)`, 'g'))].reduce((a, m) => a + Number(m[1]), 0);
  return { insertFailed: sum('insert_failed'), clashResolve: sum('clash_resolve') };
};

before(async () => {
  removeStaleNetns('pnd');
  pair = createNetnsPair({ prefix: 'pnd', tag: 'r', ipv4Net: '10.253.11', ipv6Net: 'fd00:253:11::' });
  const { a: srv, b: cli } = pair;
  backend2 = '10.253.11.3';
  srv.exec('ip', ['addr', 'add', `${backend2}/24`, 'dev', srv.ifname]);
  cli.exec('ip', ['neigh', 'replace', backend2, 'lladdr', srv.mac, 'dev', cli.ifname, 'nud', 'permanent']);
  cli.exec('ip', ['route', 'add', 'default', 'via', srv.ipv4]);
  cli.exec('nft', [
    `add table ip pndrace; add chain ip pndrace out { type nat hook output priority -100; }; add rule ip pndrace out ip daddr ${VIP} udp dport 53 dnat to numgen random mod 2 map { 0 : ${srv.ipv4}, 1 : ${backend2} }`,
  ]);
  server = await DnsServer.start(srv, { extraIpv4: [backend2] });
  ctx = testContext([sideEntity(srv), sideEntity(cli)]);
  probe = await dnsProbe.create(
    ctx,
    dnsProbe.args.parse({ hook: 'auto', timeoutMs: 1500, sweepMs: 200, rateLimit: 10000 }),
  );
  dir = mkdtempSync(join(tmpdir(), 'pndrace-'));
  execFileSync('clang', [
    '-O2',
    '-pthread',
    '-o',
    join(dir, 'race'),
    new URL('./fixtures/race.c', import.meta.url).pathname,
  ]);
});

after(async () => {
  await probe?.close();
  server?.stop();
  pair?.cleanup(); // the nft table goes with the netns
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('parallel A/AAAA over one socket through a DNAT: real clashes, read like conntrack -S; timeouts only if dropped', async () => {
  const cli = pair.b;
  const before = ctStats(cli.name);
  // Batches of ROUNDS until conntrack counted a clash (at most 5): the two threads must reach conntrack
  // at the same moment, which a loaded machine can keep from happening for a whole batch (CI under load:
  // no clash in 4,000 rounds once).
  let sent = 0;
  let afterCt = before;
  for (
    let batch = 0;
    batch < 5 && afterCt.clashResolve + afterCt.insertFailed === before.clashResolve + before.insertFailed;
    batch++
  ) {
    // asynchronous: this event loop keeps reading unbound's reply log (a full pipe would stall the server)
    const { stdout } = await promisify(execFile)(
      'ip',
      ['netns', 'exec', cli.name, join(dir, 'race'), VIP, String(ROUNDS)],
      { encoding: 'utf8' },
    );
    assert.equal(Number(stdout), 2 * ROUNDS);
    sent += Number(stdout);
    afterCt = ctStats(cli.name);
  }
  const clashes = afterCt.clashResolve - before.clashResolve;
  const failed = afterCt.insertFailed - before.insertFailed;
  assert.ok(
    clashes + failed > 0,
    `no conntrack clash in ${sent / 2} rounds (clash_resolve and insert_failed did not move)`,
  );
  // the probe's reader reads what conntrack -S reads
  const reader = ctnetlinkReader(ctx.entities);
  try {
    assert.deepEqual(reader.read(sideEntity(cli)), afterCt);
  } finally {
    reader.close();
  }
  await sleep(2500); // past the timeout window: every unanswered query is decided
  const p = await probe.collect([]);
  const n = (metric: string) => counterPoint(p, metric, cli.inode, {});
  assert.equal(n(M.queries), sent);
  await waitFor(() => server.replies.length >= n(M.responses), 2000);
  // On a mismatch, say where the difference went: a reply later than timeoutMs counts as a timeout
  // (the probe's definition), not as a response.
  assert.equal(
    n(M.responses),
    server.count(cli.ipv4),
    `responses = replies unbound logged (timeouts ${n(M.timeouts)}, clash_resolve +${clashes}, insert_failed +${failed}, timeout events: ${JSON.stringify(
      ctx.events
        .filter((e) => e.netns === cli.inode && e.name === 'podnet.dns.timeout')
        .map((e) => e.attributes),
      (_k, v) => (typeof v === 'bigint' ? String(v) : v),
    )})`,
  );
  assert.equal(n(M.timeouts), sent - n(M.responses));
  // the client's netns only: another run of the dns tests at the same time has timeouts too (netns 0 here)
  const timeouts = ctx.events.filter((e) => e.netns === cli.inode && e.name === 'podnet.dns.timeout');
  if (failed === 0) {
    // 6.18: clashes resolved, nothing dropped, nothing to blame
    assert.equal(n(M.timeouts), 0);
    assert.equal(timeouts.length, 0);
  } else {
    assert.ok(timeouts.some((e) => e.attributes['podnet.dns.cause'] === 'conntrack_insert_race'));
  }
  console.log(`conntrack: clash_resolve +${clashes}, insert_failed +${failed}; ${n(M.timeouts)} timeouts`);
});
