// deploy/image/Containerfile without a container engine (fast subset; the full one with a debootstrap'd
// Debian root is deploy/image/test-rootfs.sh). The runtime stage's own steps (parsed from the Containerfile)
// run into a temp root on this machine: its COPY lines, the production node_modules, node with the file
// capabilities of its setcap line. podnet then runs from that tree as uid 65532 with the pod's bounding set,
// the way the kubelet starts it: no ambient capabilities, only what the file capabilities give.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CAPABILITIES } from '../../deploy/image/capabilities.ts';
import { parseContainerfile } from '../../deploy/image/containerfile.ts';
import type { PreflightReport } from '../../deploy/image/preflight.ts';
import { stageImage } from '../../deploy/image/stage.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const steps = parseContainerfile();
const STAGE = join('/tmp', `pnd${process.pid}-image`);
const caps = (list: readonly string[]) =>
  ['-all', ...list.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
const ALL = CAPABILITIES.map((c) => c.cap);

let target: ChildProcess;

before(() => {
  assert.equal(process.getuid?.(), 0, 'staging sets file capabilities: run as root');
  rmSync(STAGE, { recursive: true, force: true });
  mkdirSync(STAGE, { mode: 0o755 });
  stageImage(STAGE);
  target = spawn('sleep', ['600'], { stdio: 'ignore' });
});
after(() => {
  if (target?.pid !== undefined) process.kill(target.pid, 'SIGKILL');
  rmSync(STAGE, { recursive: true, force: true });
});

/** Runs a command of the staged image as its USER with this bounding set (the pod's capabilities). */
function asImageUser(bounding: readonly string[], argv: readonly string[], node = steps.setcap.file) {
  const args = [
    `--reuid=${steps.user.uid}`,
    `--regid=${steps.user.gid}`,
    '--clear-groups',
    '--inh-caps=-all',
    `--bounding-set=${caps(bounding)}`,
    join(STAGE, node),
    ...argv,
  ];
  const r = spawnSync('setpriv', args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
    // the entrypoint's "all capabilities ... effective" is an info line; CI=true alone means level warn
    env: { ...process.env, PODNET_LOG_LEVEL: 'info' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const inImage = (p: string) => join(STAGE, p);
const preflightArgs = () => [
  inImage('/opt/podnet/deploy/image/preflight.ts'),
  '--json',
  '--pid',
  String(target.pid),
];

describe('the Containerfile', () => {
  test('Node 24 on Debian 12 slim, libbpf1, no compiler, non-root user, the listed capabilities', () => {
    assert.equal(steps.base, 'node:24-bookworm-slim');
    assert.ok(steps.packages.includes('libbpf1'));
    for (const p of steps.packages.filter((x) => !steps.purged.includes(x)))
      assert.doesNotMatch(p, /^(clang|llvm|gcc|cc|bpftool|libbpf-dev|make)/, `compiler package ${p}`);
    assert.notEqual(steps.user.uid, 0);
    assert.deepEqual([...steps.setcap.caps].sort(), CAPABILITIES.map((c) => c.cap.toLowerCase()).sort());
    assert.equal(
      steps.setcap.flags,
      'p',
      'permitted-only: the entrypoint raises them; +ep would refuse to exec when one is missing',
    );
    assert.equal(steps.entrypoint[0], steps.setcap.file);
    assert.ok(
      steps.copies.some((c) => c.to === steps.entrypoint[1]),
      'the entrypoint script is copied',
    );
  });

  test('the DaemonSet runs the image as the same user', async () => {
    const { parseAllDocuments } = await import('yaml');
    const { readFileSync } = await import('node:fs');
    const ds = parseAllDocuments(
      readFileSync(join(ROOT, 'deploy/kubernetes/base/daemonset.yaml'), 'utf8'),
    )[0]!.toJS();
    assert.equal(ds.spec.template.spec.securityContext.runAsUser, steps.user.uid);
    assert.equal(ds.spec.template.spec.securityContext.runAsGroup, steps.user.gid);
  });

  test('every BPF program source has its compiled object committed (the image has no compiler)', () => {
    const probes = join(ROOT, 'probes');
    const sources = readdirSync(probes, { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.bpf.c'),
    );
    assert.ok(sources.length > 0);
    for (const s of sources)
      assert.ok(existsSync(join(probes, s.replace(/\.c$/, '.o'))), `${s} has no .bpf.o`);
    for (const s of sources) assert.ok(existsSync(inImage(`/opt/podnet/probes/${s.replace(/\.c$/, '.o')}`)));
  });
});

describe('podnet from the staged image as uid 65532', () => {
  test('with the pod bounding set = the list: every operation podnet needs works', () => {
    const r = asImageUser(ALL, preflightArgs());
    const report = JSON.parse(r.stdout) as PreflightReport;
    assert.equal(report.uid, steps.user.uid);
    assert.deepEqual(
      report.checks.filter((c) => !c.ok),
      [],
      r.stderr,
    );
    assert.equal(r.status, 0);
  });

  test('the capabilities come from the file capabilities: a node without them can do nothing', () => {
    cpSync(inImage(steps.setcap.file), inImage('/usr/local/bin/node-plain'));
    const r = asImageUser(ALL, preflightArgs(), '/usr/local/bin/node-plain');
    const report = JSON.parse(r.stdout) as PreflightReport;
    assert.equal(r.status, 1);
    assert.equal(report.checks.filter((c) => c.ok).length, 0, r.stdout);
    assert.deepEqual(report.missing.map((m) => m.cap).sort(), [...ALL].sort());
  });

  test('a capability the pod does not grant: podnet still starts and names it', () => {
    const r = asImageUser(
      ALL.filter((c) => c !== 'CAP_SYS_PTRACE'),
      [inImage(steps.entrypoint[1]!), 'probes', '--json'],
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(Array.isArray(JSON.parse(r.stdout)));
    assert.match(r.stderr, /capability CAP_SYS_PTRACE is missing: open \/proc\/<pid>\/ns\/net/);
    assert.doesNotMatch(r.stderr, /capability CAP_(?!SYS_PTRACE)\w+ is missing/);
    const pf = asImageUser(
      ALL.filter((c) => c !== 'CAP_SYS_PTRACE'),
      preflightArgs(),
    );
    assert.equal(pf.status, 1);
    const report = JSON.parse(pf.stdout) as PreflightReport;
    assert.deepEqual(
      report.checks.filter((c) => !c.ok).map((c) => c.detail.split(':')[0]),
      ['CAP_SYS_PTRACE missing'],
    );
  });

  test('`podnet probes` through the entrypoint: every registered eBPF probe can run with the listed capabilities', () => {
    const r = asImageUser(ALL, [inImage(steps.entrypoint[1]!), 'probes', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /all capabilities podnet needs are effective/);
    const rows = JSON.parse(r.stdout) as Array<{
      name: string;
      source: string;
      available: boolean;
      reason?: string;
    }>;
    for (const row of rows.filter((x) => x.source === 'ebpf'))
      assert.ok(row.available || !/permit|capab|EPERM/i.test(row.reason ?? ''), `${row.name}: ${row.reason}`);
  });

  test('`podnet run` from the image serves /healthz, /readyz, /status and /metrics', async () => {
    const port = await freePort();
    const config = inImage('/etc/podnet/config.yaml');
    mkdirSync(inImage('/etc/podnet'), { recursive: true });
    writeFileSync(
      config,
      `collection_interval: 1s\nnode_name: \${env:K8S_NODE_NAME}\nserver:\n  address: 127.0.0.1:${port}\n`,
    );
    const child = spawn(
      'setpriv',
      [
        `--reuid=${steps.user.uid}`,
        `--regid=${steps.user.gid}`,
        '--clear-groups',
        '--inh-caps=-all',
        `--bounding-set=${caps(ALL)}`,
        inImage(steps.setcap.file),
        inImage(steps.entrypoint[1]!),
        'run',
        '--config',
        config,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { K8S_NODE_NAME: 'node-image-test', PATH: process.env['PATH'] },
      },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    try {
      const base = `http://127.0.0.1:${port}`;
      const health = await poll(`${base}/healthz`, 60_000);
      assert.equal(health, 'ok\n', stderr);
      // readiness: the first collection ran and discovery answered (no CRI socket here: known unavailable)
      assert.equal(await poll(`${base}/readyz`, 30_000), 'ready\n', stderr);
      const status = (await (await fetch(`${base}/status`)).json()) as Record<string, unknown>;
      assert.equal(typeof status, 'object');
      const metrics = await fetch(`${base}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(stderr, /all capabilities podnet needs are effective/);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function poll(url: string, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.ok) return await r.text();
      last = `HTTP ${r.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${last}`);
}
