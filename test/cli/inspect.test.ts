// `podnet inspect` in a real terminal: a tmux session runs it against a running `podnet run`; the test
// reads the screen (capture-pane), sorts by a key press and quits with q.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { disableRegistered, MAIN, NODE, PodnetRun } from './podnet-process.ts';

const SESSION = `pno${process.pid}-inspect`;
let run: PodnetRun;
let relay: Server;
let relayUrl = '';
const RATE_KEY = 'podnet.synthetic.packet.count/receive';
/** Every /inspect answer the view received (through the relay): server time and the host's counter total. */
const samples: { time: number; total: number }[] = [];

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
  // A relay between the view and podnet records each /inspect answer, so the rate on screen can be checked
  // against the exact two samples the view computed it from (their timing depends on the machine's load).
  relay = createServer((req, res) => {
    void (async () => {
      const r = await fetch(`${run.url}${req.url}`);
      const body = await r.text();
      if (req.url === '/inspect' && r.ok) {
        const d = JSON.parse(body) as {
          time: string;
          entities: { kind: string; totals: Record<string, number> }[];
        };
        const host = d.entities.find((e) => e.kind === 'host');
        if (host?.totals[RATE_KEY] !== undefined)
          samples.push({ time: Date.parse(d.time), total: host.totals[RATE_KEY] });
      }
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
      res.end(body);
    })().catch((err: Error) => {
      res.writeHead(502);
      res.end(err.message);
    });
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
});

after(async () => {
  if (sessionAlive()) tmux('kill-session', '-t', SESSION);
  relay?.close();
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
    relayUrl,
    '--interval',
    '400',
  );
  // Rates need two samples: wait until the counter column shows a non-zero number for the host.
  const s = await waitScreen(
    (x) =>
      /^host\s+host\s+\S+\s+(?!0\s)[\d.]+\s+[\d.]+/m.test(x) &&
      x.includes('RECENT EVENTS') &&
      x.includes('SYNTHETIC_DROP'),
    'host row with rates and events',
  );
  assert.match(s, /podnet inspect\s+http:\/\/127\.0\.0\.1:\d+/);
  const seen = [...samples];
  assert.match(s, /probes: synthetic=running/);
  assert.match(s, /^unattributed\s+unattribut/m);
  assert.match(s, /ENTITY\s+KIND\s+1:/);
  assert.match(s, /sort: name ↑/);
  // Column 2 is packet.count/receive per second: (Δ total) / (Δ server time) of the view's last two
  // /inspect samples. Nominally 7.5 or 15 (one or two 3-step collections in a 0.4 s refresh), but both
  // timers stretch under load, so the reading is checked against the samples the relay recorded: it must
  // be the rate of two consecutive samples (to the view's rounding), whose Δ total is a whole number of
  // collections (counter_step 3), no more than fit in Δt (collections start ≥ 300 ms apart).
  const row = /^host\s+host\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(s)!;
  const header = /ENTITY\s+KIND\s+1:(\S+)\s+2:(\S+)\s+3:(\S+)\s+4:(\S+)/.exec(s)!;
  assert.equal(header[2], 'packet.count/receive/s');
  assert.equal(header[4], 'synthetic.queue.length');
  const rate = Number(row[2]);
  const pairs = seen
    .slice(1)
    .map((b, i) => ({ dv: b.total - seen[i]!.total, dt: (b.time - seen[i]!.time) / 1000 }));
  const shown = pairs.find((p) => p.dt > 0 && Math.abs(p.dv / p.dt - rate) <= 0.05 + rate * 1e-3);
  assert.ok(shown, `receive rate ${row[2]} is no pair of the samples ${JSON.stringify(pairs)}`);
  assert.equal(shown.dv % 3, 0, `Δ total ${shown.dv} is not a whole number of collections`);
  assert.ok(
    shown.dv > 0 && shown.dv / 3 <= Math.floor(shown.dt / 0.3) + 1,
    `${shown.dv / 3} collections in ${shown.dt} s`,
  );
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
