// dns probe: timeouts the kernel decides itself, without the user-space sweep — a response later than the
// window and a query sent again on the same socket — against a real DNS server (unbound) and a responder of
// the test's own in a test netns pair. Split from dns.test.ts (file size); cleans up netns, processes, nft.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { dnsProbe, M } from '../../probes/dns/dns.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import { counterPoint, histPoint, sideEntity, testContext, waitFor } from '../latency/env.ts';
import { DnsServer } from './server.ts';

const QT = 'podnet.dns.question.type';
const RC = 'podnet.dns.response_code';
let pair: NetnsPair;
let server: DnsServer;
let srv: NetnsPair['a'];
let cli: NetnsPair['b'];

before(async () => {
  removeStaleNetns('pnd');
  pair = createNetnsPair({ prefix: 'pnd', tag: 'k', ipv4Net: '10.253.12', ipv6Net: 'fd00:253:12::' });
  srv = pair.a;
  cli = pair.b;
  server = await DnsServer.start(srv);
});

after(() => {
  server?.stop();
  pair?.cleanup();
});

// Timeouts the kernel decides itself (the sweep is made too slow to get there first): a response that
// comes after the window (a responder 600 ms late, window 200 ms), and the same (tuple, id) sent again after the
// window (a resolver's retry on the same socket; the first send is dropped by an nft rule).
test('timeouts decided in the kernel: a late response and a re-sent query', async () => {
  const ctx3 = testContext([sideEntity(srv), sideEntity(cli)]);
  const p3 = await dnsProbe.create(
    ctx3,
    dnsProbe.args.parse({
      hook: 'auto',
      timeoutMs: 200,
      sweepMs: 60_000,
      rateLimit: 1000,
      conntrackDiagnosis: false,
    }),
  );
  const table = `pnd${process.pid}q`;
  try {
    // late: a responder of the test's own, on a second address of the server side, answers NXDOMAIN
    // 600 ms after the query (3× the window). No netem on this kernel; the tbf used before delayed the
    // answer by the tokens it lacked, which refilled during the client's turnaround between two queries,
    // so under load the answer was not late at all (CI, load ~10: no late_response event).
    const lateIp = srv.ipv4.replace(/\.\d+$/, '.9');
    srv.exec('ip', ['addr', 'add', `${lateIp}/24`, 'dev', srv.ifname]);
    cli.exec('ip', ['neigh', 'replace', lateIp, 'lladdr', srv.mac, 'dev', cli.ifname, 'nud', 'permanent']);
    const responder = srv.spawn(
      process.execPath,
      [
        '-e',
        `const d=require('dgram').createSocket('udp4');d.on('message',(q,r)=>{const a=Buffer.from(q);a[2]|=0x80;a[3]=(a[3]&0xf0)|0x80|3;setTimeout(()=>d.send(a,r.port,r.address),600)});d.bind(53,'${lateIp}',()=>console.log('ready'))`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let waited: number;
    try {
      await new Promise<void>((res, rej) => {
        responder.stdout?.once('data', () => res());
        responder.once('exit', (code) => rej(new Error(`late responder exited ${code}`)));
      });
      // an A query for late.ok.podnet (id 4243); prints how long the answer took, as the client saw it
      const q = `[${4243 >> 8},${4243 & 255},1,0,0,1,0,0,0,0,0,0,4,108,97,116,101,2,111,107,6,112,111,100,110,101,116,0,0,1,0,1]`;
      waited = Number(
        cli.exec(process.execPath, [
          '-e',
          `const d=require('dgram').createSocket('udp4');const t=Date.now();d.on('message',()=>{console.log(Date.now()-t);process.exit(0)});d.send(Buffer.from(${q}),53,'${lateIp}');setTimeout(()=>process.exit(1),5000)`,
        ]),
      );
    } finally {
      responder.kill();
    }
    assert.ok(waited >= 600, `the client waited ${waited} ms`);
    // re-sent: the same datagram twice from one socket, 400 ms apart; the first is dropped
    srv.exec('nft', [
      `add table inet ${table}; add chain inet ${table} in { type filter hook input priority 0; }; add rule inet ${table} in ip saddr ${cli.ipv4} udp dport 53 counter drop`,
    ]);
    const send = (id: number) =>
      `const d=require('dgram').createSocket('udp4');d.bind(0,()=>{const q=Buffer.from([${id >> 8},${id & 255},1,0,0,1,0,0,0,0,0,0,5,114,101,116,114,121,2,111,107,6,112,111,100,110,101,116,0,0,1,0,1]);` +
      `d.send(q,53,'${srv.ipv4}',()=>{setTimeout(()=>{require('child_process').execFileSync('ip',['netns','exec','${srv.name}','nft','delete','table','inet','${table}']);d.send(q,53,'${srv.ipv4}');},400)});d.on('message',()=>{console.log('answered');process.exit(0)});setTimeout(()=>process.exit(0),2000)})`;
    const out = cli.exec(process.execPath, ['-e', send(4242)]);
    assert.match(out, /answered/, 'the second send was answered');
    const ev = (name: string) =>
      ctx3.events.find(
        (e) =>
          e.netns === cli.inode &&
          e.name === 'podnet.dns.timeout' &&
          e.attributes['dns.question.name'] === name,
      );
    // without the conntrack diagnosis, kernel-decided timeouts are emitted as they are read
    assert.ok(
      await waitFor(() => !!ev('late.ok.podnet') && !!ev('retry.ok.podnet'), 3000),
      JSON.stringify(
        ctx3.events.map((e) => [
          e.name,
          e.attributes['dns.question.name'],
          e.attributes['podnet.dns.timeout.kind'],
        ]),
      ),
    );
    assert.equal(ev('late.ok.podnet')!.attributes['podnet.dns.timeout.kind'], 'late_response');
    assert.equal(ev('late.ok.podnet')!.attributes['podnet.dns.response_code'], 'NXDOMAIN'); // no such record
    assert.equal(ev('retry.ok.podnet')!.attributes['podnet.dns.timeout.kind'], 'requery');
    const pts = [...(await p3.collect([]))];
    assert.equal(counterPoint(pts, M.timeouts, cli.inode, { [QT]: 'A' }), 2);
    // the late response is a response too (with its latency), and so is the answer to the re-sent query
    const h = histPoint(pts, M.duration, cli.inode, {
      [RC]: 'NXDOMAIN',
      [QT]: 'A',
      'network.transport': 'udp',
    });
    assert.equal(h?.count, 2);
  } finally {
    try {
      srv.exec('nft', ['delete', 'table', 'inet', table]);
    } catch {}
    await p3.close();
  }
});
