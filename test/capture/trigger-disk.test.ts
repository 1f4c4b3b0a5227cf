// Triggered captures against a directory that cannot take the file: read-only (the file cannot be
// created) and full (a write fails with ENOSPC mid-capture). The agent must go on: the failure is counted
// and logged, no partial file is left, the follow-up record says "error". And a reload (configure) starts
// the rules' cooldowns over, since rule indexes may name other rules afterwards. Real sessions in a
// netns pair; the directory is a tmpfs the test mounts (read-only, or 8 KiB).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { captureSchema } from '../../receiver/capture/config.ts';
import type { CaptureSession, CaptureSlots } from '../../receiver/capture/session.ts';
import { ATTR_CAPTURE_ID, TriggeredCaptures } from '../../receiver/capture/trigger.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { ProbeEvent } from '../../receiver/probe/types.ts';
import { createNetnsPair } from '../env/netns.ts';

const pair = createNetnsPair({ prefix: 'pncap', tag: 'd' });
const root = mkdtempSync(`/tmp/pncapd${process.pid}-`);
const mounts: string[] = [];
after(() => {
  for (const m of mounts) execFileSync('umount', [m]);
  pair.cleanup();
  rmSync(root, { recursive: true, force: true });
});

function tmpfs(name: string, options: string): string {
  const dir = join(root, name);
  execFileSync('mkdir', ['-p', dir]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

const entity: Entity = {
  kind: 'pod',
  netnsInode: pair.b.inode,
  netnsPath: pair.b.path,
  displayName: 'pnt/b',
  pod: {
    uid: 'u-b',
    name: 'b',
    namespace: 'pnt',
    labels: {},
    ips: [pair.b.ipv4],
    sandboxId: 's-b',
    hostNetwork: false,
  },
};

const event: ProbeEvent = {
  name: 'podnet.packet.drop',
  type: 'PACKETLOSS',
  netns: pair.b.inode,
  timeUnixNano: 0n,
  attributes: {},
  severity: 'WARN',
};

function harness(dir: string, rule: Record<string, unknown>) {
  const config = captureSchema.parse({
    triggers: { enabled: true, dir, rules: [{ event: event.name, match_tuple: false, ...rule }] },
  }).triggers;
  const sessions: CaptureSession[] = [];
  const slots: CaptureSlots = {
    counts: { on_demand: 0, refused: 0, triggered: 0, skipped: 0, failed: 0 },
    active: 0,
    hasRoom: () => true,
    track: (s) => sessions.push(s),
  };
  const emitted: ProbeEvent[] = [];
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => warnings.push(JSON.parse(l).msg) });
  const t = new TriggeredCaptures({ config, service: slots, log, emit: (e) => emitted.push(e) });
  return { t, config, slots, sessions, emitted, warnings };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, ms = 10_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (cond()) return true;
  return cond();
}

test('read-only directory: the capture fails to start, counted and logged; no crash, no file', () => {
  const dir = tmpfs('ro', 'ro,size=64k');
  const h = harness(dir, { duration: '1s' });
  assert.equal(h.t.onEvent(event, entity), undefined);
  assert.equal(h.slots.counts.failed, 1);
  assert.equal(h.slots.counts.triggered, 0);
  assert.equal(h.sessions.length, 0, 'no session without a file');
  assert.ok(h.warnings.includes('triggered capture cannot create its file'), JSON.stringify(h.warnings));
  assert.deepEqual(readdirSync(dir), []);
});

test('full directory: ENOSPC mid-capture stops it; the partial file is removed, the follow-up says error', async () => {
  const dir = tmpfs('full', 'size=8k'); // 2 pages: the section header fits, 100 packets of 1000 bytes do not
  const h = harness(dir, { duration: '5s', snaplen: 1500, cooldown: '0s' });
  const attrs = h.t.onEvent(event, entity);
  const id = attrs?.[ATTR_CAPTURE_ID];
  assert.equal(typeof id, 'string');
  assert.equal(h.sessions.length, 1);
  pair.a.sendUdp(pair.b.ipv4, 7777, 100, 1000);
  assert.ok(await waitFor(() => h.emitted.length === 1), 'no podnet.capture.done record');
  const done = h.emitted[0]!;
  assert.equal(done.attributes[ATTR_CAPTURE_ID], id);
  assert.equal(done.attributes['podnet.capture.stop_reason'], 'error');
  assert.equal(done.attributes['podnet.capture.file'], undefined, 'no file to point at');
  assert.equal(
    (await h.sessions[0]!.done).reason,
    'stopped',
    'stopped by the write error, not by its duration',
  );
  assert.equal(h.slots.counts.failed, 1);
  assert.ok(
    h.warnings.includes('triggered capture cannot write its file; stopped'),
    JSON.stringify(h.warnings),
  );
  assert.deepEqual(readdirSync(dir), [], 'partial file left on disk');
  assert.deepEqual(h.t.list(), []);
});

test('configure() starts the cooldowns over (rule indexes may name other rules after a reload)', async () => {
  const dir = join(root, 'cooldown');
  const h = harness(dir, { duration: '200ms', cooldown: '1h' });
  const first = h.t.onEvent(event, entity);
  assert.ok(first?.[ATTR_CAPTURE_ID]);
  assert.equal(h.t.onEvent(event, entity), undefined, 'within the cooldown');
  h.t.configure(h.config);
  const again = h.t.onEvent(event, entity);
  assert.ok(again?.[ATTR_CAPTURE_ID], 'a reload must not carry the old cooldown');
  assert.notEqual(again[ATTR_CAPTURE_ID], first[ATTR_CAPTURE_ID]);
  await Promise.all(h.sessions.map((s) => s.done));
  assert.equal(h.slots.counts.triggered, 2);
});
