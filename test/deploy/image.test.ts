// deploy/image/Containerfile without a container engine (fast subset; the full one with a debootstrap'd
// Debian root is deploy/image/test-rootfs.sh). The runtime stage's own steps (parsed from the Containerfile)
// run into a temp root on this machine: its COPY lines, the production node_modules, dist/ compiled by its
// build stage's steps (scripts/build.sh in a scratch dir), node with the file capabilities of its setcap
// line. podnet then runs from that tree as uid 65532 with the pod's bounding set, the way the kubelet starts
// it: no ambient capabilities, only what the file capabilities give, through the ENTRYPOINT's argv (node
// flags + compiled entry script); its `podnet run` must load no TypeScript module.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CAPABILITIES } from '../../deploy/image/capabilities.ts';
import { parseContainerfile } from '../../deploy/image/containerfile.ts';
import type { PreflightReport } from '../../deploy/image/preflight.ts';
import { stageImage } from '../../deploy/image/stage.ts';
import { kustomizeBuild } from './k8s-validate.ts';

interface Container {
  readonly name: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
}

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

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

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
/** The ENTRYPOINT's node flags and script, in the staged root. */
const entry = () => [...steps.nodeFlags, inImage(steps.entryScript)];
const preflightArgs = () => [
  ...steps.nodeFlags,
  inImage(join(dirname(steps.entryScript), 'preflight.js')),
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
  });

  test('the entrypoint runs dist/ (compiled by scripts/build.sh) with the node flags of npm start', () => {
    assert.ok(steps.entryScript.startsWith(steps.dist.to), `${steps.entryScript} is not in ${steps.dist.to}`);
    assert.match(steps.entryScript, /\.js$/);
    assert.ok(existsSync(inImage(steps.entryScript)), 'the build stage compiled the entry script');
    const start = /^(?:\w+=\S+ )*node ((?:--\S+ )*)\S+ run$/.exec(pkg.scripts['start'] ?? '');
    assert.ok(start, `scripts.start: ${pkg.scripts['start']}`);
    assert.deepEqual(steps.nodeFlags, start[1]!.trim().split(/\s+/));
    assert.ok(steps.nodeFlags.some((f) => /^--max-semi-space-size=\d+$/.test(f)));
    assert.deepEqual(steps.cmd, ['run']);
    // the build stage runs the script `npm start`'s bootstrap runs; the image holds no TypeScript
    assert.ok(steps.build.steps.some((s) => s.kind === 'run' && /^sh scripts\/build\.sh\b/.test(s.command)));
    for (const c of steps.copies)
      assert.doesNotMatch(c.from, /\.ts$|\/$/, `runtime stage copies sources: ${c.from}`);
    const ts = readdirSync(inImage(steps.dist.to), { recursive: true, encoding: 'utf8' }).filter((f) =>
      /\.m?ts$/.test(f),
    );
    assert.deepEqual(ts, [], `TypeScript in ${steps.dist.to}`);
    assert.ok(!existsSync(inImage(join(steps.nodeModulesTo, 'typescript'))), 'no typescript package');
    // `podnet` on the image's PATH execs the same argv
    const podnetCopy = steps.copies.find((c) => c.to === '/usr/local/bin/podnet');
    assert.ok(podnetCopy, 'deploy/image/podnet is copied to /usr/local/bin/podnet');
    const exec = readFileSync(join(ROOT, podnetCopy.from), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('exec '));
    assert.equal(exec, `exec ${steps.entrypoint.join(' ')} "$@"`);
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

  test('no built DaemonSet overrides the ENTRYPOINT (dist/ and its node flags); its args start with the CMD', () => {
    // base, every overlay, and the base with each component (components apply from an overlay)
    const k8s = join(ROOT, 'deploy', 'kubernetes');
    const dirs = [k8s, ...readdirSync(join(k8s, 'overlays')).map((d) => join(k8s, 'overlays', d))];
    const scratch = mkdtempSync(join(tmpdir(), `pnd${process.pid}-kz-`));
    try {
      for (const c of readdirSync(join(k8s, 'components'))) {
        const dir = join(scratch, c);
        mkdirSync(dir);
        writeFileSync(
          join(dir, 'kustomization.yaml'),
          `resources: [${relative(dir, join(k8s, 'base'))}]\ncomponents: [${relative(dir, join(k8s, 'components', c))}]\n`,
        );
        dirs.push(dir);
      }
      let checked = 0;
      for (const dir of dirs)
        for (const d of kustomizeBuild(dir).filter((x) => x.kind === 'DaemonSet')) {
          const spec = (d as unknown as { spec: { template: { spec: { containers: Container[] } } } }).spec
            .template.spec;
          const podnet = spec.containers.find((x) => x.name === 'podnet');
          assert.ok(podnet, `${dir}: no podnet container`);
          assert.equal(
            podnet.command,
            undefined,
            `${dir}: command would replace ${steps.entrypoint.join(' ')}`,
          );
          assert.deepEqual(podnet.args?.slice(0, steps.cmd.length), [...steps.cmd], dir);
          checked++;
        }
      assert.ok(checked >= dirs.length, `${checked} DaemonSets in ${dirs.length} builds`);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test('every BPF program source has its compiled object committed (the image has no compiler)', () => {
    const probes = join(ROOT, 'probes');
    const sources = readdirSync(probes, { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.bpf.c'),
    );
    assert.ok(sources.length > 0);
    for (const s of sources)
      assert.ok(existsSync(join(probes, s.replace(/\.c$/, '.o'))), `${s} has no .bpf.o`);
    for (const s of sources)
      assert.ok(
        existsSync(inImage(join(steps.dist.to, 'probes', s.replace(/\.c$/, '.o')))),
        `${s}: no .bpf.o in the image`,
      );
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
      [...entry(), 'probes', '--json'],
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
    const r = asImageUser(ALL, [...entry(), 'probes', '--json']);
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
        ...entry(),
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
      // secure-execution mode (file capabilities): glibc ignores MALLOC_ARENA_MAX, podnet caps the arenas itself
      assert.deepEqual((status['limits'] as Record<string, unknown>)['mallocArenas'], {
        max: 2,
        source: 'default',
        atExec: false,
      });
      assert.match(stderr, /"secureExecution":true,"msg":"malloc arenas capped at 2 by podnet as it starts/);
      const metrics = await fetch(`${base}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(stderr, /all capabilities podnet needs are effective/);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
  });

  test('`podnet run` through the ENTRYPOINT (OTLP on, log export worker up) loads no TypeScript module', async () => {
    // A module.registerHooks hook given with --import between the ENTRYPOINT's node flags and its script
    // records every module the main thread and the worker threads load (as test/footprint/dist.test.ts).
    mkdirSync(inImage('/tmp'), { recursive: true });
    chmodSync(inImage('/tmp'), 0o1777); // the image's USER writes the list
    const loaded = inImage('/tmp/loaded.txt');
    const hook = inImage('/tmp/loaded-hook.mjs');
    writeFileSync(
      hook,
      `import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
registerHooks({ load(url, ctx, next) { appendFileSync(${JSON.stringify(loaded)}, (isMainThread ? 'main ' : 'worker ') + url + '\\n'); return next(url, ctx); } });
`,
    );
    const config = inImage('/etc/podnet/config-otlp.yaml');
    mkdirSync(inImage('/etc/podnet'), { recursive: true });
    writeFileSync(
      config,
      'collection_interval: 1s\nnode_name: node-image-test\nserver:\n  address: 127.0.0.1:0\n',
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
        ...steps.nodeFlags,
        '--import',
        hook,
        inImage(steps.entryScript),
        'run',
        '--config',
        config,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {
          PATH: process.env['PATH'],
          PODNET_LOG_LEVEL: 'info',
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', // discard port: exports fail, which is fine here
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        },
      },
    );
    let stderr = '';
    const running = new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('"podnet running"')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`podnet exited (${code}) before running:\n${stderr}`)));
    });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await running;
      await new Promise((r) => setTimeout(r, 2500)); // a collection and an export attempt
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const urls = readFileSync(loaded, 'utf8').trim().split('\n');
    const dist = `file://${inImage(steps.dist.to)}`;
    assert.ok(urls.includes(`main ${dist}receiver/cli/main.js`), urls.join('\n'));
    assert.ok(
      urls.includes(`worker ${dist}receiver/otel/log-export-worker.js`),
      'the log export worker ran from dist/',
    );
    assert.ok(
      urls.some((u) => u.endsWith(`${dist}receiver/otel/otlp-metric-exporter.js`)),
      'the lazily imported metric exporter loaded from dist/',
    );
    assert.deepEqual(
      urls.filter((u) => /\.m?ts$/.test(u)),
      [],
    );
    assert.match(stderr, /all capabilities podnet needs are effective/);
    assert.doesNotMatch(
      stderr,
      /ERR_MODULE_NOT_FOUND|Cannot find module|event export worker (?:failed|exited)/,
    );
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
