// /metrics is gzip-compressed when the client asks for it: curl --compressed gets `Content-Encoding: gzip`
// and a body that gzip(1) inflates to an exposition promtool accepts; without Accept-Encoding (or with
// gzip;q=0) the text comes as it is; both carry the same series. A small exposition goes in one piece with
// a Content-Length, a large one is streamed (chunked, no Content-Length): both paths are checked, the second
// with sendText's threshold lowered on a real server. A real Prometheus scraping it (it always asks for
// gzip) is in test/otel/prometheus.test.ts.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { acceptsGzip, sendText } from '../../receiver/server/text-response.ts';

let agent: Agent;

before(async () => {
  agent = await Agent.start({
    configText: `
collection_interval: 1h
server: { address: "127.0.0.1:0" }
probes: { synthetic: { enabled: true, args: { counter_step: 5, gauge_value: 3 } } }
`,
    specs: [],
    extraSpecs: [syntheticSpec],
    env: {},
    // the host only: a small exposition whatever netns other work on this machine has
    entitySource: new StaticEntitySource(),
  });
});

after(async () => {
  await agent?.stop();
});

/** curl in a child process, awaited (a synchronous spawn would block the agent serving it). */
async function curl(
  args: string[],
  url = `${agent.serverUrl}/metrics`,
): Promise<{ headers: string; body: Buffer }> {
  const dir = mkdtempSync(join(tmpdir(), 'pn-gz-'));
  try {
    const r = await promisify(execFile)('curl', ['-sS', '-D', join(dir, 'h'), ...args, url], {
      encoding: 'buffer',
      maxBuffer: 64 * 2 ** 20,
    });
    return { headers: readFileSync(join(dir, 'h'), 'utf8').toLowerCase(), body: r.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function promtool(text: string): void {
  const lint = spawnSync('promtool', ['check', 'metrics'], {
    input: text,
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  assert.equal(lint.status, 0, `promtool check metrics:\n${lint.stdout}${lint.stderr}`);
}

/** Series names with their labels (values change between scrapes of counters; these do not). */
function series(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.slice(0, l.lastIndexOf(' ')))
    .sort();
}

test('Accept-Encoding: gzip gets a gzip body that gzip(1) inflates to a valid exposition', async () => {
  const gz = await curl(['-H', 'Accept-Encoding: gzip']);
  assert.match(gz.headers, /content-encoding: gzip/);
  // small: one piece, its length announced (the gzip bytes, not the text's)
  assert.match(gz.headers, new RegExp(`content-length: ${gz.body.length}\r\n`));
  assert.doesNotMatch(gz.headers, /transfer-encoding/);
  assert.deepEqual([...gz.body.subarray(0, 2)], [0x1f, 0x8b], 'gzip magic');
  const inflated = spawnSync('gzip', ['-dc'], { input: gz.body, maxBuffer: 64 * 2 ** 20 });
  assert.equal(inflated.status, 0, String(inflated.stderr));
  const text = inflated.stdout.toString();
  promtool(text);
  assert.match(text, /^podnet_synthetic_queue_length\{.*\} 3$/m);
  const plain = await curl([]);
  assert.doesNotMatch(plain.headers, /content-encoding/);
  assert.match(plain.headers, new RegExp(`content-length: ${plain.body.length}\r\n`));
  promtool(plain.body.toString());
  assert.deepEqual(series(plain.body.toString()), series(text));
  assert.ok(gz.body.length < plain.body.length / 3, `${gz.body.length} vs ${plain.body.length} bytes`);
  // curl --compressed: its own Accept-Encoding list, decoded by curl.
  const c = await curl(['--compressed']);
  assert.match(c.headers, /content-encoding: gzip/);
  assert.deepEqual(series(c.body.toString()), series(text));
});

test('a body over the threshold is streamed (chunked), gzip or not, and arrives whole', async () => {
  // 5,000 lines of ~40 characters in chunks of 100 lines, with a threshold of 10,000 characters: the first
  // chunks are read ahead, the rest streamed after them; the text must arrive complete and in order.
  const lines = Array.from({ length: 5000 }, (_, i) => `podnet_test_series{i="${i}"} ${i * 7}\n`);
  const expected = lines.join('');
  function* chunks(): Generator<string> {
    for (let i = 0; i < lines.length; i += 100) yield lines.slice(i, i + 100).join('');
  }
  const server = createServer((req, res) => void sendText(req, res, chunks(), 'text/plain', 10_000));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  try {
    const gz = await curl(['-H', 'Accept-Encoding: gzip'], url);
    assert.match(gz.headers, /content-encoding: gzip/);
    assert.match(gz.headers, /transfer-encoding: chunked/);
    assert.doesNotMatch(gz.headers, /content-length/);
    const inflated = spawnSync('gzip', ['-dc'], { input: gz.body, maxBuffer: 64 * 2 ** 20 });
    assert.equal(inflated.status, 0, String(inflated.stderr));
    assert.equal(inflated.stdout.toString(), expected);
    const plain = await curl([], url);
    assert.match(plain.headers, /transfer-encoding: chunked/);
    assert.doesNotMatch(plain.headers, /content-length|content-encoding/);
    assert.equal(plain.body.toString(), expected);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('a Date header, exactly one, of the system clock, on the whole and the streamed path', async () => {
  // sendText writes its own Date (httpDate, no Node timer per second): the clock is date(1)'s, read around
  // the request; one header only (Node's sendDate would add a second).
  const clock = () => Number(spawnSync('date', ['-u', '+%s'], { encoding: 'utf8' }).stdout.trim());
  const server = createServer((req, res) => {
    const n = req.url === '/long' ? 5000 : 10;
    void sendText(req, res, [`${'x'.repeat(40)}\n`.repeat(n)], 'text/plain', 10_000);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (const [path, args] of [
      ['/metrics', []],
      ['/long', []],
      ['/long', ['-H', 'Accept-Encoding: gzip']],
    ] as const) {
      const from = clock();
      const r = await curl([...args], `${base}${path}`);
      const to = clock();
      const dates = r.headers.split('\r\n').filter((l) => l.startsWith('date: '));
      assert.equal(dates.length, 1, `${path}: ${r.headers}`);
      const at = Date.parse(dates[0]!.slice('date: '.length)) / 1000;
      assert.ok(at >= from && at <= to, `${path}: ${dates[0]} not within [${from}, ${to}]`);
    }
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('gzip with q=0 is refused; the accepted spellings', async () => {
  const q0 = await curl(['-H', 'Accept-Encoding: gzip;q=0, identity']);
  assert.doesNotMatch(q0.headers, /content-encoding/);
  assert.ok(acceptsGzip('deflate, gzip;q=0.5'));
  assert.ok(acceptsGzip(['br', 'GZIP']));
  assert.ok(!acceptsGzip('gzip;q=0'));
  assert.ok(!acceptsGzip('br, deflate'));
  assert.ok(!acceptsGzip(undefined));
});

test('HEAD /metrics answers without a body', async () => {
  const r = await promisify(execFile)('curl', [
    '-sS',
    '-I',
    '-H',
    'Accept-Encoding: gzip',
    `${agent.serverUrl}/metrics`,
  ]);
  assert.match(r.stdout, /^HTTP\/1\.1 200/);
});
