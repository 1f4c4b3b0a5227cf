// `podnet capture --pod` in a real containerd pod: 50 UDP datagrams to port 7777 (each a different size)
// and a TCP exchange; the UDP capture, read by tshark and tcpdump, holds exactly the 50 datagrams with
// the right addresses and payload sizes and nothing else; a concurrent TCP capture holds the exchange.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { startCapture, tcpdumpLines, tsharkFields } from './tools.ts';

let env: CriEnv;
let web: TestPod;
let client: TestPod;
const dir = mkdtempSync(`/tmp/pncap${process.pid}-`);

before(async () => {
  env = await startCriEnv();
  web = await env.runPod({
    name: 'web',
    namespace: 'shop',
    containers: [{ name: 'httpd', command: ['httpd', '-f', '-p', '8080', '-h', '/var/www'] }],
  });
  client = await env.runPod({ name: 'client', namespace: 'shop', containers: [{ name: 'sh' }] });
});

after(async () => {
  await env?.teardown();
  rmSync(dir, { recursive: true, force: true });
});

async function sendUdp(to: string, sizes: readonly number[]): Promise<void> {
  const s = createSocket('udp4');
  for (const n of sizes)
    await new Promise<void>((res, rej) =>
      s.send(Buffer.alloc(n, 0x61), 7777, to, (e) => (e ? rej(e) : res())),
    );
  s.close();
}

test('capture --pod: exactly the 50 filtered datagrams, read by tshark and tcpdump; a TCP capture beside it', async () => {
  const udpFile = join(dir, 'udp.pcapng');
  const tcpFile = join(dir, 'tcp.pcapng');
  const common = ['--pod', 'shop/web', '--cri-endpoint', env.endpoint, '--duration', '20s'];
  const udp = startCapture([...common, '--filter', 'udp port 7777', '-w', udpFile]);
  const tcp = startCapture([...common, '--filter', 'tcp port 8080', '--snaplen', '1500', '-w', tcpFile]);
  await Promise.all([udp.listening, tcp.listening]);

  const sizes = Array.from({ length: 50 }, (_, i) => 20 + i * 7); // 20..363 bytes of payload
  await sendUdp(web.ip, sizes);
  let body = '';
  for (let i = 0; i < 50 && !body.includes('podnet test'); i++) {
    body = (await env.exec(client, ['wget', '-q', '-O', '-', `http://${web.ip}:8080/index.html`])).stdout;
    if (!body) await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(body, /podnet test/, 'the TCP exchange happened');
  udp.child.kill('SIGINT');
  tcp.child.kill('SIGINT');
  assert.equal(await udp.exited, 0, udp.stderr);
  assert.equal(await tcp.exited, 0, tcp.stderr);

  const rows = tsharkFields(udpFile, [
    'frame.interface_name',
    'ip.src',
    'ip.dst',
    'udp.dstport',
    'udp.length',
    'frame.packet_flags_direction',
    'frame.len',
    'frame.cap_len',
  ]).rows;
  assert.equal(rows.length, 50, `tshark: ${rows.map((r) => r.join(' ')).join('\n')}`);
  for (const [i, r] of rows.entries()) {
    const [ifname, src, dst, dport, udpLen, dir, frameLen, capLen] = r;
    assert.equal(ifname, 'eth0');
    assert.equal(src, env.gateway);
    assert.equal(dst, web.ip);
    assert.equal(dport, '7777');
    assert.equal(Number(udpLen), 8 + sizes[i]!, `datagram ${i} payload size`);
    assert.equal(dir, '0x00000001', 'inbound');
    // cooked header (16) + IPv4 (20) + UDP (8) + payload on the wire; by default the file keeps the
    // headers and not one payload byte
    assert.equal(Number(frameLen), 16 + 28 + sizes[i]!);
    assert.equal(Number(capLen), 16 + 28, `datagram ${i}: headers only`);
  }
  const lines = tcpdumpLines(udpFile);
  assert.equal(lines.length, 50);
  assert.ok(
    lines.every((l) => l.includes(`> ${web.ip}.7777: UDP, length`)),
    lines.join('\n'),
  );

  // the TCP exchange is in the other capture (SYN from the client, the HTTP answer from the server)
  const tcpRows = tsharkFields(tcpFile, [
    'ip.src',
    'ip.dst',
    'tcp.flags.syn',
    'tcp.flags.ack',
    'http.response.code',
  ]).rows;
  assert.ok(
    tcpRows.some(([s, d, syn, ack]) => s === client.ip && d === web.ip && syn === '1' && ack === '0'),
  );
  assert.ok(
    tcpRows.some(([s, , , , code]) => s === web.ip && code === '200'),
    JSON.stringify(tcpRows),
  );
  assert.equal(tsharkFields(tcpFile, ['frame.number'], 'udp').rows.length, 0);
});

test('capture --pod: an unknown pod and a bad filter fail with a clear message', async () => {
  const a = startCapture(['--pod', 'shop/nope', '--cri-endpoint', env.endpoint, '-w', join(dir, 'x')]);
  assert.equal(await a.exited, 1);
  assert.match(a.stderr, /no pod shop\/nope on this node/);
  const b = startCapture(['--pod', 'shop/web', '--filter', 'udp port', '-w', join(dir, 'y')]);
  assert.equal(await b.exited, 2);
  assert.match(b.stderr, /invalid filter "udp port": .*syntax error/);
});
