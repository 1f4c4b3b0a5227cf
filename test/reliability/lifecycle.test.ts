// Process lifecycle of `podnet run` (default probes, eBPF included, plus synthetic events), exporting over
// OTLP to the test receiver with export periods far longer than the test (1 h for metrics, 60 s for the
// event queue), so whatever arrives was sent by the shutdown flush:
// - SIGTERM: exit 0, the metrics of the last collection and every queued event reach the receiver, the
//   BPF programs the process held are gone from the kernel;
// - kill -9: the kernel drops every program and link the process held (nothing pinned, links are fds);
// - restart: the same probes run in the same states, holding as many programs as the first run, and none
//   of the killed run's.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { type OtlpReceiver, startOtlpReceiver } from '../env/otlp-receiver/receiver.ts';
import { bpfHeld, loadedLinkIds, loadedProgIds, PodnetProcess, sleep, until } from './lib.ts';

let rx: OtlpReceiver;
const procs: PodnetProcess[] = [];

before(async () => {
  rx = await startOtlpReceiver();
});
after(async () => {
  for (const p of procs) if (!p.exited) await p.stop();
  await rx?.down();
});

const config = () => `collection_interval: 500ms
server: { address: "127.0.0.1:0" }
probes:
  synthetic: { enabled: true, args: { event_rate_per_sec: 100 } }
exporters:
  otlp: { endpoint: "${rx.httpEndpoint}", protocol: http/protobuf, interval: 1h }
event_queue: { max_queue_size: 100000, max_export_batch_size: 100000, schedule_delay: 60s }
`;

interface Status {
  collections: number;
  probes: Array<{ name: string; state: string; reason: string | null }>;
  events: { emitted: number; sent: number; queued: number };
}

async function start(): Promise<PodnetProcess> {
  const p = await PodnetProcess.start(config());
  procs.push(p);
  await until(async () => (await p.status<Status>()).collections >= 2, 20_000, 'two collections');
  return p;
}

const ebpfStates = (s: Status) =>
  Object.fromEntries(s.probes.map((x) => [x.name, `${x.state}${x.reason ? `: ${x.reason}` : ''}`]));

async function gone(ids: readonly number[], list: () => Set<number>): Promise<number[]> {
  let left: number[] = [];
  for (let i = 0; i < 50; i++) {
    const now = list();
    left = ids.filter((id) => now.has(id));
    if (left.length === 0) return [];
    await sleep(100); // the kernel frees programs asynchronously (RCU) after the last fd closes
  }
  return left;
}

let firstStates: Record<string, string>;
let firstProgCount = 0;

test('SIGTERM flushes the last metrics and every queued event, exits 0, detaches everything', async () => {
  rx.clear();
  const p = await start();
  // A kernel drop of our own (UDP to a closed loopback port: NO_SOCKET in the host netns), so the last
  // collection has podnet.kernel.drop.count points even on an otherwise quiet machine.
  const udp = createSocket('udp4');
  await new Promise<void>((r) => udp.send(Buffer.alloc(8), 9, '127.0.0.1', () => r()));
  udp.close();
  await sleep(1500);
  const s = await p.status<Status>();
  firstStates = ebpfStates(s);
  assert.equal(s.probes.find((x) => x.name === 'packetloss')?.state, 'running');
  const held = bpfHeld(p.pid);
  firstProgCount = held.progIds.length;
  assert.ok(held.progIds.length > 0);
  assert.equal(rx.logs.length, 0, 'nothing exported before the shutdown (60 s schedule)');
  assert.equal(
    rx.points.filter((x) => x.name.startsWith('podnet.synthetic')).length,
    0,
    'no metric export before the shutdown (1 h interval)',
  );
  const emittedBefore = s.events.emitted;
  assert.ok(emittedBefore > 50, `emitted ${emittedBefore}`);
  p.signal('SIGTERM');
  const r = await p.waitExit(30_000);
  assert.deepEqual(r, { code: 0, signal: null }, p.tail());
  assert.match(p.stderr, /shutting down: flushing exporters/);
  // Every event handed in until the end was sent, and the final podnet.event.count export says so exactly.
  const count = (outcome: string) =>
    rx.points
      .filter((x) => x.name === 'podnet.event.count' && x.attributes['podnet.event.outcome'] === outcome)
      .reduce((a, x) => Math.max(a, x.value), 0);
  assert.ok(
    rx.logs.length >= emittedBefore,
    `received ${rx.logs.length} < emitted before SIGTERM ${emittedBefore}`,
  );
  assert.ok(rx.logs.some((l) => l.eventName === 'podnet.synthetic.anomaly'));
  assert.equal(count('lost_queue_full') + count('lost_export_failed'), 0);
  assert.equal(
    count('sent'),
    rx.logs.length,
    'the last export counts every event sent by the shutdown flush',
  );
  // The last collection's data: synthetic metrics and the eBPF/procfs probes' metrics.
  const names = new Set(rx.points.map((x) => x.name));
  for (const n of [
    'podnet.synthetic.packet.count',
    'podnet.kernel.drop.count',
    'podnet.softnet.processed',
    'podnet.probe.state',
  ])
    assert.ok(names.has(n), `${n} not flushed: ${[...names].join(' ')}`);
  assert.deepEqual(await gone(held.progIds, loadedProgIds), [], 'programs still loaded after SIGTERM');
  assert.deepEqual(await gone(held.linkIds, loadedLinkIds), [], 'links still present after SIGTERM');
  await p.stop();
});

test('kill -9 leaves no BPF program or link attached; a restart is clean', async () => {
  const p = await start();
  const held = bpfHeld(p.pid);
  assert.ok(held.progIds.length > 0 && held.linkIds.length > 0);
  p.signal('SIGKILL');
  const r = await p.waitExit();
  assert.equal(r.signal, 'SIGKILL');
  assert.deepEqual(await gone(held.progIds, loadedProgIds), [], 'programs survived kill -9');
  assert.deepEqual(await gone(held.linkIds, loadedLinkIds), [], 'links survived kill -9');

  const q = await start();
  await sleep(1000);
  const s = await q.status<Status>();
  assert.deepEqual(
    ebpfStates(s),
    firstStates,
    'the restarted process runs the same probes in the same states',
  );
  const held2 = bpfHeld(q.pid);
  assert.equal(held2.progIds.length, firstProgCount);
  assert.equal(held2.progIds.filter((id) => held.progIds.includes(id)).length, 0);
  const ok = await q.stop();
  assert.equal(ok.code, 0);
});
