// Netlink codec on crafted bytes: multipart replies, errors, truncation and garbage. Every malformed
// input must raise NetlinkError/NetlinkProtocolError (an error for that read), never another exception.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Attrs,
  encodeAttr,
  forEachMessage,
  NetlinkError,
  type NetlinkMessage,
  NetlinkProtocolError,
  NLA_F_NESTED,
  NLA_F_NET_BYTEORDER,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  ReplyReader,
} from '../../receiver/netlink/codec.ts';
import { decodeConntrackEntry, decodeStatsCpu, decodeStatsGlobal } from '../../receiver/netlink/ctnetlink.ts';
import { decodeQdisc, formatTcHandle } from '../../receiver/netlink/rtnetlink.ts';
import { decodeInetDiagMsg, emptyInetSocket } from '../../receiver/netlink/sock-diag.ts';

/** One message: header + payload, padded to 4. */
function msg(type: number, flags: number, seq: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const len = 16 + payload.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt32LE(1234, 12);
  b.set(payload, 16);
  return b;
}
const i32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  return b;
};
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v, 0);
  return b;
};
const be32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v, 0);
  return b;
};
const u64 = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v), 0);
  return b;
};
const view = (b: Buffer) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Runs a ReplyReader over datagrams; returns the data messages' types and first payload u32. */
function read(seq: number, datagrams: Buffer[], dump = true): number[] {
  const got: number[] = [];
  const r = new ReplyReader(seq, (m) => got.push(m.type), dump);
  for (const d of datagrams) {
    if (r.feed(view(d), 0, d.length)) return got;
  }
  throw new Error('reply incomplete');
}

test('codec: strShared gives what str gives, for names of equal length and repeated ones', () => {
  // Same length, different bytes (the kept strings are matched byte by byte), a repeat, an empty one,
  // one without NUL and a non-ASCII one.
  const names = ['pfifo', 'pfifx', 'pfifo', 'eth0', 'eth1', '', 'noqueue', 'eth0', 'wlä0', 'qfifo'];
  for (const [i, name] of names.entries()) {
    const value = i === 6 ? Buffer.from(name) : Buffer.from(`${name}\0`);
    const block = encodeAttr(1, value);
    const a = new Attrs(1).parse(view(block), 0, block.length);
    assert.equal(a.strShared(1), a.str(1), name);
    assert.equal(a.strShared(1), name);
  }
});

test('codec: multipart reply over several datagrams ends at NLMSG_DONE', () => {
  const d1 = Buffer.concat([msg(20, NLM_F_MULTI, 7, u32(1)), msg(20, NLM_F_MULTI, 7, u32(2))]);
  const d2 = Buffer.concat([msg(20, NLM_F_MULTI, 7, u32(3)), msg(NLMSG_DONE, NLM_F_MULTI, 7, i32(0))]);
  assert.deepEqual(read(7, [d1, d2]), [20, 20, 20]);
});

test('codec: a dump without NLMSG_DONE is incomplete (the reader asks for more)', () => {
  const d1 = msg(20, NLM_F_MULTI, 7, u32(1));
  assert.throws(() => read(7, [d1]), /reply incomplete/);
});

test('codec: messages of other sequence numbers and NOOPs are skipped', () => {
  const r = new ReplyReader(9, () => {});
  const d = Buffer.concat([
    msg(20, NLM_F_MULTI, 8),
    msg(NLMSG_NOOP, 0, 9),
    msg(20, NLM_F_MULTI, 9),
    msg(NLMSG_DONE, 0, 9, i32(0)),
  ]);
  assert.equal(r.feed(view(d), 0, d.length), true);
  assert.equal(r.messages, 1);
  assert.equal(r.skipped, 1);
});

test('codec: NLMSG_ERROR carries the errno; error 0 is an ACK', () => {
  const err = msg(NLMSG_ERROR, 0, 5, Buffer.concat([i32(-2), msg(20, 0, 5)]));
  assert.throws(
    () => read(5, [err]),
    (e: unknown) => e instanceof NetlinkError && e.errno === 2,
  );
  const ack = msg(NLMSG_ERROR, 0, 5, Buffer.concat([i32(0), msg(20, 0, 5)]));
  assert.deepEqual(read(5, [ack]), []);
  assert.throws(() => read(5, [msg(NLMSG_ERROR, 0, 5, Buffer.alloc(2))]), NetlinkProtocolError);
  assert.throws(() => read(5, [msg(NLMSG_ERROR, 0, 5, i32(3))]), NetlinkProtocolError);
});

test('codec: a failed dump (DONE with negative error) is a NetlinkError', () => {
  const d = Buffer.concat([msg(20, NLM_F_MULTI, 1), msg(NLMSG_DONE, NLM_F_MULTI, 1, i32(-95))]);
  assert.throws(
    () => read(1, [d]),
    (e: unknown) => e instanceof NetlinkError && e.errno === 95,
  );
});

test('codec: an interrupted dump (NLM_F_DUMP_INTR) is reported as EINTR', () => {
  const d = Buffer.concat([
    msg(20, NLM_F_MULTI | NLM_F_DUMP_INTR, 1),
    msg(NLMSG_DONE, NLM_F_MULTI, 1, i32(0)),
  ]);
  assert.throws(
    () => read(1, [d]),
    (e: unknown) => e instanceof NetlinkError && e.errno === 4,
  );
});

test('codec: NLMSG_OVERRUN is a protocol error', () => {
  assert.throws(() => read(1, [msg(NLMSG_OVERRUN, 0, 1)]), NetlinkProtocolError);
});

test('codec: a non-dump reply ends after one message even with NLM_F_MULTI (ctnetlink stats)', () => {
  assert.deepEqual(read(3, [msg(0x105, NLM_F_MULTI, 3, u32(0))], false), [0x105]);
  // In dump mode a single non-multipart message also completes the reply.
  assert.deepEqual(read(3, [msg(0x105, 0, 3, u32(0))], true), [0x105]);
});

test('codec: truncated and inconsistent headers are protocol errors', () => {
  const good = msg(20, NLM_F_MULTI, 1, u32(1));
  assert.throws(() => read(1, [good.subarray(0, 10)]), /truncated netlink header/);
  assert.throws(() => read(1, [good.subarray(0, 18)]), /truncated netlink message/);
  const short = Buffer.from(good);
  short.writeUInt32LE(8, 0);
  assert.throws(() => read(1, [short]), /< header/);
  assert.throws(() => forEachMessage(view(good), 0, good.length + 4, () => {}), NetlinkProtocolError);
  const r = new ReplyReader(1, () => {});
  const done = msg(NLMSG_DONE, 0, 1, i32(0));
  r.feed(view(done), 0, done.length);
  assert.throws(() => r.feed(view(done), 0, done.length), /after the reply/);
});

test('codec: attributes — flags masked, last wins, strings, short/missing/truncated', () => {
  const block = Buffer.concat([
    encodeAttr(1 | NLA_F_NET_BYTEORDER, be32(0x01020304)),
    encodeAttr(2 | NLA_F_NESTED, Buffer.concat([encodeAttr(1, u32(7))])),
    encodeAttr(3, Buffer.from('eth0\0')),
    encodeAttr(4, Buffer.from([1, 2])),
    encodeAttr(5, u64(2 ** 40)),
    encodeAttr(5, u64(2 ** 41)),
    encodeAttr(200, u32(1)), // above maxType: ignored
  ]);
  const a = new Attrs(8).parse(view(block), 0, block.length);
  assert.equal(a.be32(1), 0x01020304);
  const inner = new Attrs(2).parse(a.view, a.offset(2), a.length(2));
  assert.equal(inner.u32(1), 7);
  assert.equal(a.str(3), 'eth0');
  assert.throws(() => a.u32(4), /too short/);
  assert.throws(() => a.u32(6), /missing/);
  assert.equal(a.u64(5), 2 ** 41);
  assert.equal(a.has(8), false);
  const bad = Buffer.from(block);
  bad.writeUInt16LE(200, 0); // first attribute claims more than the block
  assert.throws(() => new Attrs(8).parse(view(bad), 0, bad.length), /truncated attribute/);
  bad.writeUInt16LE(2, 0);
  assert.throws(() => new Attrs(8).parse(view(bad), 0, bad.length), /< header/);
  assert.throws(() => new Attrs(8).parse(view(block), 0, block.length + 8), /exceeds buffer/);
});

function payloadMsg(type: number, payload: Buffer): NetlinkMessage {
  const b = msg(type, 0, 1, payload);
  let m: NetlinkMessage | undefined;
  forEachMessage(view(b), 0, b.length, (x) => {
    m = x;
  });
  return m!;
}

test('codec: inet_diag_msg with tcp_info and skmeminfo; short tcp_info of an older kernel', () => {
  const hdr = Buffer.alloc(72);
  hdr.writeUInt8(2, 0); // AF_INET
  hdr.writeUInt8(1, 1); // ESTABLISHED
  hdr.writeUInt16BE(8080, 4);
  hdr.writeUInt16BE(40000, 6);
  hdr.writeUInt32LE(11, 56); // rqueue
  hdr.writeUInt32LE(22, 60); // wqueue
  hdr.writeUInt32LE(999, 68); // inode
  const info = Buffer.alloc(232);
  info.writeUInt32LE(1500, 68); // rtt µs
  info.writeUInt32LE(3, 100); // total_retrans
  info.writeBigUInt64LE(4500n, 208); // bytes_retrans
  const skmem = Buffer.concat([1, 2, 3, 4, 5, 6, 7, 8, 9].map(u32));
  const m = payloadMsg(20, Buffer.concat([hdr, encodeAttr(2, info), encodeAttr(7, skmem)]));
  const s = decodeInetDiagMsg(m, new Attrs(8), emptyInetSocket());
  assert.deepEqual(
    [
      s.family,
      s.state,
      s.sport,
      s.dport,
      s.rqueue,
      s.wqueue,
      s.inode,
      s.rttUs,
      s.totalRetrans,
      s.bytesRetrans,
    ],
    [2, 1, 8080, 40000, 11, 22, 999, 1500, 3, 4500],
  );
  assert.deepEqual(s.skmem, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // tcp_info of 104 bytes (a 3.x kernel): rtt and total_retrans present, bytes_retrans absent.
  const old = payloadMsg(20, Buffer.concat([hdr, encodeAttr(2, info.subarray(0, 104))]));
  const o = decodeInetDiagMsg(old, new Attrs(8), emptyInetSocket());
  assert.deepEqual([o.rttUs, o.totalRetrans, o.bytesRetrans, o.skmem.length], [1500, 3, -1, 0]);
  assert.throws(
    () => decodeInetDiagMsg(payloadMsg(20, hdr.subarray(0, 60)), new Attrs(8), emptyInetSocket()),
    /truncated inet_diag_msg/,
  );
  const shortMem = payloadMsg(20, Buffer.concat([hdr, encodeAttr(7, skmem.subarray(0, 20))]));
  assert.throws(() => decodeInetDiagMsg(shortMem, new Attrs(8), emptyInetSocket()), /SKMEMINFO/);
});

test('codec: qdisc with TCA_STATS2 (basic, queue, 64-bit packets) and legacy TCA_STATS', () => {
  const tcm = Buffer.alloc(20);
  tcm.writeInt32LE(3, 4);
  tcm.writeUInt32LE(0x00010000, 8);
  tcm.writeUInt32LE(0xffffffff, 12);
  const basic = Buffer.concat([u64(2 ** 40), u32(5), u32(0)]);
  const queue = Buffer.concat([1, 2, 3, 4, 5].map(u32)); // qlen backlog drops requeues overlimits
  const stats2 = Buffer.concat([encodeAttr(1, basic), encodeAttr(3, queue), encodeAttr(8, u64(2 ** 33))]);
  const m = payloadMsg(
    36,
    Buffer.concat([tcm, encodeAttr(1, Buffer.from('htb\0')), encodeAttr(7 | NLA_F_NESTED, stats2)]),
  );
  assert.deepEqual(decodeQdisc(m, new Attrs(7), new Attrs(8)), {
    ifindex: 3,
    kind: 'htb',
    handle: 0x10000,
    parent: 0xffffffff,
    bytes: 2 ** 40,
    packets: 2 ** 33,
    drops: 3,
    overlimits: 5,
    requeues: 4,
    qlen: 1,
    backlog: 2,
  });
  const legacy = Buffer.concat([u64(100), ...[10, 1, 2, 0, 0, 3, 4].map(u32)]);
  const l = decodeQdisc(
    payloadMsg(36, Buffer.concat([tcm, encodeAttr(3, legacy)])),
    new Attrs(7),
    new Attrs(8),
  );
  assert.deepEqual(
    [l.bytes, l.packets, l.drops, l.overlimits, l.qlen, l.backlog, l.kind],
    [100, 10, 1, 2, 3, 4, ''],
  );
  assert.throws(
    () => decodeQdisc(payloadMsg(36, tcm.subarray(0, 12)), new Attrs(7), new Attrs(8)),
    /truncated tcmsg/,
  );
  const shortQ = Buffer.concat([tcm, encodeAttr(7, encodeAttr(3, queue.subarray(0, 8)))]);
  assert.throws(
    () => decodeQdisc(payloadMsg(36, shortQ), new Attrs(7), new Attrs(8)),
    /short TCA_STATS_QUEUE/,
  );
  assert.deepEqual(
    [
      formatTcHandle(0),
      formatTcHandle(0x80010000),
      formatTcHandle(0x1000a),
      formatTcHandle(0xffffffff, true),
      formatTcHandle(0xfffffff1, true),
    ],
    ['0:', '8001:', '1:a', 'root', 'ffff:fff1'],
  );
});

test('codec: ctnetlink per-CPU and global stats are big-endian; unknown attributes ignored', () => {
  const nfg = Buffer.from([0, 0, 0, 1]); // res_id = cpu 1 (big-endian)
  const cpu = payloadMsg(
    0x104,
    Buffer.concat([
      nfg,
      encodeAttr(2 | NLA_F_NET_BYTEORDER, be32(7)),
      encodeAttr(9, be32(0x01000000)),
      encodeAttr(30, be32(5)),
    ]),
  );
  assert.deepEqual(decodeStatsCpu(cpu, new Attrs(31)), {
    cpu: 1,
    values: { found: 7, insert_failed: 0x01000000 },
  });
  const g = payloadMsg(0x105, Buffer.concat([nfg, encodeAttr(1, be32(42)), encodeAttr(2, be32(262144))]));
  assert.deepEqual(decodeStatsGlobal(g, new Attrs(2)), { entries: 42, maxEntries: 262144 });
  assert.throws(() => decodeStatsGlobal(payloadMsg(0x105, nfg), new Attrs(2)), /missing/);
  assert.throws(
    () => decodeStatsCpu(payloadMsg(0x104, Buffer.from([0, 0])), new Attrs(31)),
    /truncated nfgenmsg/,
  );
});

test('codec: random garbage never escapes as anything but a netlink error', () => {
  let x = 0x12345678;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const seeds = [
    msg(
      20,
      NLM_F_MULTI,
      1,
      Buffer.concat([Buffer.alloc(72), encodeAttr(2, Buffer.alloc(232)), encodeAttr(7, Buffer.alloc(36))]),
    ),
    msg(
      36,
      NLM_F_MULTI,
      1,
      Buffer.concat([
        Buffer.alloc(20),
        encodeAttr(1, Buffer.from('tbf\0')),
        encodeAttr(7, encodeAttr(1, Buffer.alloc(16))),
      ]),
    ),
    msg(0x104, NLM_F_MULTI, 1, Buffer.concat([Buffer.alloc(4), encodeAttr(2, be32(1))])),
    msg(
      0x100,
      0,
      1,
      Buffer.concat([
        Buffer.from([2, 0, 0, 0]),
        encodeAttr(
          1 | NLA_F_NESTED,
          Buffer.concat([
            encodeAttr(1 | NLA_F_NESTED, Buffer.concat([encodeAttr(1, be32(1)), encodeAttr(2, be32(2))])),
            encodeAttr(2 | NLA_F_NESTED, encodeAttr(1, Buffer.from([17]))),
          ]),
        ),
      ]),
    ),
  ];
  let errors = 0;
  for (let i = 0; i < 20000; i++) {
    const seed = seeds[i % seeds.length]!;
    const b = Buffer.from(seed.subarray(0, rnd() % (seed.length + 1)));
    for (let k = rnd() % 6; k > 0 && b.length > 0; k--) b[rnd() % b.length] = rnd() & 0xff;
    try {
      const r = new ReplyReader(1, (m) => {
        if (m.type === 20) decodeInetDiagMsg(m, new Attrs(8), emptyInetSocket());
        else if (m.type === 36) decodeQdisc(m, new Attrs(7), new Attrs(8));
        else if (m.type === 0x104) decodeStatsCpu(m, new Attrs(31));
        else if (m.type === 0x100) decodeConntrackEntry(m);
      });
      r.feed(view(b), 0, b.length);
    } catch (e) {
      if (!(e instanceof NetlinkError || e instanceof NetlinkProtocolError)) throw e;
      errors++;
    }
  }
  assert.ok(errors > 1000, `garbage was rejected ${errors} times`);
});

test('codec: conntrack entry events — tuples v4/v6, TCP state, event kind, malformed tuples', () => {
  const be16 = (v: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v, 0);
    return b;
  };
  const tuple = (src: Buffer, dst: Buffer, v6: boolean, sport: number, dport: number) =>
    Buffer.concat([
      encodeAttr(1 | NLA_F_NESTED, Buffer.concat([encodeAttr(v6 ? 3 : 1, src), encodeAttr(v6 ? 4 : 2, dst)])),
      encodeAttr(
        2 | NLA_F_NESTED,
        Buffer.concat([
          encodeAttr(1, Buffer.from([6])),
          encodeAttr(2, be16(sport)),
          encodeAttr(3, be16(dport)),
        ]),
      ),
    ]);
  const v6a = Buffer.from('fd000005000000000000000000000002', 'hex');
  const v6b = Buffer.from('20010db8000000010000000000000001', 'hex');
  const body = Buffer.concat([
    Buffer.from([10, 0, 0, 0]),
    encodeAttr(1 | NLA_F_NESTED, tuple(v6a, v6b, true, 40000, 8080)),
    encodeAttr(2 | NLA_F_NESTED, tuple(v6b, v6a, true, 8080, 40000)),
    encodeAttr(3, be32(0x8e)),
    encodeAttr(4 | NLA_F_NESTED, encodeAttr(1 | NLA_F_NESTED, encodeAttr(1, Buffer.from([3])))),
    encodeAttr(7, be32(431999)),
    encodeAttr(12, be32(77)),
  ]);
  const b = msg((1 << 8) | 0, 0x400 | 0x200, 0, body); // NEW with NLM_F_CREATE
  let got: unknown;
  forEachMessage(view(b), 0, b.length, (m) => {
    got = decodeConntrackEntry(m);
  });
  assert.deepEqual(got, {
    event: 'new',
    family: 10,
    orig: { src: 'fd00:5::2', dst: '2001:db8:0:1::1', proto: 6, sport: 40000, dport: 8080 },
    reply: { src: '2001:db8:0:1::1', dst: 'fd00:5::2', proto: 6, sport: 8080, dport: 40000 },
    status: 0x8e,
    tcpState: 'ESTABLISHED',
    timeout: 431999,
    id: 77,
  });
  const one = (type: number, flags: number, payload: Buffer) => {
    let r: unknown;
    const m = msg(type, flags, 0, payload);
    forEachMessage(view(m), 0, m.length, (x) => {
      r = decodeConntrackEntry(x);
    });
    return r as { event: string } | undefined;
  };
  assert.equal(one((1 << 8) | 0, 0, body)?.event, 'update');
  assert.equal(one((1 << 8) | 2, 0, body)?.event, 'destroy');
  assert.equal(one((1 << 8) | 4, 0, body), undefined); // stats message, not an entry
  assert.equal(one(16, 0, body), undefined); // not ctnetlink
  const noAddr = Buffer.concat([
    Buffer.from([2, 0, 0, 0]),
    encodeAttr(1, encodeAttr(2, encodeAttr(1, Buffer.from([6])))),
  ]);
  assert.throws(() => one((1 << 8) | 0, 0, noAddr), NetlinkProtocolError);
  const shortAddr = Buffer.concat([
    Buffer.from([2, 0, 0, 0]),
    encodeAttr(1, tuple(Buffer.alloc(3), Buffer.alloc(3), false, 1, 2)),
  ]);
  assert.throws(() => one((1 << 8) | 0, 0, shortAddr), /address of 3 bytes/);
});
