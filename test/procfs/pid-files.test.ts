// The process probe's kept /proc/<pid>/io and /proc/<pid>/fd fds (probes/process/pid-files.ts) against
// the kernel's own listing: a stopped child holding 2,500 fds (its fd directory lists over 32 KiB, more
// than one getdents64) and 40 sockets; the fd count must equal `ls /proc/<pid>/fd`, the socket inodes
// those of `ls -l` (`socket:[inode]` links), the io text `cat /proc/<pid>/io` — read through kept fds
// twice (the second read rewinds the kept directory), 300 times more under a stream of signals, and with
// a budget of 0 (open, read, close). Once
// the child is gone, a kept read fails with ENOENT/ESRCH and its fds are closed, not shown again.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PidFiles } from '../../probes/process/pid-files.ts';

const CHILD = `
const fs = require('node:fs');
const dgram = require('node:dgram');
for (let i = 0; i < 2500; i++) fs.openSync('/dev/null', 'r');
const socks = [];
let bound = 0;
for (let i = 0; i < 40; i++) {
  const s = dgram.createSocket('udp4');
  socks.push(s);
  s.bind(0, '127.0.0.1', () => { if (++bound === 40) process.stdout.write('ready\\n'); });
}
setInterval(() => {}, 1000);
`;

function truth(pid: number): { fds: number; sockets: number[]; io: string } {
  const long = execFileSync('ls', ['-l', `/proc/${pid}/fd`], { encoding: 'utf8' });
  const sockets = [...long.matchAll(/-> socket:\[(\d+)\]/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  const fds = execFileSync('ls', [`/proc/${pid}/fd`], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean).length;
  const io = execFileSync('cat', [`/proc/${pid}/io`], { encoding: 'utf8' });
  return { fds, sockets, io };
}

test('pid files: kept and uncached reads equal ls / cat of a stopped process; a gone process fails', async () => {
  const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = child.pid!;
  try {
    await once(child.stdout!, 'data');
    process.kill(pid, 'SIGSTOP'); // nothing changes while we compare: wait until every thread is stopped
    const stopped = (): boolean =>
      readdirSync(`/proc/${pid}/task`).every((t) =>
        /\) [tT] /.test(readFileSync(`/proc/${pid}/task/${t}/stat`, 'latin1')),
      );
    // Every thread has to be scheduled once to stop: a wait, not a check (2 s was short at load 30).
    for (const t0 = Date.now(); !stopped() && Date.now() - t0 < 60_000; ) await sleep(10);
    assert.ok(stopped(), 'child stopped');
    const want = truth(pid);
    assert.ok(
      want.fds > 2500 && want.sockets.length >= 40,
      `${want.fds} fds, ${want.sockets.length} sockets`,
    );
    const kept = new PidFiles(100);
    const uncached = new PidFiles(0);
    for (const [files, name] of [
      [kept, 'kept'],
      [kept, 'kept, again'],
      [uncached, 'budget 0'],
    ] as const) {
      const sockets = new Set<number>();
      const r = files.read(pid, sockets);
      assert.equal(r.fds, want.fds, `${name}: fds`);
      assert.deepEqual(
        [...sockets].sort((a, b) => a - b),
        want.sockets,
        `${name}: socket inodes`,
      );
      assert.equal(r.io, want.io, `${name}: io`);
    }
    assert.equal(kept.size, 1);
    assert.equal(uncached.size, 0);
    // Under a stream of signals to this process (SIGCHLD: node has a handler for its children), a
    // getdents64 can end short of a full buffer with entries left: the listing must still be whole.
    // It reports its first signal sent: the reads below start under signals however late it is scheduled.
    const signaller = spawn(
      'sh',
      ['-c', `kill -CHLD ${process.pid} && echo go && while kill -CHLD ${process.pid}; do :; done`],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    try {
      await once(signaller.stdout!, 'data');
      for (let i = 0; i < 300; i++)
        assert.equal(kept.read(pid, new Set()).fds, want.fds, `kept, under signals (read ${i}): fds`);
    } finally {
      signaller.kill('SIGKILL');
      await once(signaller, 'close');
    }
    child.kill('SIGKILL');
    await once(child, 'close'); // its stdout pipe closed too: only the kept fds change the count below
    const openBefore = readdirSync('/proc/self/fd').length;
    assert.throws(
      () => kept.read(pid, new Set()),
      (err: NodeJS.ErrnoException) => err.code === 'ENOENT' || err.code === 'ESRCH',
    );
    assert.equal(kept.size, 0, 'the fds of a gone process are dropped');
    assert.equal(readdirSync('/proc/self/fd').length, openBefore - 2, 'and closed');
  } finally {
    child.kill('SIGKILL');
  }
});
