// Pure decoding helpers of receiver/kit/ebpf: the 40-byte tuple, attribute builders, state and transport
// names, kallsyms ranges.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  packetAttributes,
  readTuple,
  socketAttributes,
  TUPLE_SIZE,
  tcpStateName,
  transportName,
} from '../../receiver/kit/ebpf/decode.ts';
import { symbolRanges } from '../../receiver/kit/ebpf/symbols.ts';

function tuple(
  family: number,
  s: number[],
  d: number[],
  sport: number,
  dport: number,
  l4: number,
  state = 0,
) {
  const b = new DataView(new ArrayBuffer(8 + TUPLE_SIZE));
  for (const [i, x] of s.entries()) b.setUint8(8 + i, x);
  for (const [i, x] of d.entries()) b.setUint8(8 + 16 + i, x);
  b.setUint16(8 + 32, sport, true);
  b.setUint16(8 + 34, dport, true);
  b.setUint16(8 + 36, family, true);
  b.setUint8(8 + 38, l4);
  b.setUint8(8 + 39, state);
  return readTuple(b, 8);
}

test('IPv4 and IPv6 tuples decode with host-order ports', () => {
  const t4 = tuple(2, [10, 250, 0, 1], [10, 250, 0, 2], 54321, 80, 6, 1);
  assert.deepEqual(t4, {
    family: 2,
    saddr: '10.250.0.1',
    daddr: '10.250.0.2',
    sport: 54321,
    dport: 80,
    l4proto: 6,
    state: 1,
  });
  const v6 = [0xfd, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
  const t6 = tuple(10, v6, [0xfe, 0x80, ...Array(13).fill(0), 1], 1, 65535, 17);
  assert.equal(t6.saddr, 'fd00:50::2');
  assert.equal(t6.daddr, 'fe80::1');
  assert.equal(t6.dport, 65535);
});

test('attribute builders: packet vs socket keys, ports only for port transports', () => {
  const t = tuple(2, [1, 2, 3, 4], [5, 6, 7, 8], 1000, 2000, 17);
  assert.deepEqual(packetAttributes(t), {
    'network.type': 'ipv4',
    'source.address': '1.2.3.4',
    'destination.address': '5.6.7.8',
    'network.transport': 'udp',
    'source.port': 1000,
    'destination.port': 2000,
  });
  const s = socketAttributes(tuple(2, [1, 2, 3, 4], [5, 6, 7, 8], 1000, 2000, 6, 10));
  assert.equal(s['network.local.address'], '1.2.3.4');
  assert.equal(s['network.peer.port'], 2000);
  assert.equal(s['network.connection.state'], 'listen');
  const icmp = socketAttributes(tuple(2, [1, 2, 3, 4], [5, 6, 7, 8], 0, 0, 1));
  assert.equal(icmp['network.local.port'], undefined);
  assert.equal(icmp['network.transport'], 'icmp');
  const none = packetAttributes(tuple(0, [], [], 0, 0, 0));
  assert.deepEqual(none, {}, 'no IP header: no address attributes');
});

test('TCP state and transport names', () => {
  assert.equal(tcpStateName(1), 'established');
  assert.equal(tcpStateName(2), 'syn_sent');
  // TCP_NEW_SYN_RECV: a request socket, semconv `syn_received` (as the sockets probe exports it)
  assert.equal(tcpStateName(12), 'syn_received');
  assert.equal(tcpStateName(13), 'closed');
  assert.equal(tcpStateName(0), '');
  assert.equal(transportName(6), 'tcp');
  assert.equal(transportName(58), 'icmpv6');
  assert.equal(transportName(47), 'ipproto_47');
});

test('symbolRanges: [start, next text symbol) for named functions, data symbols ignored', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pna-ksyms-'));
  try {
    const f = join(dir, 'kallsyms');
    writeFileSync(
      f,
      [
        'ffffffff81000000 T _stext',
        'ffffffff81000100 t foo',
        'ffffffff81000180 D some_data',
        'ffffffff81000200 T bar',
        'ffffffff81000300 t baz\t[mod]',
        '',
      ].join('\n'),
    );
    const r = symbolRanges(['foo', 'baz', 'missing'], f);
    assert.deepEqual(
      r.map((x) => [x.name, x.start.toString(16), x.end.toString(16)]),
      [
        ['foo', 'ffffffff81000100', 'ffffffff81000200'],
        ['baz', 'ffffffff81000300', 'ffffffff81000301'],
      ],
    );
    assert.deepEqual(symbolRanges([], f), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
