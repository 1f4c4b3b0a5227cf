// One run of the kernel-reach checks inside the Debian 6.1 VM (test/env/vm): boots it, runs
// `podnet probes --json` and every scenario of scenarios.ts (via guest.ts), and returns what the guest
// reported. Shared by the test (test/kernel/vm.test.ts) and the benchmark suite's kernel matrix
// (benchmarks/kernel/vm.ts), so both check the same run the same way.
import { bootVm, ensureVmImage, type VmImage, type VmRun } from '../env/vm/index.ts';
import type { Fact } from './scenarios.ts';

// Inside: the CLI's JSON on one @@VM line, then the scenarios.
const SCRIPT = `export PODNET_LOG_LEVEL=warn
node receiver/cli/main.ts probes --json > /tmp/probes.json 2> /tmp/probes.err
echo "@@VM {\\"probesExit\\": $?}"
tail -c 1500 /tmp/probes.err
echo "@@VM {\\"probes\\": $(tr -d '\\n' < /tmp/probes.json)}"
node test/kernel/guest.ts`;

/** Guest kernel release the VM must boot (Debian 12's cloud kernel). */
export const VM_RELEASE = /^6\.1\.\d+-\d+-cloud-amd64$/;

/**
 * Defects found by the checks on 6.1 and not fixed yet (docs/kernels.md), fact id → what is wrong: none
 * now (the dns programs the 6.1 verifier refused were fixed; dns.auto / dns.tracepoint prove them).
 */
export const KNOWN_6_1_DEFECTS: Readonly<Record<string, string>> = {};

/** One row of `podnet probes --json`. */
export interface ProbeRow {
  name: string;
  source: string;
  available: boolean;
  reason: string | null;
  variant: string | null;
  minKernel: string | null;
}

export interface VmScenarios {
  /** Undefined when the image build or the boot threw (then `error` says why). */
  readonly image?: VmImage;
  readonly run?: VmRun;
  readonly error?: unknown;
}

/** Builds the image when missing and runs the checks in the VM; never throws. */
export async function runVmScenarios(o: {
  timeoutMs: number;
  onRecord?: (r: Record<string, unknown>) => void;
}): Promise<VmScenarios> {
  let image: VmImage | undefined;
  try {
    image = ensureVmImage();
    const run = await bootVm({ image, script: SCRIPT, timeoutMs: o.timeoutMs, onRecord: o.onRecord });
    return { image, run };
  } catch (err) {
    return { image, error: err };
  }
}

/** uname -r of the guest, as init printed it. */
export const vmRelease = (run: VmRun | undefined): string | undefined => {
  const r = run?.records.find((x) => x['booted'])?.['booted'];
  return typeof r === 'string' ? r : undefined;
};

/** Facts the guest printed, in order. */
export const vmFacts = (run: VmRun | undefined): Fact[] | undefined =>
  run?.records.filter((r) => r['fact']).map((r) => r['fact'] as Fact);

/** `podnet probes --json` of the guest. */
export const vmProbes = (run: VmRun | undefined): ProbeRow[] | undefined =>
  run?.records.find((r) => r['probes'])?.['probes'] as ProbeRow[] | undefined;

/**
 * What went wrong with the run as a whole (empty = it booted 6.1 and the guest finished every scenario):
 * the per-fact checks come on top (facts.ts).
 */
export function vmRunFailures(v: VmScenarios): string[] {
  if (v.error !== undefined) return [`VM run failed: ${String((v.error as Error)?.stack ?? v.error)}`];
  const run = v.run;
  if (!run) return ['VM run missing'];
  const out: string[] = [];
  const release = vmRelease(run);
  if (!release || !VM_RELEASE.test(release))
    out.push(`guest kernel ${String(release)} is not Debian's 6.1 cloud kernel`);
  const err = run.records.find((r) => r['error']);
  if (err) out.push(`guest error: ${String(err['error'])}`);
  if (!run.records.some((r) => r['done'])) out.push(`the guest did not finish: ${run.console.slice(-3000)}`);
  if (run.exit !== 0) out.push(`guest script exited ${String(run.exit)}`);
  if (run.timedOut) out.push('the VM timed out');
  return out;
}
