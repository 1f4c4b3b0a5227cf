// PODNET_HOST_NETNS (receiver/netns/setns.ts, for tests and unusual setups): a /proc/<pid>/ns/net names
// the node's netns and its pid; any other form stops the start with the variable named.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { test } from 'node:test';

const SETNS = new URL('../../receiver/netns/setns.ts', import.meta.url).href;
const script = `const m = await import(${JSON.stringify(SETNS)});
console.log(JSON.stringify({ path: m.hostNetnsPath, pid: m.hostNetnsPid, inode: m.hostNetnsInode, home: m.homeNetnsInode }));`;

function load(value: string, netns?: string): { status: number | null; stdout: string; stderr: string } {
  const cmd = netns ? ['unshare', '--net', process.execPath] : [process.execPath];
  const r = spawnSync(cmd[0]!, [...cmd.slice(1), '--input-type=module', '-e', script], {
    env: { ...process.env, PODNET_HOST_NETNS: value },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a /proc/<pid>/ns/net from a child netns names that netns and pid as the node', () => {
  const r = load(`/proc/${process.pid}/ns/net`, 'own');
  assert.equal(r.status, 0, r.stderr);
  const v = JSON.parse(r.stdout) as { path: string; pid: number; inode: number; home: number };
  assert.equal(v.path, `/proc/${process.pid}/ns/net`);
  assert.equal(v.pid, process.pid);
  assert.equal(v.inode, statSync('/proc/self/ns/net').ino);
  assert.notEqual(v.home, v.inode);
});

test('other forms and unreadable paths fail naming the variable', () => {
  for (const bad of ['/run/netns/x', '/proc/self/ns/net', '/proc/999999999/ns/net']) {
    const r = load(bad);
    assert.notEqual(r.status, 0, bad);
    assert.match(r.stderr, /PODNET_HOST_NETNS=/, bad);
  }
});
