// "Anything queued on these kept netlink sockets?" over N netns, two ways, alternated in one process:
// a non-blocking recv(2) per socket (`drainPending`, as the qdisc probe's link names and the peer
// resolver's addresses did per netns) and one poll(2) over all of them (`NetlinkSocket.pollPending`, as
// they do now once per collection / rebuild). Each socket is a NETLINK_ROUTE socket inside its own
// test-created netns, joined to RTNLGRP_LINK, with nothing queued (the common case: no link event since
// the last look). Reports CPU (user + system of this process) per pass over the N sockets.
//
//   node benchmarks/netlink/pending.ts [--netns 1000] [--rounds 20]   (root)
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { NETLINK_ROUTE, NetlinkSocket } from '../../receiver/netlink/socket.ts';

const { values: o } = parseArgs({
  options: { netns: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '20' } },
});
const n = Number(o.netns);
const rounds = Number(o.rounds);
const prefix = `pnpd${process.pid}s`;
const RTNLGRP_LINK = 1;

const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
execFileSync('ip', ['-force', '-batch', '-'], {
  input: `${names.map((x) => `netns add ${x}`).join('\n')}\n`,
});
const socks: NetlinkSocket[] = [];
let failed = false;
try {
  for (const x of names) {
    const s = NetlinkSocket.open(`/run/netns/${x}`, NETLINK_ROUTE);
    s.join(RTNLGRP_LINK);
    socks.push(s);
  }
  const cpuUs = (): number => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const pending = new Uint8Array(n);
  const times = { recv: [] as number[], poll: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    for (const way of r % 2 ? (['poll', 'recv'] as const) : (['recv', 'poll'] as const)) {
      const t0 = cpuUs();
      let any = 0;
      if (way === 'recv') {
        for (const s of socks) if (s.drainPending()) any++;
      } else {
        NetlinkSocket.pollPending(socks, pending);
        for (let i = 0; i < n; i++) any += pending[i]!;
      }
      times[way].push(cpuUs() - t0);
      if (any !== 0) {
        // nothing was changed in these netns: a pending socket here would make the comparison unfair
        console.error(`${way}: ${any} sockets had something queued`);
        failed = true;
      }
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const recv = median(times.recv) / 1000;
  const poll = median(times.poll) / 1000;
  console.log(
    `${n} kept sockets, ${rounds} rounds alternated, median CPU per pass: recv(2) each ${recv.toFixed(2)} ms, one poll(2) ${poll.toFixed(2)} ms (${(recv / poll).toFixed(1)}x)`,
  );
} finally {
  for (const s of socks) s.close();
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: `${names.map((x) => `netns del ${x}`).join('\n')}\n`,
  });
}
if (failed) process.exit(1);
