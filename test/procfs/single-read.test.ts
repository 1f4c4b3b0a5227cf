// One-record procfs files (`NetFile.single`, receiver/procfs/read.ts) are read without the confirming read
// of 0: a short read is taken as the end of the file. The bytes must still be the whole file, equal to
// what `cat` prints in the same netns (idle; `cat` before and after must agree: `sockets: used` drops a
// moment after the setup's `ip` commands, whose netlink sockets are freed after an RCU grace) — for a
// file read at the start of the buffer, and for one that starts too near the buffer's end to fit, so the
// first read is cut by the room left and the rest comes in later reads.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { readNetBytes } from '../../receiver/procfs/netns-files.ts';
import { type NetFile, preadInto, readBuffer } from '../../receiver/procfs/read.ts';
import { inNs, namedEntity, sh, stableRead } from './env.ts';

const ns = `pnsr${process.pid}`;
const FILES: readonly NetFile[] = [
  { name: 'snmp', single: true },
  { name: 'netstat', single: true },
  { name: 'snmp6', single: true },
  { name: 'sockstat', single: true },
  { name: 'sockstat6', single: true },
];

before(() => {
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
});

after(() => {
  sh('ip', ['netns', 'del', ns]);
});

test('one-record files read without the read of 0 are whole: equal to cat in the netns', async () => {
  for (let i = 0; i < FILES.length; i++) {
    const name = FILES[i]!.name;
    const [want, got] = await stableRead(
      () => inNs(ns, 'cat', `/proc/net/${name}`),
      async () => {
        const bytes = readNetBytes(namedEntity(ns), FILES);
        return bytes.buf.toString('latin1', bytes.start[i]!, bytes.end[i]!);
      },
    );
    assert.equal(got, want, name);
  }
});

test('a one-record file cut by the room left in the buffer is read to its end', async () => {
  // A process in the netns: its /proc/<pid>/net files are bound to that netns when opened.
  const holder = spawn('ip', ['netns', 'exec', ns, 'sleep', '30'], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 300));
    for (const { name } of FILES) {
      const fd = openSync(`/proc/${holder.pid}/net/${name}`, 'r');
      try {
        // 30 bytes of room: the first read returns 30 bytes (all it asked for), the rest follows.
        const [want, got] = await stableRead(
          () => inNs(ns, 'cat', `/proc/net/${name}`),
          async () => {
            const at = readBuffer().length - 30;
            const end = preadInto(fd, at, true);
            return readBuffer().toString('latin1', at, end);
          },
        );
        assert.ok(want.length > 60, `${name}: ${want.length} bytes`);
        assert.equal(got, want, name);
      } finally {
        closeSync(fd);
      }
    }
  } finally {
    holder.kill();
  }
});
