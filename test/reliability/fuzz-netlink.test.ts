// Structure-aware netlink fuzzing (test/netlink/codec.test.ts already flips bytes in a few fixed
// messages): datagrams of several messages with random types (ERROR, DONE, NOOP, sock_diag, qdisc,
// ctnetlink stats and entries), flags (MULTI, DUMP_INTR), sequence numbers, family headers of any length,
// attribute trees nested at random depth with random types, and lengths that lie (0, below the header,
// unaligned, past the end, at exactly the end), fed to the ReplyReader in one datagram or split over
// several, every data message through the real decoders. Only NetlinkError / NetlinkProtocolError may
// come out, decoded numbers are finite, and a reader never completes twice. Seeded (PODNET_FUZZ_SEED).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Attrs,
  NetlinkError,
  NetlinkProtocolError,
  NLA_F_NESTED,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  ReplyReader,
} from '../../receiver/netlink/codec.ts';
import { decodeConntrackEntry, decodeStatsCpu, decodeStatsGlobal } from '../../receiver/netlink/ctnetlink.ts';
import { decodeQdisc } from '../../receiver/netlink/rtnetlink.ts';
import { decodeInetDiagMsg, emptyInetSocket } from '../../receiver/netlink/sock-diag.ts';

const SEED = Number(process.env['PODNET_FUZZ_SEED'] ?? 7);
const ROUNDS = Number(process.env['PODNET_FUZZ_ROUNDS'] ?? 20000);

let x = SEED >>> 0 || 1;
const rnd = () => {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) / 0x100000000;
};
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

/** A length that is usually right and sometimes lies. */
function lie(real: number, max: number): number {
  const r = rnd();
  if (r < 0.85) return real;
  return pick([0, 1, 3, real - 1, real + 1, real + 4, max, max + 1, 0xffff, real & ~3]);
}

function attr(depth: number): Buffer {
  const nested = depth < 4 && rnd() < 0.3;
  const type = int(40) | (nested ? NLA_F_NESTED : 0);
  let value: Buffer;
  if (nested) {
    const kids: Buffer[] = [];
    for (let i = int(4); i >= 0; i--) kids.push(attr(depth + 1));
    value = Buffer.concat(kids);
  } else value = bytes(pick([0, 1, 2, 4, 8, 16, 20, 36, int(300)]));
  const len = 4 + value.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(lie(len, 0xffff) & 0xffff, 0);
  b.writeUInt16LE(type, 2);
  value.copy(b, 4);
  return rnd() < 0.05 ? b.subarray(0, int(b.length + 1)) : b;
}

const DATA_TYPES = [20, 36, 0x104, 0x105, 0x100] as const;

function message(seq: number): Buffer {
  const type = rnd() < 0.75 ? pick(DATA_TYPES) : pick([NLMSG_ERROR, NLMSG_DONE, NLMSG_NOOP, int(0x10000)]);
  let payload: Buffer;
  if (type === NLMSG_ERROR) {
    payload = Buffer.alloc(pick([0, 3, 4, 20]));
    if (payload.length >= 4) payload.writeInt32LE(pick([0, -2, -95, -2147483648, 5]), 0);
  } else if (type === NLMSG_DONE) {
    payload = Buffer.alloc(pick([0, 4]));
    if (payload.length) payload.writeInt32LE(pick([0, -16]), 0);
  } else {
    const fam = type === 20 ? 72 : type === 36 ? 20 : 4;
    const head = bytes(rnd() < 0.8 ? fam : int(90));
    const attrs: Buffer[] = [];
    for (let i = int(8); i > 0; i--) attrs.push(attr(0));
    payload = Buffer.concat([head, ...attrs]);
  }
  const len = 16 + payload.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt32LE(lie(len, 1 << 20) >>> 0, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(pick([0, NLM_F_MULTI, NLM_F_MULTI | NLM_F_DUMP_INTR, int(0x10000)]), 6);
  b.writeUInt32LE(rnd() < 0.9 ? seq : int(2 ** 32), 8);
  b.writeUInt32LE(int(2 ** 32), 12);
  payload.copy(b, 16);
  return b;
}

function checkNumbers(o: object, label: string): void {
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number') assert.ok(Number.isFinite(v), `${label}: ${k} = ${v}`);
    else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) checkNumbers(v, `${label}.${k}`);
  }
}

test(`netlink: ${ROUNDS} structured random replies only ever raise netlink errors (seed ${SEED})`, () => {
  const tally = { complete: 0, protocol: 0, kernel: 0, incomplete: 0, decoded: 0 };
  for (let i = 0; i < ROUNDS; i++) {
    const seq = 1 + int(1000);
    const msgs: Buffer[] = [];
    for (let k = 1 + int(5); k > 0; k--) msgs.push(message(seq));
    // One datagram, or split between messages over several.
    const datagrams: Buffer[] = [];
    if (rnd() < 0.5) datagrams.push(Buffer.concat(msgs));
    else for (const m of msgs) datagrams.push(m);
    const reader = new ReplyReader(
      seq,
      (m) => {
        let out: object | undefined;
        if (m.type === 20) out = decodeInetDiagMsg(m, new Attrs(8), emptyInetSocket());
        else if (m.type === 36) out = decodeQdisc(m, new Attrs(7), new Attrs(8));
        else if (m.type === 0x104) out = decodeStatsCpu(m, new Attrs(31));
        else if (m.type === 0x105) out = decodeStatsGlobal(m, new Attrs(2));
        else if (m.type === 0x100) out = decodeConntrackEntry(m);
        if (out) {
          checkNumbers(out, `round ${i} type ${m.type}`);
          tally.decoded++;
        }
      },
      rnd() < 0.8,
    );
    let done = false;
    try {
      for (const d of datagrams) {
        const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
        if (done) {
          assert.throws(() => reader.feed(view, 0, d.length), NetlinkProtocolError);
          break;
        }
        done = reader.feed(view, 0, d.length);
      }
      if (done) tally.complete++;
      else tally.incomplete++;
    } catch (e) {
      if (e instanceof NetlinkProtocolError) tally.protocol++;
      else if (e instanceof NetlinkError) {
        assert.ok(Number.isInteger(e.errno) && e.errno > 0, `errno ${e.errno}`);
        tally.kernel++;
      } else
        assert.fail(
          `round ${i} (seed ${SEED}): ${(e as Error)?.constructor?.name} escaped: ${String(e)}\n${datagrams.map((d) => d.toString('hex')).join('\n')}`,
        );
    }
  }
  // The generator reaches every outcome.
  for (const [k, v] of Object.entries(tally)) assert.ok(v > 0, `no ${k}: ${JSON.stringify(tally)}`);
});
