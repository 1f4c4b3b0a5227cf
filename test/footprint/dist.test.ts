// podnet ships compiled JavaScript (scripts/build.sh → dist/): `npm start`, the `podnet` bin and the
// benchmarks' as-started form run dist/, so Node's TypeScript type stripping (amaro, ~16 MB of RSS:
// benchmarks/suite/memory.ts) is never loaded. This checks that the build runs from a missing stamp, that
// the entry points agree on the script and the node flags, and that a `podnet run` from dist/ — with an
// OTLP endpoint, so the lazily imported exporter and the log export worker thread load too — loads no .ts
// module at all (module.registerHooks in the podnet process and its worker).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { probeSpecs } from '../../probes/registry.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), `pnk-dist-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  scripts: Record<string, string>;
};

function build(root = ROOT): string {
  return execFileSync('sh', [join(root, 'scripts/build.sh')], { encoding: 'utf8' });
}

// The stamp test runs build.sh in a scratch copy of its inputs, never on the checkout's own dist/: removing
// that stamp made any `npm start`, benchmark or bootstrap running in the same checkout at that moment
// rebuild too, and its `rm -rf dist; mv` swapped dist/ under the podnet the last test starts (node exits
// at once: "Cannot find module …/dist/receiver/cli/main.js" — the 690 ms failure, reproduced by running
// build.sh --force next to a podnet start).
function scratchTree(): string {
  const root = join(dir, 'tree');
  for (const p of [
    'receiver',
    'probes',
    'deploy/image',
    'benchmarks/lib',
    'scripts/build.sh',
    'package.json',
    'tsconfig.json',
    'tsconfig.build.json',
  ])
    cpSync(join(ROOT, p), join(root, p), { recursive: true, preserveTimestamps: true });
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  return root;
}

test('scripts/build.sh compiles dist/ when its stamp is missing, and does nothing when it is fresh', () => {
  const root = scratchTree();
  assert.ok(!existsSync(join(root, 'dist/.built')));
  assert.match(build(root), /compiling TypeScript to dist/);
  for (const f of [
    'dist/receiver/cli/main.js',
    'dist/receiver/otel/log-export-worker.js',
    'dist/probes/packetloss/packetloss.bpf.o',
    'dist/receiver/pods/proto/api.proto',
    'dist/package.json',
    'dist/benchmarks/lib/podnet-child.js',
  ])
    assert.ok(existsSync(join(root, f)), `${f} built`);
  assert.equal(build(root), '', 'a fresh dist/ is not rebuilt');
  // the checkout's own dist/ (the last test runs it): built if stale, as bootstrap would
  build();
});

test('npm start and the podnet bin run dist/receiver/cli/main.js with the same environment and node flags', () => {
  const start = /^MALLOC_ARENA_MAX=\$\{MALLOC_ARENA_MAX:-2\} node ((?:--\S+ )*)(\S+) run$/.exec(
    pkg.scripts['start'] ?? '',
  );
  assert.ok(start, `scripts.start: ${pkg.scripts['start']}`);
  assert.equal(start[2], 'dist/receiver/cli/main.js');
  // the bin is a sh wrapper (a shebang cannot default a variable); main.js keeps the flags for direct runs
  assert.equal(pkg.bin['podnet'], 'bin/podnet');
  const bin = readFileSync(join(ROOT, pkg.bin['podnet']), 'utf8').split('\n');
  assert.ok(
    bin.includes(`MALLOC_ARENA_MAX=\${MALLOC_ARENA_MAX:-2}`) && bin.includes('export MALLOC_ARENA_MAX'),
  );
  assert.equal(
    bin.find((l) => l.startsWith('exec ')),
    `exec node ${start[1]!.trim()} "$here/../${start[2]}" "$@"`,
  );
  const shebang = readFileSync(join(ROOT, start[2]!), 'utf8').split('\n')[0];
  assert.equal(shebang, `#!/usr/bin/env -S node ${start[1]!.trim()}`);
  assert.match(start[1]!, /--max-semi-space-size=\d+/, 'the young generation is capped at start');
  // V8's top tier is Maglev: no TurboFan code paged in (~5 MB of RSS) nor compiled (docs/receiver.md)
  assert.match(start[1]!, /(^| )--max-opt=2( |$)/, 'TurboFan is off at start');
  // V8's memory reducer collects without its reduce-memory mode, whose GCs deoptimized ~30 per-cycle Maglev
  // functions ("embedded weak objects cleared") compiled again over the next cycles (docs/receiver.md)
  assert.match(start[1]!, /(^| )--no-memory-reducer-favors-memory( |$)/, 'no reduce-memory mode at start');
});

test('podnet run from dist/ (OTLP on, log export worker up) loads no TypeScript module', async () => {
  const hook = join(dir, 'hook.mjs');
  writeFileSync(
    hook,
    `import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
registerHooks({ load(url, ctx, next) { appendFileSync(process.env.PNK_LOADED_FILE, (isMainThread ? 'main ' : 'worker ') + url + '\\n'); return next(url, ctx); } });
`,
  );
  const config = join(dir, 'podnet.yaml');
  writeFileSync(
    config,
    [
      'collection_interval: 1s',
      'server:',
      '  address: 127.0.0.1:0',
      'probes:',
      ...probeSpecs.map((s) => `  ${s.name}: {enabled: ${s.name === 'netdev'}}`),
      '',
    ].join('\n'),
  );
  const out = join(dir, 'loaded');
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(env))
    if (k.startsWith('OTEL_') || k === 'CONTAINER_RUNTIME_ENDPOINT') delete env[k];
  const flags = (/ node ((?:--\S+ )*)/.exec(pkg.scripts['start'] ?? '')?.[1] ?? '').trim().split(/\s+/);
  const child = spawn(
    process.execPath,
    [...flags, '--import', hook, join(ROOT, 'dist/receiver/cli/main.js'), 'run', '--config', config],
    {
      env: {
        ...env,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', // discard port: exports fail, which is fine here
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        PODNET_LOG_LEVEL: 'info',
        PNK_LOADED_FILE: out,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  const running = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
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
  const urls = readFileSync(out, 'utf8').trim().split('\n');
  assert.ok(
    urls.some((u) => u.startsWith('worker ') && u.endsWith('/dist/receiver/otel/log-export-worker.js')),
    'the log export worker ran from dist/',
  );
  assert.ok(
    urls.some((u) => u.endsWith('/dist/receiver/otel/otlp-metric-exporter.js')),
    'the lazily imported metric exporter loaded from dist/',
  );
  assert.deepEqual(
    urls.filter((u) => u.endsWith('.ts') || u.endsWith('.mts')),
    [],
  );
  // (exports to the discard port fail and the shutdown may wait on them: not this test's concern)
  assert.doesNotMatch(
    stderr,
    /ERR_MODULE_NOT_FOUND|Cannot find module|event export worker (?:failed|exited)/,
  );
});
