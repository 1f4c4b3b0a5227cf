// podnet as a non-root user with exactly the capabilities of deploy/image/capabilities.ts, then with one
// removed at a time: the preflight (podnet's own eBPF loader, setns, netlink and /proc code) must work with
// the full set, and without a capability the operations that need it must fail with a message that names
// that capability. Runs setpriv (util-linux) as uid 65534 with ambient capabilities; the "other user's
// process" is a root-owned sleep this test starts and stops. The code runs from a copy staged under /tmp
// (deploy/image/stage.ts, without file capabilities), so uid 65534 can read it wherever the checkout lives.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CAPABILITIES } from '../../deploy/image/capabilities.ts';
import { parseContainerfile } from '../../deploy/image/containerfile.ts';
import type { PreflightReport } from '../../deploy/image/preflight.ts';
import { stageImage } from '../../deploy/image/stage.ts';

const STAGE = join('/tmp', `pnd${process.pid}-caps`);
const steps = parseContainerfile();
const NODE = join(STAGE, steps.setcap.file);
const PREFLIGHT = join(STAGE, '/opt/podnet/deploy/image/preflight.ts');
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
  const json = run(['--json']);
  const text = run([]);
  assert.equal(json.status, text.status);
  return { status: json.status, report: JSON.parse(json.out) as PreflightReport, text: text.out };
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
      assert.match(ebpf.detail, new RegExp(`^${cap} missing: .*Operation not permitted`));
    });
  }
});
