// Kernel-reach scenarios (scenarios.ts) on this machine's kernel: every available eBPF probe loads and
// attaches, packetloss in both variants (reason; location, forced) equals Udp NoPorts and the nft rule
// counter, resets equal TcpOutRsts, retransmits equal RetransSegs, netdev/snmp equal ip -s link/nstat,
// flow counts with TCX and with clsact (forced), and one agent with every probe enabled at once counts
// exactly and leaves nothing behind (scenarios-agent.ts). The same scenarios run in the 6.1 VM (vm.test.ts).
import assert from 'node:assert/strict';
import { release } from 'node:os';
import { before, test } from 'node:test';
import { removeStaleNetns } from '../env/netns.ts';
import { factTests } from './facts.ts';
import { allFacts, type Fact } from './scenarios.ts';

let facts: Fact[] | undefined;
let error: unknown;

before(async () => {
  removeStaleNetns('pnkr');
  try {
    facts = await allFacts({ prefix: 'pnkr' });
  } catch (err) {
    error = err;
  }
});

test(`the scenarios ran on this kernel (${release()})`, () => {
  assert.equal(error, undefined, String((error as Error)?.stack ?? error));
});
factTests(release(), () => facts);
