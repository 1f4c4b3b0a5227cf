// podnet as a non-root user with exactly the capabilities of deploy/image/capabilities.ts, then with one
// removed at a time: the preflight (podnet's own eBPF loader, setns, netlink and /proc code) must work with
// the full set, and without a capability the operations that need it must fail with a message that names
// that capability. Runs setpriv (util-linux) as uid 65534 with ambient capabilities; the "other user's
// process" is a root-owned sleep this test starts and stops. The code runs from a copy staged under /tmp
// (deploy/image/stage.ts, without file capabilities), so uid 65534 can read it wherever the checkout lives.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CAPABILITIES } from '../../deploy/image/capabilities.ts';
import { parseContainerfile } from '../../deploy/image/containerfile.ts';
import { formatReport, type PreflightReport } from '../../deploy/image/preflight.ts';
import { stageImage } from '../../deploy/image/stage.ts';
import { bpfCapabilityProblem, missingBpfCapabilities } from '../../receiver/bpf/caps.ts';

const STAGE = join('/tmp', `pnd${process.pid}-caps`);
const steps = parseContainerfile();
const NODE = join(STAGE, steps.setcap.file);
// the image's compiled code (dist/, from the Containerfile's build stage), run with the ENTRYPOINT's node flags
const PREFLIGHT = join(STAGE, steps.dist.to, 'deploy/image/preflight.js');
const ALL = CAPABILITIES.map((c) => c.cap);

let target: ChildProcess;

before(() => {
  assert.equal(process.getuid?.(), 0, 'this test starts processes as another user: run it as root');
  rmSync(STAGE, { recursive: true, force: true });
  mkdirSync(STAGE, { mode: 0o755 });
  stageImage(STAGE, { setcap: false });
  target = spawn('sleep', ['600'], { stdio: 'ignore' });
});
after(() => {
  if (target?.pid !== undefined) process.kill(target.pid, 'SIGKILL');
  rmSync(STAGE, { recursive: true, force: true });
});

function runAs(caps: readonly string[]): { status: number; report: PreflightReport; text: string } {
  const set = ['-all', ...caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
  const args = [
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    `--inh-caps=${set}`,
    `--ambient-caps=${set}`,
    `--bounding-set=${set}`,
    NODE,
    ...steps.nodeFlags,
    PREFLIGHT,
    '--pid',
    String(target.pid),
  ];
  const run = (extra: string[]) => {
    try {
      return {
        status: 0,
        out: execFileSync('setpriv', [...args, ...extra], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
          timeout: 60_000,
        }),
      };
    } catch (err) {
      const e = err as { status: number; stdout: string };
      return { status: e.status, out: e.stdout };
    }
  };
  // One run per capability set (each starts node as another user: the slowest part of this file); the
  // text is what the CLI prints for that report (preflight.ts formatReport).
  const json = run(['--json']);
  const report = JSON.parse(json.out) as PreflightReport;
  return { status: json.status, report, text: formatReport(report) };
}

function failed(r: PreflightReport): string[] {
  return r.checks.filter((c) => !c.ok).map((c) => c.check);
}

describe('podnet as uid 65534 with only the listed capabilities', () => {
  test('the full set: every operation works', () => {
    const r = runAs(ALL);
    assert.equal(r.report.uid, 65534);
    assert.deepEqual(failed(r.report), [], r.text);
    assert.deepEqual(r.report.missing, []);
    assert.equal(r.status, 0);
    assert.match(r.text, /all capabilities podnet needs are effective and work/);
  });

  test('no capabilities at all: everything that needs one fails, each missing capability is named', () => {
    const r = runAs([]);
    assert.equal(r.status, 1);
    assert.deepEqual(failed(r.report).length, r.report.checks.length, r.text);
    for (const cap of ALL) assert.match(r.text, new RegExp(`missing ${cap}: `));
  });

  // Capabilities whose operations nothing else grants: removing one must fail exactly its operations.
  for (const cap of [
    'CAP_SYSLOG',
    'CAP_SYS_ADMIN',
    'CAP_SYS_PTRACE',
    'CAP_DAC_READ_SEARCH',
    'CAP_NET_ADMIN',
    'CAP_NET_RAW',
  ]) {
    test(`without ${cap}: its operations fail and the message names it`, () => {
      const r = runAs(ALL.filter((c) => c !== cap));
      assert.equal(r.status, 1, r.text);
      const bad = r.report.checks.filter((c) => !c.ok);
      assert.ok(bad.length > 0, r.text);
      for (const c of bad) {
        assert.ok(c.needs.includes(cap), `${c.check} failed without needing ${cap}: ${c.detail}`);
        assert.ok(c.detail.startsWith(`${cap} missing: `), c.detail);
      }
      const expected = r.report.checks.filter((c) => c.needs.includes(cap)).map((c) => c.check);
      assert.deepEqual(failed(r.report), expected);
      assert.deepEqual(
        r.report.missing.map((m) => [m.cap, m.covered]),
        [[cap, false]],
      );
      assert.match(r.text, new RegExp(`FAIL .*${cap} missing`));
    });
  }

  // CAP_BPF and CAP_PERFMON: the kernel also grants their operations to CAP_SYS_ADMIN (bpf_capable(),
  // perfmon_capable()). Alone they are reported missing but covered; without CAP_SYS_ADMIN too, eBPF fails.
  for (const cap of ['CAP_BPF', 'CAP_PERFMON']) {
    test(`without ${cap}: covered by CAP_SYS_ADMIN; without both, loading eBPF fails naming ${cap}`, () => {
      const covered = runAs(ALL.filter((c) => c !== cap));
      assert.equal(covered.status, 0, covered.text);
      assert.deepEqual(
        covered.report.missing.map((m) => [m.cap, m.covered]),
        [[cap, true]],
      );
      assert.match(covered.text, new RegExp(`missing ${cap} \\(its operations still work here`));

      const r = runAs(ALL.filter((c) => c !== cap && c !== 'CAP_SYS_ADMIN'));
      assert.equal(r.status, 1);
      const ebpf = r.report.checks.find((c) => c.check.startsWith('eBPF'))!;
      assert.equal(ebpf.ok, false);
      assert.match(ebpf.detail, new RegExp(`^${cap} missing: the kernel refuses to `));
      assert.doesNotMatch(ebpf.detail, /blocked by this kernel/);
    });
  }
});

// What podnet itself says, in `podnet probes` and in /status of `podnet run`, when the kernel would refuse
// its eBPF programs: each missing capability named with what it disables, never "program type blocked".
const EBPF_NEEDS: Record<string, RegExp> = {
  CAP_BPF: /CAP_BPF missing: the kernel refuses to create BPF maps and load BPF programs/,
  CAP_PERFMON: /CAP_PERFMON missing: the kernel refuses to load tracing programs \(tp_btf, raw_tp/,
};

interface ProbeRow {
  name: string;
  source: string;
  available: boolean;
  reason: string | null;
}

/** setpriv argv: the staged podnet CLI as uid 65534 with exactly `caps` (inheritable, ambient, bounding). */
function asNobodyWith(caps: readonly string[], ...podnetArgs: string[]): string[] {
  const set = ['-all', ...caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
  return [
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    `--inh-caps=${set}`,
    `--ambient-caps=${set}`,
    `--bounding-set=${set}`,
    NODE,
    ...steps.nodeFlags,
    join(STAGE, steps.dist.to, 'receiver/cli/main.js'),
    ...podnetArgs,
  ];
}

function probesAs(caps: readonly string[]): ProbeRow[] {
  const out = execFileSync('setpriv', asNobodyWith(caps, 'probes', '--json'), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  return JSON.parse(out) as ProbeRow[];
}

async function statusAs(caps: readonly string[]): Promise<{
  probes: Array<{ name: string; state: string; reason?: string }>;
}> {
  const config = join(STAGE, 'podnet-caps.yaml');
  writeFileSync(config, 'collection_interval: 1s\nserver: { address: "127.0.0.1:0" }\n', { mode: 0o644 });
  const child = spawn('setpriv', asNobodyWith(caps, 'run', '--config', config), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env['PATH'], PODNET_LOG_LEVEL: 'info' },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  try {
    const end = Date.now() + 60_000;
    // "podnet running" is logged once every probe has started or failed to
    while (!/"msg":"podnet running"/.test(stderr)) {
      assert.ok(child.exitCode === null, `podnet exited: ${stderr.slice(-2000)}`);
      assert.ok(Date.now() < end, `podnet did not start: ${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = /"url":"(http:\/\/[^"]+)","msg":"local server listening"/.exec(stderr)?.[1];
    assert.ok(url, stderr.slice(-2000));
    return (await (await fetch(`${url}/status`)).json()) as Awaited<ReturnType<typeof statusAs>>;
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr.slice(-2000));
  }
}

describe('podnet without CAP_BPF or CAP_PERFMON says which one and what it disables', () => {
  const ebpfProbes = (rows: ProbeRow[]) => rows.filter((r) => r.source === 'ebpf');

  test('the full set: every eBPF probe is available and the default ones run', async () => {
    const rows = ebpfProbes(probesAs(ALL));
    assert.ok(rows.length >= 5, JSON.stringify(rows));
    for (const r of rows) assert.equal(r.available, true, `${r.name}: ${r.reason}`);
    const s = await statusAs(ALL);
    const tcpreset = s.probes.find((p) => p.name === 'tcpreset');
    assert.equal(tcpreset?.state, 'running', JSON.stringify(tcpreset));
  });

  for (const drop of [['CAP_PERFMON'], ['CAP_BPF'], ['CAP_BPF', 'CAP_PERFMON']]) {
    test(`without ${drop.join(' and ')} (and CAP_SYS_ADMIN): \`podnet probes\` and /status name it`, async () => {
      const caps = ALL.filter((c) => !drop.includes(c) && c !== 'CAP_SYS_ADMIN');
      // flow's tc programs need CAP_BPF but not CAP_PERFMON; tracing programs need both, and so do dns's
      // tc programs (packet-pointer arithmetic the verifier allows only with CAP_PERFMON)
      const needs = (probe: string) => (probe === 'flow' ? ['CAP_BPF'] : Object.keys(EBPF_NEEDS));
      const check = (probe: string, where: string, reason: string | null | undefined) => {
        const r = reason ?? '';
        for (const c of Object.keys(EBPF_NEEDS)) {
          if (drop.includes(c) && needs(probe).includes(c)) assert.match(r, EBPF_NEEDS[c]!, `${where}: ${r}`);
          else assert.doesNotMatch(r, new RegExp(`${c} missing`), `${where}: ${r}`);
        }
        assert.match(
          r,
          /every eBPF probe (built on tracing programs )?is unavailable; add CAP_/,
          `${where}: ${r}`,
        );
        assert.doesNotMatch(r, /blocked|Operation not permitted/, `${where}: ${r}`);
      };
      const rows = ebpfProbes(probesAs(caps));
      for (const r of rows) {
        const refused = needs(r.name).some((c) => drop.includes(c));
        assert.equal(r.available, !refused, `${r.name}: ${r.reason}`);
        if (refused) check(r.name, `podnet probes ${r.name}`, r.reason);
      }
      const s = await statusAs(caps);
      const ebpf = s.probes.filter((p) => rows.some((r) => r.name === p.name) && p.state !== 'stopped');
      assert.ok(ebpf.length >= 4, JSON.stringify(s.probes));
      for (const p of ebpf) {
        if (needs(p.name).some((c) => drop.includes(c))) {
          assert.equal(p.state, 'unavailable', p.name);
          check(p.name, `/status ${p.name}`, p.reason);
        } else assert.equal(p.state, 'running', `${p.name}: ${p.reason}`);
      }
    });
  }
});

describe('receiver/bpf capability rules (CapEff masks)', () => {
  const mask = (...bits: number[]) => bits.reduce((m, b) => m | (1n << BigInt(b)), 0n);
  const [SYS_ADMIN, PERFMON, BPF] = [21, 38, 39];
  test('CAP_SYS_ADMIN covers both; tracing programs need CAP_BPF and CAP_PERFMON; tc needs CAP_BPF', () => {
    assert.deepEqual(missingBpfCapabilities(mask(BPF, PERFMON)), []);
    assert.deepEqual(missingBpfCapabilities(mask(SYS_ADMIN)), []);
    assert.deepEqual(missingBpfCapabilities(mask(BPF)), ['CAP_PERFMON']);
    assert.deepEqual(missingBpfCapabilities(mask(PERFMON)), ['CAP_BPF']);
    assert.deepEqual(missingBpfCapabilities(mask()), ['CAP_BPF', 'CAP_PERFMON']);
    assert.deepEqual(missingBpfCapabilities(mask(BPF), false), []);
    assert.deepEqual(missingBpfCapabilities(mask(), false), ['CAP_BPF']);
    assert.equal(bpfCapabilityProblem({ mask: mask(BPF, PERFMON) }), undefined);
    assert.equal(
      bpfCapabilityProblem({ mask: mask(BPF) }),
      "CAP_PERFMON missing: the kernel refuses to load tracing programs (tp_btf, raw_tp, tracepoint, kprobe, fentry) (CAP_SYS_ADMIN, which would cover it, is missing too), so every eBPF probe built on tracing programs is unavailable; add CAP_PERFMON to the container's securityContext.capabilities.add",
    );
    assert.match(bpfCapabilityProblem({ mask: mask(), short: true })!, /^CAP_BPF and CAP_PERFMON missing/);
  });
});
