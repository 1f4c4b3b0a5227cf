// The wire writer (receiver/otel/protobuf/writer.ts) against protobufjs's Writer, an independent encoder:
// the same fields written by both must give the same bytes (varints of every width and sign, fixed64 from
// seconds + nanoseconds, doubles, ASCII / multi-byte / long strings, nested lengths of 1 to 4 bytes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import protobuf from 'protobufjs/minimal.js';
import { ProtoWriter } from '../../../receiver/otel/protobuf/writer.ts';

const { Writer, util } = protobuf;

test('writer: same bytes as protobufjs for every field kind', () => {
  const a = new ProtoWriter(8); // small: growth is exercised too
  const b = Writer.create();
  const ints = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, -1, -2, -(2 ** 40)];
  ints.push(Number.MAX_SAFE_INTEGER, -(2 ** 53));
  for (const v of ints) {
    a.tag(3, 0);
    a.int64(v);
    b.uint32((3 << 3) | 0).int64(util.LongBits.fromNumber(v).toLong() as never);
  }
  const strings = [
    '',
    'abc',
    'é',
    `${'x'.repeat(42)}é`,
    'x'.repeat(200),
    'ü'.repeat(100),
    '😀a',
    'y'.repeat(20_000),
  ];
  for (const s of strings) {
    a.tag(1, 2);
    a.string(s);
    b.uint32((1 << 3) | 2).string(s);
  }
  const times: [number, number][] = [
    [0, 0],
    [1_765_000_000, 999_999_999],
    [4_294_967_295, 5],
    [1, 1],
  ];
  for (const [s, ns] of times) {
    a.tag(1, 1);
    a.fixed64Nanos(s, ns);
    const n = BigInt(s) * 1_000_000_000n + BigInt(ns);
    b.uint32((1 << 3) | 1).fixed64(
      new util.LongBits(Number(n & 0xffffffffn), Number(n >> 32n)).toLong(true) as never,
    );
  }
  for (const d of [1.5, Number.NaN, -0, Number.POSITIVE_INFINITY, 1e-300]) {
    a.tag(4, 1);
    a.double(d);
    b.uint32((4 << 3) | 1).double(d);
  }
  for (const n of [0, 5, 127, 128, 20_000, 3_000_000]) {
    const body = new Uint8Array(n).fill(7);
    a.tag(5, 2);
    const start = a.fork();
    a.tag(1, 2);
    a.bytes(body);
    a.ldelim(start);
    b.uint32((5 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .bytes(body)
      .ldelim();
  }
  for (const n of [0, 100, 127, 128, 16_383, 16_384, 70_000]) {
    // A two-byte reservation: bodies of every length width, shifted either way.
    const body = new Uint8Array(n).fill(9);
    a.tag(6, 2);
    const start = a.fork(2);
    a.raw(body);
    a.ldelim(start, 2);
    b.uint32((6 << 3) | 2).bytes(body);
  }
  a.fixed32(0xdeadbeef);
  b.fixed32(0xdeadbeef);
  assert.deepEqual(Buffer.from(a.finish()), Buffer.from(b.finish()));
});

test('writer: detach hands the bytes over and goes on in a new buffer', () => {
  const w = new ProtoWriter(4);
  w.string('kept');
  const kept = w.detach();
  w.string('next');
  assert.deepEqual([...kept], [4, ...Buffer.from('kept')]);
  assert.deepEqual([...w.finish()], [4, ...Buffer.from('next')]);
});

test('writer: reset reuses the buffer, finish copies', () => {
  const w = new ProtoWriter(4);
  w.string('first message');
  const first = w.finish();
  w.reset();
  w.string('2nd');
  assert.deepEqual([...first.subarray(1)], [...Buffer.from('first message')]);
  assert.deepEqual([...w.finish()], [3, ...Buffer.from('2nd')]);
});
