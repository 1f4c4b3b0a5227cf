// Pure parts of capture: the compiled filter (instruction for instruction what tcpdump compiles for the
// same expression, link type and snaplen), the tuple filter of triggered captures (what it never lets
// through from an event attribute), the pcapng block aligner of `--url`, duration and size arguments.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { compileFilter } from '../../receiver/capture/pcap-filter.ts';
import { BlockAligner, interfaceDescription, sectionHeader } from '../../receiver/capture/pcapng.ts';
import { tupleFilter } from '../../receiver/capture/trigger.ts';
import { parseBytesArg, parseDurationArg } from '../../receiver/capture/units.ts';

/** tcpdump's own program (`-ddd`: count, then "code jt jf k" per line) for DLT_RAW, as the socket gets it. */
function tcpdumpProgram(expr: string, snaplen: number): number[][] {
  const out = execFileSync('tcpdump', ['-ddd', '-y', 'RAW', '-s', String(snaplen), expr], {
    encoding: 'utf8',
  });
  const [n, ...lines] = out.trim().split('\n');
  assert.equal(lines.length, Number(n), out);
  return lines.map((l) => l.trim().split(/\s+/).map(Number));
}

/** Our program decoded as struct sock_filter (u16 code, u8 jt, u8 jf, u32 k; little endian). */
function ourProgram(expr: string, snaplen: number): number[][] {
  const b = compileFilter(expr, snaplen).insns;
  const out: number[][] = [];
  for (let o = 0; o < b.length; o += 8)
    out.push([b.readUInt16LE(o), b[o + 2]!, b[o + 3]!, b.readUInt32LE(o + 4)]);
  return out;
}

function assertSameAsTcpdump(expr: string, snaplen = 128): void {
  const ours = ourProgram(expr, snaplen);
  assert.ok(ours.length > 1 || expr === '', `${expr}: ${ours.length} instructions`);
  assert.deepEqual(ours, tcpdumpProgram(expr, snaplen), expr);
}

test('compileFilter: the same program as tcpdump -ddd -y RAW, instruction for instruction', () => {
  for (const expr of [
    '',
    'udp port 53',
    'ip6 and icmp6',
    'tcp[tcpflags] & tcp-rst != 0',
    'host 10.1.0.5 and not port 22',
    'net 10.244.0.0/16 or net fd00:10:244::/56',
  ])
    assertSameAsTcpdump(expr);
  assertSameAsTcpdump('udp port 53', 65535); // the accept verdict is the snaplen
  assert.deepEqual(ourProgram('', 96), [[6, 0, 0, 96]], 'empty filter: ret #snaplen');
});

test('tupleFilter: both directions of a packet or socket tuple, compiled as tcpdump compiles it', () => {
  const f = tupleFilter({
    'source.address': 'fd00::5',
    'destination.address': 'fd00::7',
    'network.transport': 'udp',
    'source.port': 40000,
    'destination.port': 53,
  });
  assert.equal(f, 'host fd00::5 and host fd00::7 and udp and port 40000 and port 53');
  assertSameAsTcpdump(f);
  const s = tupleFilter({
    'network.local.address': '10.1.0.5',
    'network.peer.address': '10.1.0.9',
    'network.transport': 'tcp',
    'network.local.port': 8080,
    'network.peer.port': 51000,
  });
  assert.equal(s, 'host 10.1.0.5 and host 10.1.0.9 and tcp and port 8080 and port 51000');
  assertSameAsTcpdump(s);
});

test('tupleFilter: anything that is not an address, a known transport or a port is left out', () => {
  assert.equal(
    tupleFilter({
      'source.address': '10.0.0.1 or host 1.2.3.4',
      'destination.address': 'evil',
      'network.transport': 'udp or tcp',
      'source.port': 70000,
      'destination.port': '53' as unknown as number,
    }),
    '',
  );
  assert.equal(tupleFilter({ 'source.address': '10.0.0.1', 'network.transport': 'icmp' }), 'host 10.0.0.1');
});

test('BlockAligner passes whole pcapng blocks only, however the stream is cut', () => {
  const whole = Buffer.concat([sectionHeader('t'), interfaceDescription('eth0', 113, 144)]);
  for (let cut = 1; cut < whole.length; cut += 3) {
    const a = new BlockAligner();
    const first = a.push(whole.subarray(0, cut));
    assert.equal(first.length % 4, 0);
    assert.ok(first.length <= cut);
    const rest = a.push(whole.subarray(cut));
    assert.deepEqual(Buffer.concat([first, rest]), whole);
    assert.equal(a.pending, 0);
  }
  assert.throws(() => new BlockAligner().push(Buffer.from('GET / HTTP/1.1\r\n')), /not a pcapng stream/);
});

test('duration and size arguments', () => {
  assert.equal(parseDurationArg('10'), 10_000);
  assert.equal(parseDurationArg('1.5'), 1500);
  assert.equal(parseDurationArg('500ms'), 500);
  assert.equal(parseDurationArg('2m'), 120_000);
  assert.equal(parseDurationArg('soon'), undefined);
  assert.equal(parseBytesArg('1000'), 1000);
  assert.equal(parseBytesArg('64k'), 65_536);
  assert.equal(parseBytesArg('10M'), 10 * 1024 * 1024);
  assert.equal(parseBytesArg('1GiB'), 1024 ** 3);
  assert.equal(parseBytesArg('-5'), undefined);
});
