// The limits of `podnet capture` and its ways to end, on a netns pair: --count, --max-bytes, --duration,
// SIGINT mid-capture (each leaves a file tshark reads without complaint), `-w -` piped into
// `tcpdump -r -`, SIGKILL leaving no packet socket behind (the netns' /proc/net/packet), and IPv6.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
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

/** The file's blocks as the pcapng spec frames them (type, total length), read here, not by podnet. */
function blocks(file: string): { type: number; length: number }[] {
  const b = readFileSync(file);
  const out: { type: number; length: number }[] = [];
  for (let o = 0; o < b.length; ) {
    const length = b.readUInt32LE(o + 4);
    assert.ok(length >= 12 && length % 4 === 0 && o + length <= b.length, `block at ${o}: length ${length}`);
    assert.equal(b.readUInt32LE(o + length - 4), length, `block at ${o}: trailing length`);
    out.push({ type: b.readUInt32LE(o), length });
    o += length;
  }
  return out;
}
const EPB = 6;
const ISB = 5;

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
  assert.ok(size <= 3000, `file size ${size}`);
  // the capture stopped at the first packet that did not fit: every packet block has one size (equal
  // datagrams, headers only), and one more would have crossed 3000 bytes (the statistics block closing
  // the file is written only when it fits, so it is not counted against the next packet)
  const bs = blocks(f);
  const epb = bs.filter((x) => x.type === EPB);
  assert.equal(new Set(epb.map((x) => x.length)).size, 1, JSON.stringify(bs));
  const isb = bs.at(-1)!.type === ISB ? bs.at(-1)!.length : 0;
  assert.ok(
    size - isb + epb[0]!.length > 3000,
    `${size} bytes: room for one more ${epb[0]!.length}-byte packet`,
  );
  assert.equal(packetsIn(f), epb.length);
  assert.ok(epb.length < 50, 'not every datagram fits in 3000 bytes');
});

test('--duration stops by itself; the file is valid', async () => {
  const f = join(dir, 'duration.pcapng');
  const tSpawn = Date.now();
  const c = startCapture([...B, '--duration', '1500ms', '-w', f]);
  await c.listening;
  const tListen = Date.now();
  pair.a.sendUdp(pair.b.ipv4, 7777, 5, 64);
  assert.equal(await c.exited, 0, c.stderr);
  // the timer starts after the spawn, so never less than 1.5 s from it
  assert.ok(Date.now() - tSpawn >= 1500, `exited ${Date.now() - tSpawn} ms after the spawn`);
  // and before the "listening" line: from that line, 1.5 s + the final ring-block wait (50 ms) + exit at
  // most; the other 4.45 s are for the loaded 2-core machine (a capture ignoring --duration never exits)
  const took = Date.now() - tListen;
  assert.ok(took < 6000, `exited ${took} ms after listening`);
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
