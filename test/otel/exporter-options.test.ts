// OTLP exporter options as the Collector's exporters have them (exporters.otlp.compression, .tls) and the
// standard variables (OTEL_EXPORTER_OTLP_COMPRESSION, _CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE), against
// the test OTLP receiver: gzip bytes on the wire (the body as received starts with the gzip magic), and TLS
// handshakes with a CA this test creates with openssl (server certificate for 127.0.0.1; a client
// certificate for mutual TLS). Without the CA the handshake fails and the export is counted as failed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { HOST_ENTITY } from '../../receiver/pods/entity.ts';
import { type OtlpReceiver, startOtlpReceiver } from '../env/otlp-receiver/receiver.ts';

let dir: string;
const f = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), `podnet-tls-${process.pid}-`));
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=podnet-test-ca',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  );
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [who, cn] of [
    ['server', 'localhost'],
    ['client', 'podnet-client'],
  ] as const) {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      f(`${who}.key`),
      '-out',
      f(`${who}.csr`),
    );
    openssl(
      'x509',
      '-req',
      '-in',
      f(`${who}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      f(`${who}.ext`),
      '-out',
      f(`${who}.pem`),
    );
  }
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function config(endpoint: string, protocol: string, otlpExtra = ''): string {
  return `
collection_interval: 200ms
server: { enabled: false }
probes: { synthetic: { enabled: true, args: { event_rate_per_sec: 20 } } }
exporters: { otlp: { endpoint: "${endpoint}", protocol: "${protocol}", interval: 300ms, timeout: 5s${otlpExtra} } }
event_queue: { schedule_delay: 100ms }
`;
}

async function run(
  rx: OtlpReceiver,
  protocol: 'grpc' | 'http/protobuf',
  otlpExtra: string,
  env: Record<string, string> = {},
): Promise<Agent> {
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  try {
    return await Agent.start({
      configText: config(protocol === 'grpc' ? rx.grpcEndpoint : rx.httpEndpoint, protocol, otlpExtra),
      specs: [],
      extraSpecs: [syntheticSpec],
      entitySource: new StaticEntitySource([HOST_ENTITY]),
      env: {},
    });
  } finally {
    // The exporters read the variables when they are built (for logs: in the worker, at its start).
    setTimeout(() => {
      for (const k of Object.keys(env)) delete process.env[k];
    }, 3000).unref();
  }
}

async function arrives(rx: OtlpReceiver, what: string): Promise<void> {
  await rx.waitFor(() => rx.points.length > 0 && rx.logs.length > 0, 20_000, what);
  assert.deepEqual(rx.decodeErrors, []);
  assert.ok(rx.points.some((p) => p.name === 'podnet.synthetic.packet.count'));
  assert.ok(rx.logs.every((l) => String(l.body).length > 0));
}

const GZIP_MAGIC = '1f8b';

test('compression: gzip (config): the request bodies on the wire are gzip, and decode', async () => {
  const rx = await startOtlpReceiver();
  const agent = await run(rx, 'http/protobuf', ', compression: gzip');
  try {
    await arrives(rx, 'gzip metrics and logs');
    for (const sig of ['metrics', 'logs']) {
      assert.equal(rx.headers.get(`${sig} http/protobuf`)?.['content-encoding'], 'gzip', sig);
      assert.equal(rx.rawHead.get(`/v1/${sig}`)!.subarray(0, 2).toString('hex'), GZIP_MAGIC, sig);
    }
  } finally {
    await agent.stop();
    await rx.down();
  }
});

test('compression: OTEL_EXPORTER_OTLP_COMPRESSION=gzip; none when unset', async () => {
  const rx = await startOtlpReceiver();
  let agent = await run(rx, 'http/protobuf', '', { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' });
  try {
    await arrives(rx, 'gzip via env');
    assert.equal(rx.rawHead.get('/v1/metrics')!.subarray(0, 2).toString('hex'), GZIP_MAGIC);
    assert.equal(rx.rawHead.get('/v1/logs')!.subarray(0, 2).toString('hex'), GZIP_MAGIC);
  } finally {
    await agent.stop();
  }
  await new Promise((r) => setTimeout(r, 3100)); // the variable is gone
  rx.clear();
  agent = await run(rx, 'http/protobuf', '');
  try {
    await arrives(rx, 'uncompressed');
    assert.equal(rx.headers.get('metrics http/protobuf')?.['content-encoding'], undefined);
    assert.notEqual(rx.rawHead.get('/v1/metrics')!.subarray(0, 2).toString('hex'), GZIP_MAGIC);
  } finally {
    await agent.stop();
    await rx.down();
  }
});

test('tls: mutual TLS over HTTPS with ca_file, cert_file and key_file', async () => {
  const rx = await startOtlpReceiver({
    tls: {
      cert: readFileSync(f('server.pem')),
      key: readFileSync(f('server.key')),
      clientCa: readFileSync(f('ca.pem')),
    },
  });
  assert.match(rx.httpEndpoint, /^https:/);
  const agent = await run(
    rx,
    'http/protobuf',
    `, tls: { ca_file: "${f('ca.pem')}", cert_file: "${f('client.pem')}", key_file: "${f('client.key')}" }`,
  );
  try {
    await arrives(rx, 'metrics and logs over mutual TLS');
    assert.equal(rx.clientCertCn.get('/v1/metrics'), 'podnet-client');
    assert.equal(rx.clientCertCn.get('/v1/logs'), 'podnet-client');
  } finally {
    await agent.stop();
    await rx.down();
  }
});

test('tls: gRPC with ca_file; without the CA the handshake fails and the export counts as failed', async () => {
  const tls = { cert: readFileSync(f('server.pem')), key: readFileSync(f('server.key')) };
  const rx = await startOtlpReceiver({ tls });
  let agent = await run(rx, 'grpc', `, tls: { ca_file: "${f('ca.pem')}" }`);
  try {
    await arrives(rx, 'metrics and logs over gRPC with TLS');
    assert.ok(rx.points.every((p) => p.transport === 'grpc'));
  } finally {
    await agent.stop();
  }
  rx.clear();
  agent = await run(rx, 'grpc', '');
  try {
    const deadline = Date.now() + 15_000;
    while (agent.pipeline.self.exportFailures.metrics === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(agent.pipeline.self.exportFailures.metrics > 0, 'an export failed');
    assert.equal(rx.points.length, 0, 'nothing arrived without the CA');
  } finally {
    await agent.stop();
    await rx.down();
  }
});

test('tls: OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE and _CLIENT_KEY', async () => {
  const rx = await startOtlpReceiver({
    tls: {
      cert: readFileSync(f('server.pem')),
      key: readFileSync(f('server.key')),
      clientCa: readFileSync(f('ca.pem')),
    },
  });
  const agent = await run(rx, 'http/protobuf', '', {
    OTEL_EXPORTER_OTLP_CERTIFICATE: f('ca.pem'),
    OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: f('client.pem'),
    OTEL_EXPORTER_OTLP_CLIENT_KEY: f('client.key'),
  });
  try {
    await arrives(rx, 'metrics and logs over mutual TLS from the environment');
    assert.equal(rx.clientCertCn.get('/v1/metrics'), 'podnet-client');
    assert.equal(rx.clientCertCn.get('/v1/logs'), 'podnet-client');
  } finally {
    await agent.stop();
    await rx.down();
  }
});
