import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { hostNetnsInode, inNetns, NetnsError } from '../../receiver/netns/setns.ts';

const ns = `pn-setns-${process.pid}`;

before(() => {
  execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['-n', ns, 'link', 'add', 'pnprobe0', 'type', 'veth', 'peer', 'name', 'pnprobe1']);
});
after(() => {
  execFileSync('ip', ['netns', 'del', ns]);
});

test('inNetns reads the target netns view and returns to the home netns', () => {
  const dev = inNetns(`/run/netns/${ns}`, () => readFileSync('/proc/thread-self/net/dev', 'utf8'));
  assert.match(dev, /pnprobe0:/);
  assert.doesNotMatch(readFileSync('/proc/thread-self/net/dev', 'utf8'), /pnprobe0:/);
  assert.equal(statSync('/proc/thread-self/ns/net').ino, hostNetnsInode);
});

test('inNetns returns home when the callback throws, and names a missing netns', () => {
  assert.throws(
    () =>
      inNetns(`/run/netns/${ns}`, () => {
        throw new Error('boom');
      }),
    /boom/,
  );
  assert.equal(statSync('/proc/thread-self/ns/net').ino, hostNetnsInode);
  assert.throws(() => inNetns('/run/netns/does-not-exist-pn', () => 1), NetnsError);
});

test('without CAP_SYS_ADMIN, entering a netns fails naming the capability and what it disables', () => {
  const script = `import { inNetns } from ${JSON.stringify(new URL('../../receiver/netns/setns.ts', import.meta.url).href)};
try { inNetns('/run/netns/${ns}', () => 1); console.log('entered'); } catch (e) { console.log(e.message); }`;
  const out = execFileSync(
    'setpriv',
    ['--bounding-set', '-sys_admin', process.execPath, '--input-type=module', '-e', script],
    {
      encoding: 'utf8',
    },
  );
  assert.match(out, /setns\(\/run\/netns\/pn-setns-\d+\) failed: CAP_SYS_ADMIN missing/);
  assert.match(out, /netlink probes sockets, conntrack, qdisc and ctevents/);
});
