// A/B of the peer resolver's named-netns address read (receiver/peers/local.ts localPeers: every named
// netns' addresses, as a rebuild of the node-local view reads them) between this checkout and another
// one (e.g. a worktree of main), in ONE process: both trees' local.ts are imported side by side and their
// reads alternate over the same test-created netns (`ip netns add`, lo + a veth pair up, one v4 address;
// v6 link-local addresses come with the links), so machine load falls on both alike. The host's
// addresses are left out (the same code in both trees). The netns stay quiet between rounds, so after
// its first round this tree reads no dump (one non-blocking recv per netns): the steady state. Also this
// tree without kept sockets (a socket opened, dumped and closed per netns per read: more than a netns
// whose addresses changed costs, one dump). Prints CPU (user + system) and wall time per read of all
// netns, medians over the rounds after the first (the first opens this tree's kept sockets: shown apart),
// and the ratio this/base; exits non-zero when the views (address → netns) differ.
//
//   node benchmarks/peers/netns-ab.ts --base /work/base-peers [--netns 1000] [--rounds 9]
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createNetnsBatch, removeNetnsBatch } from '../lib/netns-batch.ts';

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    netns: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '9' },
  },
});
if (!values.base) throw new Error('--base DIR (a checkout to compare against) is required');
const N = Number(values.netns);
const ROUNDS = Number(values.rounds);
if (!(N >= 1 && N <= 4000) || !(ROUNDS >= 2)) throw new Error('--netns 1..4000, --rounds >= 2');
const HERE = resolve(import.meta.dirname, '../..');
const PREFIX = `pnpab${process.pid}`;

interface Entity {
  kind: 'netns';
  netnsInode: number;
  netnsPath: string;
  netnsName: string;
  displayName: string;
}
type PeerMap = Map<string, { info: { netns?: string } }>;
type Read = (entities: Entity[]) => { map: PeerMap; netnsErrors: number };

async function tree(dir: string, kept: boolean): Promise<{ read: Read; once: Read; close: () => void }> {
  const local = await import(resolve(dir, 'receiver/peers/local.ts'));
  const reader = kept ? new local.NetnsAddresses() : undefined;
  return {
    read: (entities) =>
      local.localPeers({ entities, hostAddresses: () => [], ...(reader ? { readNetns: reader.read } : {}) }),
    // without a kept socket: this tree's default, a socket opened, dumped and closed per netns per read
    once: (entities) => local.localPeers({ entities, hostAddresses: () => [] }),
    close: () => reader?.close(),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function measure(
  read: Read,
  entities: Entity[],
): { cpu: number; wall: number; map: PeerMap; errors: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const { map, netnsErrors } = read(entities);
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000, wall, map, errors: netnsErrors };
}

function sameView(a: PeerMap, b: PeerMap): string | undefined {
  if (a.size !== b.size) return `sizes ${a.size} vs ${b.size}`;
  for (const [ip, p] of a)
    if (b.get(ip)?.info.netns !== p.info.netns) return `${ip}: ${p.info.netns} vs ${b.get(ip)?.info.netns}`;
  return undefined;
}

const base = await tree(resolve(values.base), false);
const self = await tree(HERE, true);
let entities: Entity[] = [];
let failed = false;
try {
  const t0 = performance.now();
  entities = createNetnsBatch(
    PREFIX,
    N,
    (i) => `addr add 10.${200 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32 dev eth0\n`,
  );
  console.log(`${N} netns created in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  type Which = 'base' | 'self' | 'once';
  const runs: Record<Which, { cpu: number; wall: number }[]> = { base: [], self: [], once: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order: Which[] = r % 2 === 0 ? ['base', 'self', 'once'] : ['once', 'self', 'base'];
    const got: Record<string, PeerMap> = {};
    for (const which of order) {
      const m = measure(which === 'base' ? base.read : which === 'self' ? self.read : self.once, entities);
      if (m.errors > 0) throw new Error(`${which}: ${m.errors} netns unreadable`);
      runs[which].push(m);
      got[which] = m.map;
    }
    const diff = sameView(got.base!, got.self!) ?? sameView(got.base!, got.once!);
    if (diff) throw new Error(`round ${r}: the two trees' views differ (${diff})`);
    if (got.self!.size < 3 * N)
      throw new Error(`round ${r}: ${got.self!.size} addresses for ${N} netns (want ≥ ${3 * N})`);
  }
  const row = (label: string, xs: { cpu: number; wall: number }[]) =>
    console.log(
      `${label.padEnd(34)} cpu ${median(xs.map((x) => x.cpu))
        .toFixed(1)
        .padStart(7)} ms  wall ${median(xs.map((x) => x.wall))
        .toFixed(1)
        .padStart(7)} ms`,
    );
  console.log(`per read of all ${N} netns' addresses (median of ${ROUNDS - 1} rounds, interleaved):`);
  row('base (setns + getifaddrs)', runs.base.slice(1));
  row('this (kept socket, quiet netns)', runs.self.slice(1));
  row('this (socket per read: open + dump)', runs.once.slice(1));
  console.log(
    `first round (this opens its sockets): base cpu ${runs.base[0]!.cpu.toFixed(1)} ms, this cpu ${runs.self[0]!.cpu.toFixed(1)} ms`,
  );
  const ratio = median(runs.self.slice(1).map((x) => x.cpu)) / median(runs.base.slice(1).map((x) => x.cpu));
  console.log(`ratio this/base, cpu: ${ratio.toFixed(3)}`);
} catch (err) {
  failed = true;
  console.error(`FAILED: ${(err as Error).message}`);
} finally {
  self.close();
  base.close();
  removeNetnsBatch(PREFIX, N);
}
process.exitCode = failed ? 1 : 0;
