// The local server as a real `podnet run` process inside a netns of our own (veth pair pnr<pid>sa ↔
// pnr<pid>sb, 10.250.0.1 ↔ 10.250.0.2); every client request comes from the other netns ("the network")
// or from loopback inside podnet's netns, so no traffic leaves this machine's test namespaces.
// - default config: listens on 127.0.0.1:9464 only; the network gets connection refused;
// - bound to 10.250.0.1 with a bearer token and TLS (self-signed cert made here with openssl): HTTPS
//   with the right CA works, no/wrong token → 401 (also on /metrics and /events), /healthz stays open, plain
//   HTTP fails; a rotated token file applies without a restart; reload to token-only works;
// - a token or cert file that cannot be read is a precise startup error, and a reload error that keeps the
//   running server;
// - /events cannot read files or run commands: traversal, shell metacharacters, huge and repeated
//   parameters, odd encodings — only 400s or event JSON, never file contents, no file created.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { probeSpecs } from '../../probes/registry.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns } from '../env/netns.ts';
import { NODE, PodnetProcess, probesOff } from './lib.ts';

const dir = mkdtempSync(join(tmpdir(), `pnr${process.pid}-sec-`));
const tokenFile = join(dir, 'token');
const certFile = join(dir, 'cert.pem');
const keyFile = join(dir, 'key.pem');
const caFile = certFile;
const TOKEN = 'tok-3f9a1c0e5b7d4e21a8c6';
const canary = join(dir, 'pwned');

let pair: NetnsPair;
const procs: PodnetProcess[] = [];

const PROBES = probesOff(
  probeSpecs.map((s) => s.name),
  'synthetic: { enabled: true, args: { event_rate_per_sec: 20 } }',
);

before(() => {
  removeStaleNetns('pnr');
  pair = createNetnsPair({ prefix: 'pnr', tag: 's' });
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=podnet-test',
      '-addext',
      `subjectAltName=IP:${pair.a.ipv4}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
});

after(async () => {
  for (const p of procs) await p.stop();
  pair?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function start(yaml: string): Promise<PodnetProcess> {
  const p = await PodnetProcess.start(yaml, { netns: pair.a.name });
  procs.push(p);
  return p;
}

interface Curl {
  code: number; // HTTP status, 0 = no HTTP answer
  body: string;
  exit: number;
}

/** curl from a netns (default: the client side b). */
function curl(url: string, args: readonly string[] = [], netns = pair.b.name): Curl {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      netns,
      'curl',
      '-sS',
      '--max-time',
      '5',
      '--path-as-is',
      '-o',
      '-',
      '-w',
      '\n%{http_code}',
      ...args,
      url,
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const out = r.stdout ?? '';
  const i = out.lastIndexOf('\n');
  return { code: Number(out.slice(i + 1)) || 0, body: out.slice(0, i), exit: r.status ?? -1 };
}

describe('loopback-only by default', () => {
  test('the embedded default address answers on 127.0.0.1 inside its netns and refuses the network', async () => {
    const p = await start(`collection_interval: 1s\nprobes: ${PROBES}\n`);
    assert.equal(p.url, 'http://127.0.0.1:9464');
    assert.doesNotMatch(p.stderr, /non-loopback/);
    const local = curl('http://127.0.0.1:9464/healthz', [], pair.a.name);
    assert.equal(local.code, 200, JSON.stringify(local));
    const remote = curl(`http://${pair.a.ipv4}:9464/healthz`);
    assert.equal(remote.code, 0);
    assert.equal(remote.exit, 7, `curl should fail to connect: ${JSON.stringify(remote)}`);
    // podnet's own netns sees its address as local too: still nothing on 10.250.0.1.
    assert.equal(curl(`http://${pair.a.ipv4}:9464/healthz`, [], pair.a.name).exit, 7);
    await p.stop();
  });
});

describe('bound to a veth address with bearer token and TLS', () => {
  let p: PodnetProcess;
  let base: string;
  before(async () => {
    p = await start(`collection_interval: 500ms
probes: ${PROBES}
server:
  address: "${pair.a.ipv4}:9464"
  bearer_token_file: ${tokenFile}
  tls: { cert_file: ${certFile}, key_file: ${keyFile} }
`);
    base = `https://${pair.a.ipv4}:9464`;
    assert.equal(p.url, base);
    assert.match(p.stderr, /non-loopback address, protected by bearer token \+ TLS/);
  });

  const auth = (t = TOKEN) => ['--cacert', caFile, '-H', `Authorization: Bearer ${t}`];

  test('HTTPS with the token: /status, /metrics, /events, /inspect', () => {
    const s = curl(`${base}/status`, auth());
    assert.equal(s.code, 200, JSON.stringify(s).slice(0, 500));
    const st = JSON.parse(s.body) as { server: { tls: boolean; bearerToken: boolean; url: string } };
    assert.deepEqual(
      { tls: st.server.tls, bearerToken: st.server.bearerToken },
      { tls: true, bearerToken: true },
    );
    const m = curl(`${base}/metrics`, auth());
    assert.equal(m.code, 200);
    assert.match(m.body, /podnet_synthetic_/);
    assert.equal(curl(`${base}/inspect`, auth()).code, 200);
    const e = curl(`${base}/events?follow=0&recent=1`, auth());
    assert.equal(e.code, 200);
  });

  test('no token, a wrong token, another scheme: 401 on every endpoint but /healthz and /readyz', () => {
    for (const path of ['/status', '/metrics', '/events?follow=0', '/inspect', '/nope']) {
      for (const args of [
        ['--cacert', caFile],
        auth('wrong'),
        auth(`${TOKEN}x`),
        auth(TOKEN.slice(0, -1)),
        ['--cacert', caFile, '-H', `Authorization: Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`],
        ['--cacert', caFile, '-H', `Authorization: ${TOKEN}`],
        ['--cacert', caFile, '-H', 'Authorization: Bearer'],
      ]) {
        const r = curl(`${base}${path}`, args);
        assert.equal(r.code, 401, `${path} ${args.join(' ')}: ${JSON.stringify(r)}`);
        assert.doesNotMatch(r.body, /podnet_|"probes"/);
      }
    }
    const h = curl(`${base}/healthz`, ['--cacert', caFile]);
    assert.equal(h.code, 200);
    assert.equal(h.body, 'ok\n');
    // kubelet's readiness probe carries no token either
    const ready = curl(`${base}/readyz`, ['--cacert', caFile]);
    assert.equal(ready.code, 200, JSON.stringify(ready));
    assert.equal(ready.body, 'ready\n');
  });

  test('TLS is required and verifiable: plain HTTP fails, an unknown CA is refused', () => {
    const plain = curl(`http://${pair.a.ipv4}:9464/status`, ['-H', `Authorization: Bearer ${TOKEN}`]);
    assert.notEqual(plain.code, 200, JSON.stringify(plain));
    const noCa = curl(`${base}/status`, ['-H', `Authorization: Bearer ${TOKEN}`]);
    assert.equal(noCa.exit, 60, `self-signed cert must not verify without --cacert: ${JSON.stringify(noCa)}`);
  });

  test('a rotated token file applies without a restart', async () => {
    const next = 'tok-rotated-51c2e09d';
    writeFileSync(tokenFile, next);
    try {
      assert.equal(curl(`${base}/status`, auth(next)).code, 200);
      assert.equal(curl(`${base}/status`, auth()).code, 401);
      // An empty file (a Secret being rewritten) keeps the last good token.
      writeFileSync(tokenFile, '');
      assert.equal(curl(`${base}/status`, auth(next)).code, 200);
    } finally {
      writeFileSync(tokenFile, TOKEN);
    }
    assert.equal(curl(`${base}/status`, auth()).code, 200);
  });

  test('reload: an unreadable key file is rejected and the running server stays; token-only applies', async () => {
    const listening = p.urls.length;
    p.rewriteConfig(`collection_interval: 500ms
probes: ${PROBES}
server:
  address: "${pair.a.ipv4}:9464"
  bearer_token_file: ${tokenFile}
  tls: { cert_file: ${certFile}, key_file: ${join(dir, 'missing.pem')} }
`);
    await p.waitForLog(
      /"message":"server\.tls\.key_file: cannot read [^"]*missing\.pem: ENOENT.*"msg":"config reload failed to apply"/,
    );
    assert.equal(curl(`${base}/status`, auth()).code, 200, 'the running server still answers');
    p.rewriteConfig(`collection_interval: 500ms
probes: ${PROBES}
server: { address: "${pair.a.ipv4}:9464", bearer_token_file: ${tokenFile} }
`);
    const deadline = Date.now() + 10_000;
    while (p.urls.length === listening && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(p.url, `http://${pair.a.ipv4}:9464`);
    assert.equal(curl(`${p.url}/status`, ['-H', `Authorization: Bearer ${TOKEN}`]).code, 200);
    assert.equal(curl(`${p.url}/status`).code, 401);
  });
});

describe('startup errors', () => {
  test('a missing token file, an empty token, a cert that is not PEM: exit 1 naming the key and path', async () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '  \n');
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate');
    for (const [server, re] of [
      [
        `{ bearer_token_file: ${join(dir, 'nope')} }`,
        /server\.bearer_token_file: cannot read .*nope: ENOENT/,
      ],
      [`{ bearer_token_file: ${empty} }`, /server\.bearer_token_file: .*empty is empty/],
      [`{ tls: { cert_file: ${junk}, key_file: ${keyFile} } }`, /server\.tls: cannot use .*junk\.pem/],
      [`{ tls: { cert_file: ${certFile} } }`, /server\.tls\.key_file/],
    ] as const) {
      const p = await PodnetProcess.start(`probes: ${PROBES}\nserver: ${server}\n`, {
        netns: pair.a.name,
        waitForServer: false,
      });
      procs.push(p);
      const r = await p.waitExit(30_000);
      assert.notEqual(r.code, 0);
      assert.match(p.stderr, re);
    }
  });
});

describe('/events parameters are data, never paths or commands', () => {
  let p: PodnetProcess;
  before(async () => {
    p = await start(`collection_interval: 500ms
probes: ${PROBES}
server: { address: "${pair.a.ipv4}:0", bearer_token_file: ${tokenFile} }
`);
    // Some events to filter.
    await new Promise((r) => setTimeout(r, 1500));
  });
  const bearer = () => ['-H', `Authorization: Bearer ${TOKEN}`];

  test('traversal, shell metacharacters, huge and repeated parameters, odd encodings', () => {
    const cmd = `touch ${canary}`;
    const nasty = [
      '../../../../etc/passwd',
      '/etc/passwd',
      'file:///etc/passwd',
      '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '..%252f..%252fetc%252fpasswd',
      '%c0%ae%c0%ae/etc/passwd',
      `$(${cmd})`,
      `\`${cmd}\``,
      `;${cmd};`,
      `|${cmd}`,
      `&&${cmd}`,
      '%00/etc/passwd',
      '%0a%0dSet-Cookie:x=1',
      '%ff%fe%fd',
      '{"$ne":null}',
      '.*',
      '\\x00',
    ];
    const bodies: string[] = [];
    const check = (path: string, ok: readonly number[] = [200, 400]) => {
      const r = curl(`${p.url}${path}`, [...bearer(), '--globoff']);
      assert.ok(ok.includes(r.code), `${path}: HTTP ${r.code} ${r.body.slice(0, 200)}`);
      bodies.push(r.body);
      return r;
    };
    for (const v of nasty) {
      const q = /%/.test(v) ? v : encodeURIComponent(v);
      for (const k of ['pod', 'name']) {
        const r = check(`/events?follow=0&recent=1&${k}=${q}`);
        if (r.code === 200) assert.equal(r.body, '', `${k}=${v} matched events`);
      }
      check(`/events?follow=0&${q}=1`, [400]);
      check(`/events?follow=${q}`, [400]);
    }
    // Repeated parameters (first wins for pod/name; no error, no crash).
    check(`/events?follow=0&recent=1${'&pod=a'.repeat(200)}`);
    check('/events?follow=0&recent=1&name=x&name=../../etc/passwd');
    // Huge values: over the parameter limit → 400; over the header limit → 431 (Node's parser).
    check(`/events?follow=0&pod=${'a'.repeat(257)}`, [400]);
    check(`/events?follow=0&pod=${'a'.repeat(20_000)}`, [431]);
    check(`/events?${'x=1&'.repeat(3000)}follow=0`, [400, 431]);
    // Paths: traversal and encodings outside /events.
    for (const path of [
      '/../../etc/passwd',
      '/events/../../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '//etc/passwd',
      '/events%00/etc/passwd',
      '/metrics/../etc/shadow',
      '/status;cat%20/etc/passwd',
    ])
      check(path, [200, 400, 404]);
    for (const b of bodies) {
      assert.doesNotMatch(b, /root:.*:0:0:/, 'file contents leaked');
      assert.doesNotMatch(b, /uid=\d+/);
    }
    assert.equal(existsSync(canary), false, 'a command ran');
    // Other methods are refused.
    for (const m of ['POST', 'PUT', 'DELETE']) {
      const r = curl(`${p.url}/events`, [...bearer(), '-X', m, '--data', `file=/etc/passwd`]);
      assert.equal(r.code, 405);
    }
    // The server is still fine.
    assert.equal(curl(`${p.url}/healthz`).code, 200);
    const filtered = curl(`${p.url}/events?follow=0&recent=1&name=podnet.synthetic.anomaly`, bearer());
    assert.equal(filtered.code, 200);
    assert.match(filtered.body, /"name":"podnet.synthetic.anomaly"/);
  });

  test('a raw request with an absolute URL or a bogus request line gets an HTTP error, not a crash', () => {
    for (const line of [
      'GET http://evil.example/etc/passwd HTTP/1.1',
      'GET file:///etc/passwd HTTP/1.1',
      'GET /events?follow=0&pod=%%% HTTP/1.1',
      `GET /${'\u00e9'.repeat(10)} HTTP/1.1`,
      'GARBAGE',
    ]) {
      // A raw TCP client (node, inside the client netns): the request line goes out byte for byte.
      const script = `const s = require('net').connect(${new URL(p.url).port}, '${pair.a.ipv4}', () => s.end(process.argv[1] + '\\r\\nHost: x\\r\\nAuthorization: Bearer ${TOKEN}\\r\\nConnection: close\\r\\n\\r\\n'));
let out = ''; s.on('data', (d) => { out += d; }); s.on('close', () => process.stdout.write(out)); s.on('error', (e) => { process.stdout.write('ERR ' + e.code); });`;
      const r = spawnSync('ip', ['netns', 'exec', pair.b.name, NODE, '-e', script, line], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      assert.doesNotMatch(r.stdout, /root:.*:0:0:/);
      assert.match(r.stdout, /^HTTP\/1\.1 (200|400|404) /, `${line}: ${r.stdout.slice(0, 200)}`);
    }
    assert.equal(curl(`${p.url}/healthz`).code, 200);
    assert.equal(p.exited, false);
  });
});
