// The limits of `podnet capture` and its ways to end, on a netns pair: --count, --max-bytes, --duration,
// SIGINT mid-capture (each leaves a file tshark reads without complaint), `-w -` piped into
// `tcpdump -r -`, SIGKILL leaving no packet socket behind (the netns' /proc/net/packet), and IPv6.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createNetnsPair, readNetnsFile } from '../env/netns.ts';
import { startCapture, tsharkFields } from './tools.ts';

const pair = createNetnsPair({ prefix: 'pncap', tag: 'l' });
const dir = mkdtempSync(`/tmp/pncapl${process.pid}-`);
after(() => {
  pair.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const B = ['--netns', pair.b.name, '--filter', 'udp port 7777'];
const packetsIn = (file: string) => tsharkFields(file, ['udp.length']).rows.length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('--count N stops by itself after N packets', async () => {
  const f = join(dir, 'count.pcapng');
  const c = startCapture([...B, '--count', '10', '-w', f]);
  await c.listening;
  pair.a.sendUdp(pair.b.ipv4, 7777, 50, 64);
  assert.equal(await c.exited, 0, c.stderr);
  assert.match(c.stderr, /10 packets captured .*stopped: count/);
  assert.equal(packetsIn(f), 10);
});

test('--max-bytes keeps the file under the size, whole blocks only', async () => {
  const f = join(dir, 'bytes.pcapng');
  const c = startCapture([...B, '--max-bytes', '3000', '-w', f]);
  await c.listening;
  pair.a.sendUdp(pair.b.ipv4, 7777, 50, 100);
  assert.equal(await c.exited, 0, c.stderr);
  assert.match(c.stderr, /stopped: max-bytes/);
  const size = statSync(f).size;
  assert.ok(size <= 3000 && size > 2500, `file size ${size}`);
  const n = packetsIn(f);
  assert.ok(n > 5 && n < 50, `${n} packets`);
});

test('--duration stops by itself; the file is valid', async () => {
  const f = join(dir, 'duration.pcapng');
  const c = startCapture([...B, '--duration', '1500ms', '-w', f]);
  await c.listening;
  const t0 = Date.now();
  pair.a.sendUdp(pair.b.ipv4, 7777, 5, 64);
  assert.equal(await c.exited, 0, c.stderr);
  const took = Date.now() - t0;
  // 1.5 s from the socket being bound, plus the final ring-block wait and exit; never far longer
  assert.ok(took >= 1300 && took < 6000, `exited after ${took} ms`);
  assert.match(c.stderr, /stopped: duration/);
  assert.equal(packetsIn(f), 5);
});

test('SIGINT mid-capture ends with a valid file holding what was sent', async () => {
  const f = join(dir, 'sigint.pcapng');
  const c = startCapture([...B, '-w', f]);
  await c.listening;
  pair.a.sendUdp(pair.b.ipv4, 7777, 20, 64);
  await sleep(100);
  c.child.kill('SIGINT');
  assert.equal(await c.exited, 0, c.stderr);
  assert.match(c.stderr, /stopped: stopped/);
  assert.equal(packetsIn(f), 20);
});

test('-w - streams pcapng into tcpdump -r -', async () => {
  const c = startCapture([...B, '--count', '30', '-w', '-'], 'pipe');
  const td = spawn('tcpdump', ['-nn', '-r', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  c.child.stdout!.pipe(td.stdin!);
  let out = '';
  let err = '';
  td.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  td.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const tdExit = new Promise<number | null>((r) => td.once('exit', r));
  await c.listening;
  pair.a.sendUdp(pair.b.ipv4, 7777, 30, 64);
  assert.equal(await c.exited, 0, c.stderr);
  assert.equal(await tdExit, 0, err);
  const lines = out.split('\n').filter((l) => l.includes(`> ${pair.b.ipv4}.7777: UDP, length 64`));
  assert.equal(lines.length, 30, out);
});

test('SIGKILL leaves no packet socket in the netns', async () => {
  const sockets = () => readNetnsFile(pair.b.name, '/proc/net/packet').trim().split('\n').length - 1;
  const before = sockets();
  const c = startCapture([...B, '-w', join(dir, 'kill.pcapng')]);
  await c.listening;
  assert.equal(sockets(), before + 1, 'the capture socket is visible in the netns');
  c.child.kill('SIGKILL');
  await c.exited;
  for (let i = 0; i < 50 && sockets() !== before; i++) await sleep(20);
  assert.equal(sockets(), before);
});

test('IPv6: an ip6 filter compiled for the cooked socket keeps the IPv6 datagrams and only them', async () => {
  const f = join(dir, 'v6.pcapng');
  const c = startCapture([
    '--netns',
    pair.b.name,
    '--filter',
    'ip6 and udp port 7777',
    '--count',
    '12',
    '-w',
    f,
  ]);
  await c.listening;
  pair.a.sendUdp(pair.b.ipv4, 7777, 5, 64); // IPv4: excluded by the filter
  pair.a.sendUdp(pair.b.ipv6, 7777, 12, 80);
  assert.equal(await c.exited, 0, c.stderr);
  const rows = tsharkFields(f, ['ipv6.src', 'ipv6.dst', 'udp.length', 'ip.src']).rows;
  assert.equal(rows.length, 12);
  for (const r of rows) assert.deepEqual(r, [pair.a.ipv6, pair.b.ipv6, String(8 + 80), '']);
});
