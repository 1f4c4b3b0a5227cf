// System calls per netlink round trip, counted by strace (an independent tool) on a child process that
// does nothing but N qdisc dumps and N conntrack stats round trips: a one-datagram dump is one sendto
// and one recvmmsg (its data and NLMSG_DONE in one call, receiver/netlink/recvmmsg.ts), conntrack's
// global stats and per-CPU dump together one sendto and one recvmmsg (`NetlinkSocket.requestPair`), and
// no recv/recvfrom at all. Fails when a reply takes a call per datagram again (2 or 3 receives per round
// trip), or when the pair is sent as two requests. The replies are checked too: the qdisc count equals
// what `tc qdisc show` lists, the conntrack entries what `conntrack -C` counts, in the same netns.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { inNs, TestNetwork } from './env.ts';

const net = new TestNetwork('y');
let NS = '';
const N = 25;
const FIXTURE = new URL('./fixtures/round-trips.ts', import.meta.url).pathname;

before(() => {
  NS = net.addNetns('s');
  inNs(NS, 'ip', ['link', 'add', 'pnsa', 'type', 'veth', 'peer', 'name', 'pnsb']);
  inNs(NS, 'ip', ['link', 'set', 'pnsa', 'up']);
  inNs(NS, 'ip', ['link', 'set', 'pnsb', 'up']);
});
after(() => net.cleanup());

test('syscalls: a qdisc dump and a conntrack stats pair take one sendto and one recvmmsg each', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pnl-strace-'));
  try {
    const out = join(dir, 'trace');
    const printed = execFileSync(
      'strace',
      [
        '-f',
        '-qq',
        '-e',
        'trace=sendto,sendmsg,recvfrom,recvmsg,recvmmsg',
        '-o',
        out,
        process.execPath,
        FIXTURE,
        `/run/netns/${NS}`,
        String(N),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const got = JSON.parse(printed) as { qdiscs: number; entries: number };
    const calls = new Map<string, number>();
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      // `<pid> name(args) = result`: only netlink (AF_NETLINK sockets are all this child opens)
      const m = /^\d+\s+(\w+)\(/.exec(line);
      if (m) calls.set(m[1]!, (calls.get(m[1]!) ?? 0) + 1);
    }
    assert.equal(
      calls.get('sendto'),
      2 * N,
      `one sendto per qdisc dump and per conntrack pair: ${[...calls]}`,
    );
    assert.equal(calls.get('recvmmsg'), 2 * N, `one recvmmsg per round trip: ${[...calls]}`);
    assert.equal(calls.get('recvfrom') ?? 0, 0, `no recv per datagram: ${[...calls]}`);
    assert.equal(calls.get('recvmsg') ?? 0, 0);

    const tcQdiscs = (JSON.parse(inNs(NS, 'tc', ['-j', 'qdisc', 'show'])) as unknown[]).length;
    assert.ok(tcQdiscs >= 3, `lo, pnsa and pnsb have qdiscs (${tcQdiscs})`);
    assert.equal(got.qdiscs, tcQdiscs, 'qdiscs: tc qdisc show');
    // conntrack -C prints the netns' entry count; nothing runs in this netns, so it stays put
    assert.equal(got.entries, Number(inNs(NS, 'conntrack', ['-C']).trim()), 'entries: conntrack -C');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
