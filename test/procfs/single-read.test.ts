// One-record procfs files (`NetFile.single`, receiver/procfs/read.ts) are read without the confirming read
// of 0: a short read is taken as the end of the file. The bytes must still be the whole file, equal to
// what `cat` prints in the same netns (idle; `cat` before and after must agree: `sockets: used` drops a
// moment after the setup's `ip` commands, whose netlink sockets are freed after an RCU grace) — for a
// file read at the start of the buffer, and for one that starts too near the buffer's end to fit, so the
// first read is cut by the room left and the rest comes in later reads. net/dev (`NetFile.maxRecord`) is
// read without the read of 0 when its first read ends well before a page: whole for a netns with lo only,
// and for one with 40 interfaces, whose file is over a page (the first read stops where the page fills).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { readNetBytes } from '../../receiver/procfs/netns-files.ts';
import { type NetFile, preadInto, readBuffer } from '../../receiver/procfs/read.ts';
import { inNs, namedEntity, sh, stableRead } from './env.ts';

const ns = `pnsr${process.pid}`;
const big = `pnsr${process.pid}b`;
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
  sh('ip', ['netns', 'add', big]);
  const links = Array.from({ length: 20 }, (_, i) => `link add pnsra${i} type veth peer name pnsrb${i}`).join(
    '\n',
  );
  sh('ip', ['-n', big, '-batch', '-'], `${links}\n`);
});

after(() => {
  sh('ip', ['netns', 'del', ns]);
  sh('ip', ['netns', 'del', big]);
});

test('net/dev read without the read of 0 when short: whole for 1 and for 40 interfaces (over a page)', async () => {
  const dev: readonly NetFile[] = [{ name: 'dev', maxRecord: 512 }];
  for (const n of [ns, big]) {
    const [want, got] = await stableRead(
      () => inNs(n, 'cat', '/proc/net/dev'),
      async () => {
        const bytes = readNetBytes(namedEntity(n), dev);
        return bytes.buf.toString('latin1', bytes.start[0]!, bytes.end[0]!);
      },
    );
    if (n === big) assert.ok(want.length > 4096, `${want.length} bytes: more than a page`);
    assert.equal(got, want, n);
  }
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
            const end = preadInto(fd, at, { name, single: true });
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
