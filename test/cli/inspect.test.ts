// `podnet inspect` in a real terminal: a tmux session runs it against a running `podnet run`; the test
// reads the screen (capture-pane), sorts by a key press and quits with q.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { disableRegistered, MAIN, NODE, PodnetRun } from './podnet-process.ts';

const SESSION = `pno${process.pid}-inspect`;
let run: PodnetRun;

function tmux(...args: string[]): string {
  return execFileSync('tmux', args, { encoding: 'utf8' });
}

function screen(): string {
  return tmux('capture-pane', '-p', '-t', SESSION);
}

async function waitScreen(pred: (s: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let s = '';
  while (Date.now() < deadline) {
    s = screen();
    if (pred(s)) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`screen never showed ${what}:\n${s}`);
}

function sessionAlive(): boolean {
  try {
    tmux('has-session', '-t', SESSION);
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  run = await PodnetRun.start(`
collection_interval: 300ms
server: { address: "127.0.0.1:0" }
pods: { netns_discovery: never }
probes: { ${disableRegistered()}synthetic: { enabled: true, args: { event_rate_per_sec: 10, counter_step: 3 } } }
`);
});

after(async () => {
  if (sessionAlive()) tmux('kill-session', '-t', SESSION);
  await run.stop();
});

test('podnet inspect shows entities, rates, probes and recent events; keys sort and quit', async () => {
  tmux(
    'new-session',
    '-d',
    '-s',
    SESSION,
    '-x',
    '180',
    '-y',
    '45',
    NODE,
    MAIN,
    'inspect',
    '--url',
    run.url,
    '--interval',
    '400',
  );
  // Rates need two samples: wait until the counter column shows a number for the host.
  const s = await waitScreen(
    (x) =>
      /^host\s+host\s+\S+\s+[\d.]+\s+[\d.]+/m.test(x) &&
      x.includes('RECENT EVENTS') &&
      x.includes('SYNTHETIC_DROP'),
    'host row with rates and events',
  );
  assert.match(s, /podnet inspect\s+http:\/\/127\.0\.0\.1:\d+/);
  assert.match(s, /probes: synthetic=running/);
  assert.match(s, /^unattributed\s+unattribut/m);
  assert.match(s, /ENTITY\s+KIND\s+1:/);
  assert.match(s, /sort: name ↑/);
  // Column 2 is packet.count/receive (per second): counter_step 3 every 0.3 s → 10/s on average; one
  // refresh window (0.4 s) holds 1 or 2 collections, so a single reading lies between 7.5 and 15.
  const row = /^host\s+host\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(s)!;
  const header = /ENTITY\s+KIND\s+1:(\S+)\s+2:(\S+)\s+3:(\S+)\s+4:(\S+)/.exec(s)!;
  assert.equal(header[2], 'packet.count/receive/s');
  assert.equal(header[4], 'synthetic.queue.length');
  const rate = Number(row[2]);
  assert.ok(rate >= 2.5 && rate <= 40, `receive rate ${row[2]} not ≈ 10/s`);
  assert.equal(row[4], '42');
  // the peer of the synthetic tuple (10.0.0.1 → 10.0.0.2, private addresses nobody knows)
  assert.match(s, /host\s+podnet\.synthetic\.anomaly\s+SYNTHETIC_DROP\s+↔ unknown\s+NETFILTER_DROP/);

  tmux('send-keys', '-t', SESSION, '2');
  await waitScreen((x) => x.includes('sort: packet.count/receive/s ↓'), 'sort by column 2');
  tmux('send-keys', '-t', SESSION, 'r');
  await waitScreen((x) => x.includes('sort: packet.count/receive/s ↑'), 'reversed sort');
  tmux('send-keys', '-t', SESSION, 'n');
  await waitScreen((x) => x.includes('sort: name ↑'), 'sort by name');

  tmux('send-keys', '-t', SESSION, 'q');
  const deadline = Date.now() + 10_000;
  while (sessionAlive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(sessionAlive(), false, 'inspect did not exit on q');
});
