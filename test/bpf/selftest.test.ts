// The selftest program end to end: traffic between two netns → per-(netns, reason) counts in a
// PERCPU_HASH and ring events, compared with the kernel's own counters (/proc/net/snmp NoPorts, stat -L).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { dropReasonNames } from '../../receiver/bpf/btf.ts';
import { monotonicToUnixNano } from '../../receiver/bpf/events.ts';
import { type BpfCollection, BpfSpec } from '../../receiver/bpf/object.ts';
import { openEventRing, type RingReader } from '../../receiver/bpf/ringbuf.ts';
import { readStack, symbolizeStack } from '../../receiver/bpf/stacks.ts';
import { createNetnsPair, type NetnsPair, removeStaleNetns, statNetnsInode } from '../env/netns.ts';
import {
  type DropEvent,
  decodeDrop,
  dropKey,
  dropOnly,
  SELFTEST_OBJECT,
  waitFor,
} from './selftest-object.ts';

let pair: NetnsPair;
const open: { close(): void }[] = [];

before(() => {
  removeStaleNetns('pnb');
  pair = createNetnsPair({ prefix: 'pnb', tag: 's' });
});
after(() => {
  for (const o of open.reverse()) o.close();
  pair?.cleanup();
});

function noSocketReason(): number {
  for (const [v, n] of dropReasonNames()) if (n === 'NO_SOCKET') return v;
  throw new Error('NO_SOCKET not in this kernel BTF');
}

function start(rodata: Record<string, number>): {
  coll: BpfCollection;
  ring: RingReader;
  events: DropEvent[];
} {
  const coll = BpfSpec.fromFile(SELFTEST_OBJECT).load(dropOnly({ cfg_event_netns: pair.b.inode, ...rodata }));
  open.push(coll);
  const st = coll.attach();
  assert.equal(st.state, 'running', st.reason);
  const events: DropEvent[] = [];
  const ring = openEventRing(coll, { onRecord: (v, o) => events.push(decodeDrop(v, o)) }).start();
  open.push(ring);
  return { coll, ring, events };
}

test('UDP to a closed port: counts and events match the kernel, netns inode and reason names from BTF', async () => {
  const { coll, ring, events } = start({});
  const n4 = 120;
  const n6 = 45;
  const before4 = pair.b.snmp('Udp', 'NoPorts');
  const before6 = pair.b.snmp('Udp6', 'NoPorts');
  pair.a.sendUdp(pair.b.ipv4, 9, n4, 40);
  pair.a.sendUdp(pair.b.ipv6, 9, n6, 40);
  const nosock = noSocketReason();
  const mine = () => events.filter((e) => e.reason === nosock && e.dport === 9);
  assert.ok(await waitFor(() => mine().length >= n4 + n6), `got ${mine().length} events`);

  // kernel ground truth: the UDP MIB of netns b counted exactly what we sent
  const kernel4 = pair.b.snmp('Udp', 'NoPorts') - before4;
  const kernel6 = pair.b.snmp('Udp6', 'NoPorts') - before6;
  assert.equal(kernel4, n4);
  assert.equal(kernel6, n6);

  // per-(netns, reason) counter in the PERCPU_HASH, summed over CPUs
  const drops = coll.map('drops');
  const value = drops.lookup(dropKey(pair.b.inode, nosock));
  assert.ok(value, 'no counter for (netns b, NO_SOCKET)');
  const [packets] = drops.sumU64(value);
  assert.equal(packets, kernel4 + kernel6);
  const batch = drops.entriesSummed().find((e) => e.key.equals(dropKey(pair.b.inode, nosock)));
  assert.equal(batch?.values[0], kernel4 + kernel6, 'batch lookup agrees with lookup');

  // ring events: one per drop, attributed to netns b (stat -L inode), reason name from BTF
  const ev = mine();
  assert.equal(ev.length, kernel4 + kernel6);
  const inode = statNetnsInode(pair.b.name);
  assert.ok(ev.every((e) => e.netns === inode));
  assert.equal(dropReasonNames().get(ev[0]!.reason), 'NO_SOCKET');
  const v4 = ev.filter((e) => e.family === 2);
  const v6 = ev.filter((e) => e.family === 10);
  assert.equal(v4.length, kernel4);
  assert.equal(v6.length, kernel6);
  assert.ok(v4.every((e) => e.saddr === pair.a.ipv4 && e.daddr === pair.b.ipv4 && e.l4proto === 17));
  assert.ok(v6.every((e) => e.saddr === pair.a.ipv6 && e.daddr === pair.b.ipv6 && e.protocol === 0x86dd));
  assert.ok(ev.every((e) => e.ifindex === pair.b.ifindex));
  // kernel monotonic timestamps convert to wall-clock time of the test run
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  for (const e of ev) {
    const dt = nowNs - monotonicToUnixNano(e.tsNs);
    assert.ok(dt >= -1_000_000_000n && dt < 30_000_000_000n, `event time off by ${dt} ns`);
  }
  assert.equal(ring.lost(), 0);
  assert.equal(ring.stats.handlerErrors, 0);
});

test('rate limit: at most N events per (netns, type), the rest counted as suppressed; counts stay exact', async () => {
  const { coll, events } = start({ pn_cfg_rate_limit: 7, pn_cfg_rate_window_ns: 600e9 });
  const n = 60;
  const before4 = pair.b.snmp('Udp', 'NoPorts');
  pair.a.sendUdp(pair.b.ipv4, 9, n);
  const nosock = noSocketReason();
  const drops = coll.map('drops');
  const counted = () =>
    drops.sumU64(drops.lookup(dropKey(pair.b.inode, nosock)) ?? Buffer.alloc(drops.valueBytes))[0];
  assert.ok(await waitFor(() => counted() === n));
  assert.equal(pair.b.snmp('Udp', 'NoPorts') - before4, n);
  // The 7 events come through the ring reader, which a loaded machine may run late: wait for them (a
  // fixed 100 ms was a positive assertion on a timing); then 100 ms more for an 8th that must not come.
  assert.ok(await waitFor(() => events.length >= 7), `${events.length} events`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(events.length, 7, 'events capped by the limit');
  // every drop in netns b either produced an event or was counted as suppressed
  const totalB = () =>
    drops
      .entriesSummed()
      .filter((e) => e.key.readUInt32LE(0) === pair.b.inode)
      .reduce((s, e) => s + (e.values[0] ?? 0), 0);
  const suppressed = () => coll.map('pn_stats').arrayU64(1);
  assert.ok(await waitFor(() => suppressed() + 7 === totalB(), 2000), `${suppressed()} + 7 != ${totalB()}`);
});

test('stacks: captured per event, symbolized from kallsyms, deleted after reading', async () => {
  const { coll, events } = start({ pn_cfg_capture_stacks: 1 });
  pair.a.sendUdp(pair.b.ipv4, 9, 3);
  const nosock = noSocketReason();
  assert.ok(await waitFor(() => events.filter((e) => e.reason === nosock).length >= 3));
  const e = events.find((x) => x.reason === nosock)!;
  assert.ok(e.stackId >= 0, 'no stack id');
  const stacks = coll.map('pn_stacks');
  const frames = symbolizeStack(readStack(stacks, e.stackId));
  assert.ok(frames, 'kallsyms unavailable');
  assert.ok(
    frames.some((f) => /^__udp4_lib_rcv\+0x[0-9a-f]+$/.test(f)),
    frames.join(' / '),
  );
  const key = Buffer.alloc(4);
  key.writeUInt32LE(e.stackId);
  assert.equal(stacks.lookup(key), null, 'stack entry deleted after reading');
});
