// Kernel matrix (issue 14): the kernel-reach checks on this machine's kernel and on Debian's 6.1 in the VM
// of test/env/vm, recorded in RESULTS.md as probe × kernel × variant chosen × result, plus the VM kernel as
// a row of the Machine table. The same run and checks as test/kernel/host.test.ts and vm.test.ts
// (test/kernel/scenarios.ts, vm-run.ts): every fact must hold, or the benchmark exits 1 and records
// nothing (benchmarks/lib/finish.ts). No timing figure from inside the guest: it runs under TCG, so its
// times would be the emulator's.
//
//   node benchmarks/kernel/vm.ts          # root; 2-8 min (the VM boots under TCG, single-threaded)
import { release } from 'node:os';
import { removeStaleNetns } from '../../test/env/netns.ts';
import { FACT_IDS, holds } from '../../test/kernel/facts.ts';
import { allFacts, type Fact } from '../../test/kernel/scenarios.ts';
import {
  KNOWN_6_1_DEFECTS,
  runVmScenarios,
  vmFacts,
  vmProbes,
  vmRelease,
  vmRunFailures,
} from '../../test/kernel/vm-run.ts';
import { finishSection } from '../lib/finish.ts';
import type { Section } from '../lib/results.ts';
import { matrixTable, vmMachineRow } from './matrix.ts';

const TITLE = 'Kernel matrix — probes on this kernel and on Debian 6.1 (VM)';
const started = performance.now();
// progress on stdout, as the suite's benchmarks print it (run.ts shows it; the result line comes last)
const log = (s: string) => process.stdout.write(`${s}\n`);

/** Facts that do not hold (or are missing); a known defect counts only once it is fixed (then it must go). */
function factFailures(
  label: string,
  facts: readonly Fact[],
  known: Readonly<Record<string, string>>,
): string[] {
  const out: string[] = [];
  for (const id of FACT_IDS) {
    const f = facts.find((x) => x.id === id);
    if (!f) out.push(`${label}: fact ${id} missing (the scenario run stopped before it)`);
    else if (known[id] ? holds(f) : !holds(f))
      out.push(
        known[id]
          ? `${label}: ${id} now passes: remove it from KNOWN_6_1_DEFECTS`
          : `${label}: ${id}: ${f.what}: expected ${JSON.stringify(f.expected)}, got ${JSON.stringify(f.actual)}`,
      );
  }
  return out;
}

removeStaleNetns('pnkr');
log('kernel matrix: booting the 6.1 VM (TCG) and running the host scenarios meanwhile');
// The host scenarios count packets, never time them: the VM's emulator beside them does not change a
// count, and running both at once halves the wall time.
const [vm, host] = await Promise.all([
  runVmScenarios({
    timeoutMs: 14 * 60_000,
    onRecord: (r) => {
      if (r['booted']) log(`vm: booted ${String(r['booted'])}`);
      const f = r['fact'] as Fact | undefined;
      if (f) log(`vm: ${f.id} ${holds(f) ? 'ok' : 'FAIL'}`);
    },
  }),
  allFacts({ prefix: 'pnkr' }).then(
    (facts) => ({ facts, error: undefined }),
    (error: unknown) => ({ facts: [] as Fact[], error }),
  ),
]);

const failures = [...vmRunFailures(vm)];
if (host.error !== undefined)
  failures.push(`host scenarios failed: ${String((host.error as Error)?.stack ?? host.error)}`);
const guestRelease = vmRelease(vm.run) ?? 'unknown';
const guestFacts = vmFacts(vm.run) ?? [];
if (!vmProbes(vm.run)) failures.push('VM: no `podnet probes --json` output');
failures.push(...factFailures(release(), host.facts, {}));
// a VM that never ran the scenarios is one failure (above), not one per missing fact
if (guestFacts.length) failures.push(...factFailures(guestRelease, guestFacts, KNOWN_6_1_DEFECTS));

const passedAt = new Date().toISOString();
const section: Section = {
  id: 'kernel-vm',
  title: TITLE,
  commands: ['node benchmarks/kernel/vm.ts'],
  method: [
    `This machine's kernel: the kernel-reach scenarios of test/kernel/scenarios.ts in this process (as test/kernel/host.test.ts). Debian's 6.1: the VM of test/env/vm (initramfs root with the checkout, qemu with TCG, single-threaded — KVM does not work on these machines, test/env/vm/README.md) runs \`podnet probes --json\` and the same scenarios (test/kernel/vm-run.ts, as test/kernel/vm.test.ts).`,
    '"variant chosen" is what probe-before-load picked (`podnet probes`); "checked" lists the variants the checks ran, forced ones included (packetloss `location`, flow/dns `tc`). "result": loaded; degraded with the reason `podnet probes` gives; unavailable with its reason; available (procfs/netlink).',
    'Every check compares podnet with the kernel’s own count (Udp/Udp6 NoPorts, the nft rule counter, TcpOutRsts, TcpRetransSegs, ip -s link, nstat -az; dig and unbound for dns); the values listed are those compared. One check failing fails the benchmark and nothing is recorded.',
  ],
  tables: [
    matrixTable([
      { kernel: `${release()} (host)`, facts: host.facts },
      { kernel: `${guestRelease} (VM, TCG)`, facts: guestFacts },
    ]),
  ],
  targets: [],
  notes: [
    'No timing figure is recorded from inside the VM: the guest runs under TCG (an emulator), so any time measured there would be the emulator’s, not the kernel’s or podnet’s.',
    'tcpreset.nosock on kernels before 6.10: podnet counts 0 while TcpOutRsts counts the resets — tcp_send_reset has no reason argument and is not reached without a socket (docs/kernels.md); the check asserts exactly that.',
    `Regenerate with \`node benchmarks/run.ts --only kernel-vm\`; docs/kernels.md explains the matrix.`,
  ],
  machineRows: [vmMachineRow(guestRelease, passedAt, TITLE)],
  durationS: (performance.now() - started) / 1000,
  data: { host: release(), vm: guestRelease, imageBuilt: vm.image?.built ?? null },
};
// run.ts quotes the `FAILED:` lines, one line each: the guest console in a failure goes on one line
finishSection(
  section,
  failures.map((f) => f.replace(/\s*\n\s*/g, ' ⏎ ').slice(0, 4000)),
);
