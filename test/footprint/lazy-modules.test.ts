// Modules podnet loads only when the configuration needs them (benchmarks/suite/memory.ts measures what
// they cost): without an OTLP endpoint and without a CRI socket, `podnet run` loads no gRPC, protobufjs
// or OTLP exporter package; with an OTLP/HTTP protobuf endpoint it loads the HTTP exporter and the
// serializer and still no gRPC.
// What is loaded is what Node's module loader resolves (module.registerHooks in the podnet process).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { probeSpecs } from '../../probes/registry.ts';
import { DEFAULT_CRI_SOCKETS } from '../../receiver/pods/endpoint.ts';

const CLI = fileURLToPath(new URL('../../receiver/cli/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), `pnk-lazy-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

const hook = join(dir, 'hook.mjs');
writeFileSync(
  hook,
  `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const seen = [];
registerHooks({ load(url, ctx, next) { seen.push(url); return next(url, ctx); } });
process.on('exit', () => writeFileSync(process.env.PNK_LOADED_FILE, seen.join('\\n')));
`,
);

const HEAVY = [
  '/node_modules/@grpc/',
  '/node_modules/protobufjs/',
  '/node_modules/@opentelemetry/otlp-transformer/',
  '/node_modules/@opentelemetry/otlp-grpc-exporter-base/',
  '/node_modules/@opentelemetry/exporter-metrics-otlp-grpc/',
  '/node_modules/@opentelemetry/exporter-metrics-otlp-proto/',
  '/node_modules/@opentelemetry/exporter-metrics-otlp-http/',
  '/node_modules/@opentelemetry/otlp-exporter-base/',
];

/** Run `podnet run` (procfs netdev probe only) until it serves, stop it, return the module URLs it loaded. */
async function loadedBy(name: string, env: Record<string, string>): Promise<string[]> {
  const config = join(dir, `${name}.yaml`);
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
  const out = join(dir, `${name}.loaded`);
  const base: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(base))
    if (k.startsWith('OTEL_') || k === 'CONTAINER_RUNTIME_ENDPOINT') delete base[k];
  const child = spawn(process.execPath, ['--import', hook, CLI, 'run', '--config', config], {
    env: { ...base, ...env, PODNET_LOG_LEVEL: 'info', PNK_LOADED_FILE: out },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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
    // One collection and, with OTLP, one export attempt (interval 1 s) happen before the stop.
    await new Promise((r) => setTimeout(r, 2500));
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return readFileSync(out, 'utf8').split('\n');
}

const heavyIn = (urls: readonly string[]): string[] =>
  [...new Set(urls.flatMap((u) => HEAVY.filter((h) => u.includes(h))))].sort();

test('no OTLP endpoint, no CRI socket: no gRPC, protobufjs or OTLP exporter module is loaded', async () => {
  const present = DEFAULT_CRI_SOCKETS.filter((p) => existsSync(p));
  assert.deepEqual(present, [], 'this test needs a machine without a CRI socket at the default paths');
  const urls = await loadedBy('none', {});
  assert.ok(
    urls.some((u) => u.includes('/node_modules/@opentelemetry/sdk-metrics/')),
    'the hook saw the SDK',
  );
  assert.deepEqual(heavyIn(urls), []);
});

test('OTLP http/protobuf: the HTTP exporter and the protobuf serializer are loaded, gRPC is not', async () => {
  const urls = await loadedBy('proto', {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', // discard port: exports fail, which is fine here
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  });
  const heavy = heavyIn(urls);
  assert.ok(
    urls.some((u) => u.includes('/receiver/otel/otlp-metric-exporter.ts')),
    'metric exporter loaded',
  );
  assert.ok(heavy.includes('/node_modules/@opentelemetry/otlp-transformer/'), heavy.join(', '));
  assert.ok(heavy.includes('/node_modules/@opentelemetry/otlp-exporter-base/'), heavy.join(', '));
  assert.ok(!heavy.some((h) => h.includes('grpc')), heavy.join(', '));
});
