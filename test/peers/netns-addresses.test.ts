// The addresses of named netns (plain-host mode) as the peer resolver sees them, against `ip -n NAME -j
// addr` (iproute2's own RTM_GETADDR listing): v4 (incl. a point-to-point local address), v6 global and
// link-local (without the zone), loopback left out. Read through the socket kept per netns
// (receiver/peers/local.ts NetnsAddresses: reuses its last dump until an address notification) and
// through a socket per read (readNetnsAddresses); addresses added and deleted after the first read are
// seen at the next read, and a netns that leaves the entity source has its socket closed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { test } from 'node:test';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { localPeers, NetnsAddresses, readNetnsAddresses } from '../../receiver/peers/local.ts';
import { PeerResolver } from '../../receiver/peers/resolver.ts';
import type { Entity } from '../../receiver/pods/entity.ts';

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

/** `ip -n NAME -j addr`'s local addresses, loopback left out, sorted. */
function ipAddrs(ns: string): string[] {
  const links = JSON.parse(ip('-n', ns, '-j', 'addr')) as { addr_info: { local: string }[] }[];
  return links
    .flatMap((l) => l.addr_info.map((a) => a.local))
    .filter((a) => !a.startsWith('127.') && a !== '::1')
    .sort();
}

/** Reads `read()` between two equal `ip` listings (a link-local v6 address appears on its own, later). */
function stable(ns: string, read: () => readonly string[]): { want: string[]; got: string[] } {
  for (let i = 0; ; i++) {
    const before = ipAddrs(ns);
    const got = [...read()].sort();
    const after = ipAddrs(ns);
    if (JSON.stringify(before) === JSON.stringify(after) || i >= 20) return { want: after, got };
  }
}

test('named netns addresses equal `ip -n NAME -j addr` (v4, ptp local, v6 global and link-local, no loopback); kept sockets follow changes and close with the netns', () => {
  const names = [0, 1, 2].map((i) => `pnpa${process.pid}x${i}`);
  const entities: Entity[] = [];
  const reader = new NetnsAddresses();
  try {
    for (const [i, ns] of names.entries()) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'add', 'pa0', 'type', 'veth', 'peer', 'name', 'pa1');
      ip('-n', ns, 'addr', 'add', `10.251.${i}.1/24`, 'dev', 'pa0');
      ip('-n', ns, 'addr', 'add', `10.251.${i}.9/24`, 'dev', 'pa0');
      ip('-n', ns, 'addr', 'add', `fd00:251:${i}::1/64`, 'dev', 'pa0');
      ip('-n', ns, 'addr', 'add', `2001:db8:${i}:0:1::1/64`, 'dev', 'pa1');
      ip('-n', ns, 'addr', 'add', `10.250.${i}.1`, 'peer', `10.250.${i}.2`, 'dev', 'pa1');
      ip('-n', ns, 'link', 'set', 'pa0', 'up');
      ip('-n', ns, 'link', 'set', 'pa1', 'up');
      const path = `/run/netns/${ns}`;
      entities.push({
        kind: 'netns',
        netnsInode: statSync(path).ino,
        netnsPath: path,
        netnsName: ns,
        displayName: ns,
      });
    }
    for (const [i, ns] of names.entries()) {
      const e = entities[i]!;
      const kept = stable(ns, () => reader.read(e));
      assert.ok(kept.want.length >= 5, `the netns has its addresses: ${kept.want}`);
      assert.ok(
        kept.want.some((a) => a.startsWith('fe80:')),
        'a link-local v6 address is among them',
      );
      assert.deepEqual(kept.got, kept.want, `kept socket, ${ns}`);
      const once = stable(ns, () => readNetnsAddresses(e));
      assert.deepEqual(once.got, once.want, `socket per read, ${ns}`);
    }
    assert.equal(reader.size, names.length, 'one socket kept per netns');
    // quiet netns: the last dump is reused (no notification queued); a change is seen at the next read
    const e0 = entities[0]!;
    assert.equal(reader.read(e0), reader.read(e0), 'no change: the same addresses, not a new dump');
    ip('-n', names[0]!, 'addr', 'add', '10.251.0.50/24', 'dev', 'pa0');
    ip('-n', names[0]!, 'addr', 'del', '10.251.0.9/24', 'dev', 'pa0');
    ip('-n', names[0]!, 'addr', 'add', 'fd00:251:0::50/64', 'dev', 'pa1');
    const changed = stable(names[0]!, () => reader.read(e0));
    assert.ok(changed.want.includes('10.251.0.50') && !changed.want.includes('10.251.0.9'));
    assert.deepEqual(changed.got, changed.want, 'after add + del, v4 and v6');
    // a pass (a rebuild): one poll(2) over every kept socket; a quiet one reuses its last dump, one with a
    // notification queued before the poll is dumped again
    const last = reader.read(e0);
    reader.beginPass();
    assert.equal(reader.read(e0), last, 'quiet at the poll: the same addresses, not a new dump');
    reader.endPass();
    ip('-n', names[0]!, 'addr', 'add', '10.251.0.60/24', 'dev', 'pa0');
    reader.beginPass();
    const inPass = [...reader.read(e0)].sort();
    reader.endPass();
    assert.ok(inPass.includes('10.251.0.60'), 'an address added before the pass is in it');
    assert.deepEqual(inPass, ipAddrs(names[0]!));

    // through the resolver's view: every address maps to its netns' peer
    const source = new StaticEntitySource(entities);
    const r = new PeerResolver({ entities: source, refreshMs: 0, hostAddresses: () => [] });
    try {
      const view = () => {
        r.rebuild();
        return names.map((ns) => stable(ns, () => ipAddrs(ns)).want);
      };
      for (const [i, want] of view().entries()) {
        for (const a of want) assert.equal(r.resolve(a).info.netns, names[i], `${a} → netns ${names[i]}`);
      }
      // an address added after the first read: seen at the next rebuild through the kept socket
      ip('-n', names[1]!, 'addr', 'add', 'fd00:251:1::77/64', 'dev', 'pa0');
      view();
      assert.equal(r.resolve('fd00:251:1::77').info.netns, names[1]);
      // the local view holds exactly ip's addresses (loopback out), nothing more
      const { map } = localPeers({ entities, hostAddresses: () => [], readNetns: reader.read });
      const all = names.flatMap((ns) => ipAddrs(ns)).sort();
      assert.deepEqual([...map.keys()].sort(), all);
      // a netns that leaves the entity source: its socket is closed, its addresses are no longer its
      source.remove(entities[2]!.netnsInode);
      r.rebuild();
      assert.notEqual(r.resolve('10.251.2.1').info.netns, names[2]);
      reader.retain(source.entities());
      assert.equal(reader.size, names.length - 1, "the netns' kept socket is closed");
    } finally {
      r.close();
    }
  } finally {
    reader.close();
    for (const ns of names) execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
});
