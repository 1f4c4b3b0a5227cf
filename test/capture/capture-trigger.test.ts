// Triggered captures in a real containerd pod: an nft rule drops UDP to port 7777 in the pod, the
// packetloss probe reports NETFILTER_DROP events, a rule (5 drops in 10 s) starts a capture of that
// tuple. The triggering event carries podnet.capture.id, a podnet.capture.done record carries the same
// id, /captures serves the file, and tshark finds exactly the dropped flow's packets sent after the
// trigger. Then many triggers: the files on disk never exceed capture.triggers.max_files /
// max_total_bytes (oldest deleted first), and every trigger or skip is counted in podnet.capture.count.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import koffi from 'koffi';
import { probeSpecs } from '../../probes/registry.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { socketInNetns } from '../../receiver/netns/setns.ts';
import type { EventRecord } from '../../receiver/otel/event-pipeline.ts';
import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { sockaddr } from '../env/netns.ts';
import { tsharkFields } from './tools.ts';

const libc = koffi.load('libc.so.6');
const sendto = libc.func(
  'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
) as (fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, addrlen: number) => number;
const closeFd = libc.func('int close(int fd)') as (fd: number) => number;

let env: CriEnv;
let web: TestPod;
let cli: TestPod;
let agent: Agent;
const records: EventRecord[] = [];
const dir = mkdtempSync(`/tmp/pncapt${process.pid}-`);
const capDir = join(dir, 'captures');
const MAX_FILES = 3;
const MAX_TOTAL = 120_000;

before(async () => {
  env = await startCriEnv();
  web = await env.runPod({ name: 'web', namespace: 'pnt' });
  cli = await env.runPod({ name: 'cli', namespace: 'pnt' });
  execFileSync('nsenter', [
    `--net=/proc/${web.pid}/ns/net`,
    'nft',
    'add table inet pncapt; add chain inet pncapt in { type filter hook input priority 0; policy accept; }; add rule inet pncapt in udp dport 7777 counter drop',
  ]);
  const off = probeSpecs
    .filter((s) => s.name !== 'packetloss')
    .map((s) => `${s.name}: { enabled: false }, `)
    .join('');
  agent = await Agent.start({
    configText: `
collection_interval: 1s
server: { address: "127.0.0.1:0" }
pods: { cri_endpoint: ${JSON.stringify(env.endpoint)}, netns_discovery: never }
probes: { ${off} packetloss: { enabled: true, args: { rate_limit: 0 } } }
capture:
  max_concurrent: 4
  triggers:
    enabled: true
    dir: ${JSON.stringify(capDir)}
    max_files: ${MAX_FILES}
    max_total_bytes: ${MAX_TOTAL}
    rules:
      - { event: podnet.packet.drop, reason: NETFILTER_DROP, pod: pnt/web, count: 5, window: 10s, duration: 1500ms, max_bytes: 30000, cooldown: 0s }
`,
    env: {},
  });
  agent.pipeline.events.subscribe((r) => records.push(r));
});

after(async () => {
  await agent?.stop();
  await env?.teardown();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, ms = 15_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (cond()) return true;
  return cond();
}

/** Runs `fn` with a UDP socket in the client pod (every datagram of one socket is one tuple); always closed. */
async function withPodSocket<T>(fn: (send: (n: number) => void) => Promise<T>): Promise<T> {
  const sa = sockaddr(web.ip, 7777);
  const fd = socketInNetns(`/proc/${cli.pid}/ns/net`, sa.family, 2, 0);
  const payload = Buffer.alloc(48, 0x70);
  try {
    return await fn((n) => {
      for (let i = 0; i < n; i++)
        assert.ok(sendto(fd, payload, payload.length, 0, sa.bytes, sa.bytes.length) >= 0);
    });
  } finally {
    closeFd(fd);
  }
}

/** Packets the web pod's nft drop rule counted (the kernel's count of the drops that trigger). */
function nftDropped(): number {
  const out = execFileSync(
    'nsenter',
    [`--net=/proc/${web.pid}/ns/net`, 'nft', '-j', 'list', 'table', 'inet', 'pncapt'],
    {
      encoding: 'utf8',
    },
  );
  const doc = JSON.parse(out) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
  const counters = doc.nftables.flatMap(
    (o) => o.rule?.expr.flatMap((e) => (e.counter ? [e.counter] : [])) ?? [],
  );
  assert.equal(counters.length, 1, out);
  return counters[0]!.packets;
}

type CaptureList = {
  captures: { id: string; file: string; state: string; filter: string }[];
  counts: { triggered: number; skipped: number };
};
const captures = async () => (await (await fetch(`${agent.serverUrl}/captures`)).json()) as CaptureList;

const dropsWithId = () =>
  records.filter(
    (r) => r.name === 'podnet.packet.drop' && typeof r.attributes['podnet.capture.id'] === 'string',
  );

test('5 drops trigger a capture of the tuple: id on the event and the follow-up, file with the flow (tshark)', async () => {
  const id = await withPodSocket(async (send) => {
    send(5);
    assert.ok(await waitFor(() => dropsWithId().length === 1), `${records.length} records`);
    const trigger = dropsWithId()[0]!;
    assert.equal(trigger.attributes['destination.address'], web.ip);
    assert.equal(trigger.entity, 'pnt/web');
    // the flow keeps being dropped while the capture runs
    for (let i = 0; i < 10; i++) {
      send(2);
      await sleep(50);
    }
    return trigger.attributes['podnet.capture.id'] as string;
  });
  const isDone = (r: EventRecord) =>
    r.name === 'podnet.capture.done' && r.attributes['podnet.capture.id'] === id;
  assert.ok(await waitFor(() => records.some(isDone)));
  const done = records.find(isDone)!;
  assert.equal(done.entity, 'pnt/web');
  assert.equal(done.attributes['podnet.capture.packets'], 20);

  const list = await captures();
  const entry = list.captures.find((c) => c.id === id);
  assert.ok(entry, JSON.stringify(list));
  assert.equal(entry.state, 'done');
  assert.match(
    entry.filter,
    new RegExp(`host ${cli.ip} and host ${web.ip} and udp and port \\d+ and port 7777`),
  );
  const res = await fetch(`${agent.serverUrl}${entry.file}`);
  assert.equal(res.status, 200);
  const f = join(dir, 'served.pcapng');
  writeFileSync(f, Buffer.from(await res.arrayBuffer()));
  const rows = tsharkFields(f, [
    'ip.src',
    'ip.dst',
    'udp.dstport',
    'udp.length',
    'frame.interface_name',
  ]).rows;
  assert.equal(rows.length, 20, JSON.stringify(rows));
  for (const r of rows) assert.deepEqual(r, [cli.ip, web.ip, '7777', String(8 + 48), 'eth0']);
});

test('many triggers: files stay within max_files and max_total_bytes; triggers and skips are counted', async () => {
  const bursts = 8;
  for (let b = 0; b < bursts; b++) {
    await withPodSocket(async (send) => send(5));
    await sleep(400);
    const files = readdirSync(capDir).filter((n) => n.endsWith('.pcapng'));
    const total = readdirSync(capDir).reduce((sum, n) => sum + statSync(join(capDir, n)).size, 0);
    assert.ok(files.length <= MAX_FILES, `${files.length} files after burst ${b}`);
    assert.ok(total <= MAX_TOTAL, `${total} bytes after burst ${b}`);
  }
  // every drop reached the pipeline (the kernel's count), and every capture it started has ended
  const dropped = nftDropped();
  const drops = () =>
    records.filter(
      (r) =>
        r.name === 'podnet.packet.drop' &&
        r.entity === 'pnt/web' &&
        r.attributes['error.type'] === 'NETFILTER_DROP',
    ).length;
  assert.ok(await waitFor(() => drops() === dropped), `${drops()} drop events, nft counted ${dropped}`);
  let list = await captures();
  for (const end = Date.now() + 15_000; Date.now() < end; await sleep(100)) {
    list = await captures();
    if (list.captures.every((c) => c.state === 'done')) break;
  }
  assert.ok(
    list.captures.every((c) => c.state === 'done'),
    JSON.stringify(list.captures),
  );
  assert.ok(list.captures.length <= MAX_FILES);
  assert.deepEqual(
    readdirSync(capDir)
      .filter((n) => n.endsWith('.pcapng'))
      .map((n) => n.replace('.pcapng', ''))
      .sort(),
    list.captures.map((c) => c.id).sort(),
  );
  // one trigger decision per 5 drops the kernel counted (the window restarts after each decision;
  // cooldown 0), over both tests
  assert.equal(
    list.counts.triggered + list.counts.skipped,
    Math.floor(dropped / 5),
    JSON.stringify(list.counts),
  );
  assert.ok(list.counts.triggered > MAX_FILES, 'older files had to be deleted');
  const metrics = await (await fetch(`${agent.serverUrl}/metrics`)).text();
  const m = /podnet_capture_count_total\{[^}]*podnet_capture_outcome="triggered"[^}]*\} (\d+)/.exec(metrics);
  assert.ok(
    m,
    metrics
      .split('\n')
      .filter((l) => l.includes('capture'))
      .join('\n'),
  );
  assert.equal(Number(m[1]), list.counts.triggered);
});
