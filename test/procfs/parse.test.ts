// Parsers against this kernel's real files, truncated at every byte, and garbage: a malformed file is a
// ProcfsParseError, never another exception, never a silently wrong number.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseNetDev } from '../../probes/netdev/parse.ts';
import { parsePidIo } from '../../probes/process/parse.ts';
import { cgroupRelativePath } from '../../probes/process/pids.ts';
import { parseNameValueLines, parseSnmp } from '../../probes/snmp/parse.ts';
import { snakeCase } from '../../probes/snmp/snake.ts';
import { parseSockstat } from '../../probes/sockstat/parse.ts';
import { parseSoftnet } from '../../probes/softnet/parse.ts';
import { bytesEqualAt, ProcfsParseError } from '../../receiver/procfs/parse.ts';

const read = (p: string): string => readFileSync(p, 'latin1');

const PARSERS: Record<string, [string, (t: string) => unknown]> = {
  snmp: ['/proc/net/snmp', (t) => parseSnmp(t)],
  netstat: ['/proc/net/netstat', (t) => parseSnmp(t, 'net/netstat')],
  snmp6: ['/proc/net/snmp6', (t) => parseNameValueLines(t)],
  dev: ['/proc/net/dev', (t) => parseNetDev(t)],
  sockstat: ['/proc/net/sockstat', (t) => parseSockstat(t)],
  sockstat6: ['/proc/net/sockstat6', (t) => parseSockstat(t, 'net/sockstat6')],
  softnet: ['/proc/net/softnet_stat', (t) => parseSoftnet(t)],
  io: ['/proc/self/io', (t) => parsePidIo(t)],
};

test('snmp/netstat: groups, fields and values line up with the file', () => {
  const text = read('/proc/net/snmp');
  const groups = parseSnmp(text);
  const lines = text.trim().split('\n');
  assert.equal(groups.length, lines.length / 2);
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    const names = lines[2 * i]!.split(' ').slice(1);
    const vals = lines[2 * i + 1]!.split(' ').slice(1).map(Number);
    assert.equal(lines[2 * i]!.split(':')[0], g.group);
    assert.deepEqual([...g.fields], names);
    assert.deepEqual(g.values, vals);
  }
  const tcp = groups.find((g) => g.group === 'Tcp')!;
  assert.equal(tcp.values[tcp.fields.indexOf('MaxConn')], -1, 'negative values (MaxConn -1) parse');
  const ns = parseSnmp(read('/proc/net/netstat'), 'net/netstat');
  assert.ok(ns.some((g) => g.group === 'TcpExt' && g.fields.includes('ListenDrops')));
});

test('net/dev: 16 columns per interface, lo present', () => {
  const rows = parseNetDev(read('/proc/net/dev'));
  const lo = rows.find((r) => r.name === 'lo');
  assert.ok(lo);
  assert.equal(lo.values.length, 16);
  const synthetic = `Inter-|   Receive |  Transmit\n face |bytes|bytes\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\nveth-x@if2: 9007199254740991 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n`;
  const r = parseNetDev(synthetic);
  assert.deepEqual(
    r.map((x) => x.name),
    ['eth0', 'veth-x@if2'],
  );
  assert.deepEqual(r[0]!.values, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  assert.equal(r[1]!.values[0], Number.MAX_SAFE_INTEGER);
});

test('sockstat, softnet, pid io: values', () => {
  const s = parseSockstat(
    'sockets: used 7\nTCP: inuse 3 orphan 0 tw 2 alloc 9 mem 5\nFRAG: inuse 0 memory 0\n',
  );
  assert.deepEqual(s[0], { proto: 'sockets', key: 'used', value: 7 });
  assert.deepEqual(
    s.filter((e) => e.proto === 'TCP').map((e) => [e.key, e.value]),
    [
      ['inuse', 3],
      ['orphan', 0],
      ['tw', 2],
      ['alloc', 9],
      ['mem', 5],
    ],
  );
  const sn = parseSoftnet(
    '0000000f 00000001 000000ff 00000000 00000000 00000000 00000000 00000000 00000000 00000004 00000005 00000006 00000001 00000000 00000000\n',
  );
  assert.deepEqual(sn[0], {
    cpu: 1,
    processed: 15,
    dropped: 1,
    timeSqueeze: 255,
    receivedRps: 4,
    flowLimitCount: 5,
    backlogLen: 6,
  });
  // Older kernels print fewer columns and no cpu column: the row index is the cpu.
  assert.equal(parseSoftnet('1 2 3\n4 5 6\n')[1]!.cpu, 1);
  const io = parsePidIo(
    'rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 5\nwrite_bytes: 6\ncancelled_write_bytes: 7\n',
  );
  assert.deepEqual(io, {
    rchar: 1,
    wchar: 2,
    syscr: 3,
    syscw: 4,
    readBytes: 5,
    writeBytes: 6,
    cancelledWriteBytes: 7,
  });
});

for (const [name, [path, parse]] of Object.entries(PARSERS)) {
  test(`${name}: every truncation is a ProcfsParseError or a consistent prefix`, () => {
    const full = read(path);
    const complete = JSON.stringify(parse(full));
    let errors = 0;
    for (let cut = 0; cut < full.length; cut++) {
      const part = full.slice(0, cut);
      try {
        const r = parse(part);
        // Accepted only when cut at a record boundary; then it must not invent values: re-parsing the
        // accepted text plus the rest must still give the complete result.
        assert.equal(JSON.stringify(parse(part + full.slice(cut))), complete);
        assert.ok(r !== undefined);
      } catch (err) {
        assert.ok(err instanceof ProcfsParseError, `cut ${cut}: ${(err as Error).stack}`);
        errors++;
      }
    }
    assert.ok(errors > 0, 'some truncations must be rejected');
  });

  test(`${name}: garbage input is a ProcfsParseError`, () => {
    const full = read(path);
    const garbage = [
      '',
      '\n\n',
      'garbage',
      full.replace(/([ \t])[0-9]/, '$1x'),
      full.replace(/ [0-9a-f]+/, ' 12ab!'),
      '\u0000\u0001\u0002 : : :',
      `${full}Extra: 1 2 3\n`,
    ];
    let rng = 12345;
    for (let i = 0; i < 200; i++) {
      let s = '';
      const len = (i * 7) % 300;
      for (let j = 0; j < len; j++) {
        rng = (rng * 1103515245 + 12345) % 2147483648;
        s += String.fromCharCode(rng % 128);
      }
      garbage.push(s);
    }
    for (const g of garbage) {
      try {
        parse(g);
      } catch (err) {
        assert.ok(
          err instanceof ProcfsParseError,
          `${JSON.stringify(g.slice(0, 60))}: ${(err as Error).stack}`,
        );
      }
    }
    // The clear cases must be rejected, not accepted.
    for (const g of ['', 'garbage', full.replace(/([ \t])[0-9]/, '$1x')]) {
      assert.throws(() => parse(g), ProcfsParseError, JSON.stringify(g.slice(0, 40)));
    }
  });
}

test('snmp: header/value mismatch and missing value line are rejected', () => {
  assert.throws(() => parseSnmp('Tcp: A B C\nTcp: 1 2\n'), /3 fields but 2 values/);
  assert.throws(() => parseSnmp('Tcp: A B\nUdp: 1 2\n'), /does not start with Tcp:/);
  assert.throws(() => parseSnmp('Tcp: A B\n'), /value line missing/);
  assert.throws(() => parseSnmp('Tcp: A B\nTcp: 1 -\n'), ProcfsParseError);
});

test('snakeCase: kernel MIB names', () => {
  const cases: Record<string, string> = {
    InReceives: 'in_receives',
    OutRsts: 'out_rsts',
    RcvbufErrors: 'rcvbuf_errors',
    ListenDrops: 'listen_drops',
    TCPSynRetrans: 'tcp_syn_retrans',
    TCPACKSkippedSynRecv: 'tcp_ack_skipped_syn_recv',
    TCPDSACKUndo: 'tcp_dsack_undo',
    DelayedACKs: 'delayed_acks',
    ReasmOKs: 'reasm_oks',
    TCPSpuriousRTOs: 'tcp_spurious_rtos',
    PAWSActive: 'paws_active',
    DefaultTTL: 'default_ttl',
    InType3: 'in_type3',
    TCPMD5NotFound: 'tcp_md5_not_found',
    InECT1Pkts: 'in_ect1_pkts',
    MPJoinSynAckHMacFailure: 'mp_join_syn_ack_hmac_failure',
    InMLDv2Reports: 'in_mldv2_reports',
    TCPACKSkippedFinWait2: 'tcp_ack_skipped_fin_wait2',
    PFMemallocDrop: 'pf_memalloc_drop',
  };
  for (const [k, v] of Object.entries(cases)) assert.equal(snakeCase(k), v, k);
});

test('cgroupRelativePath: cgroupfs and systemd parents', () => {
  assert.equal(cgroupRelativePath('/kubepods/besteffort/pod123'), 'kubepods/besteffort/pod123');
  assert.equal(
    cgroupRelativePath('kubepods-besteffort-pod123.slice'),
    'kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod123.slice',
  );
  assert.equal(cgroupRelativePath('kubepods.slice'), 'kubepods.slice');
});

test('snmp: skipped groups are structure-checked but not parsed', () => {
  const text = 'Tcp: A B\nTcp: 1 2\nUdp: C\nUdp: 3\n';
  assert.deepEqual(
    parseSnmp(text, 'x', (g) => g === 'Tcp').map((g) => [g.group, g.values]),
    [['Udp', [3]]],
  );
  assert.deepEqual(
    parseSnmp(text, 'x', () => true),
    [],
  );
  assert.throws(() => parseSnmp('Tcp: A B\nUdp: 1 2\n', 'x', () => true), /does not start with Tcp:/);
});

test('bytesEqualAt agrees with Buffer#compare: lengths both sides of the native switch, a byte changed anywhere, offsets, out of range', () => {
  const text = Buffer.from(`xx${readFileSync('/proc/self/net/netstat', 'latin1')}`, 'latin1');
  // A copy at another offset of another buffer (all three paths: the byte loop below 16 bytes, 4-byte words
  // through DataViews below 1,024 with the rest byte by byte, native from 1,024).
  const copy = Buffer.concat([Buffer.from('abc'), text]);
  assert.ok(text.length > 2100, 'netstat long enough for the native path');
  for (const len of [
    0, 1, 3, 4, 5, 15, 16, 17, 18, 19, 31, 63, 64, 65, 255, 1000, 1022, 1023, 1024, 1025, 2000,
  ]) {
    const start = 2;
    assert.equal(bytesEqualAt(text, start, copy, start + 3, len), true, `len ${len}`);
    // Every byte of some lengths (a word's every lane, the tail), else a sample.
    const every = len === 19 || len === 65 || len === 1023;
    const ats = every
      ? Array.from({ length: len }, (_, i) => i)
      : [0, 1, 3, 4, Math.floor(len / 2), len - 4, len - 2, len - 1];
    for (const at of new Set(ats)) {
      if (at < 0 || at >= len) continue;
      const changed = Buffer.from(copy);
      changed[start + 3 + at] = changed[start + 3 + at]! ^ 0x20;
      const expected = text.compare(changed, start + 3, start + 3 + len, start, start + len) === 0;
      assert.equal(expected, false);
      assert.equal(
        bytesEqualAt(text, start, changed, start + 3, len),
        false,
        `len ${len}, byte ${at} changed`,
      );
    }
  }
  assert.equal(bytesEqualAt(text, text.length - 2, copy, 0, 3), false, 'past the end of a');
  assert.equal(bytesEqualAt(text, 0, copy, copy.length - 1, 2), false, 'past the end of b');
  assert.equal(bytesEqualAt(text, -1, copy, 0, 1), false, 'negative start');
  // Views into one ArrayBuffer at odd byte offsets (the word path reads through the ArrayBuffer's view).
  const one = Buffer.alloc(200);
  one.write('abcdefghijklmnopqrstuvwxyz0123456789', 5, 'latin1');
  one.write('abcdefghijklmnopqrstuvwxyz0123456789', 103, 'latin1');
  const v1 = one.subarray(3, 90);
  const v2 = one.subarray(101);
  assert.equal(bytesEqualAt(v1, 2, v2, 2, 36), true, 'views at byte offsets 3 and 101');
  one[5 + 36] = 0x2e;
  assert.equal(bytesEqualAt(v1, 2, v2, 2, 37), false, 'one byte past the text differs');
  one[103 + 20] = 0x21;
  assert.equal(bytesEqualAt(v1, 2, v2, 2, 36), false, 'a byte changed in the second view');
});
