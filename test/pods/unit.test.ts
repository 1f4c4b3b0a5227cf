// Endpoint resolution, label bounds and sandbox-info parsing: pure logic, plus real unix sockets.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CriEndpointError, resolveCriEndpoint, socketPathOf } from '../../receiver/pods/endpoint.ts';
import { compileLabelPolicy, LabelPolicyError, podLabelAttributes } from '../../receiver/pods/labels.ts';
import { EntityRegistry } from '../../receiver/pods/registry.ts';
import { RegistryOptionsError } from '../../receiver/pods/registry-options.ts';
import { parseSandboxInfo } from '../../receiver/pods/sandbox-info.ts';

const dir = mkdtempSync(`/tmp/pnp${process.pid}-unit-`);
let server: Server;
const sock = join(dir, 'second.sock');

before(async () => {
  server = createServer();
  await new Promise<void>((r) => server.listen(sock, r));
});
after(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('socketPathOf accepts unix:///p, unix:/p and /p; refuses tcp and relative paths with the value named', () => {
  assert.equal(socketPathOf('unix:///run/x.sock'), '/run/x.sock');
  assert.equal(socketPathOf('unix:/run/x.sock'), '/run/x.sock');
  assert.equal(socketPathOf('/run/x.sock'), '/run/x.sock');
  assert.throws(
    () => socketPathOf('tcp://127.0.0.1:1'),
    (e: Error) => e instanceof CriEndpointError && /tcp:\/\/127/.test(e.message),
  );
  assert.throws(() => socketPathOf('run/x.sock'), /must be absolute/);
});

test('resolveCriEndpoint: config, then CONTAINER_RUNTIME_ENDPOINT, then the first existing socket', () => {
  const missing = join(dir, 'missing.sock');
  const plainFile = join(dir, 'file.sock');
  writeFileSync(plainFile, '');
  assert.deepEqual(
    resolveCriEndpoint('unix:///a.sock', { CONTAINER_RUNTIME_ENDPOINT: 'unix:///b.sock' }, [sock]),
    {
      target: 'unix:///a.sock',
      socketPath: '/a.sock',
      source: 'config',
    },
  );
  assert.equal(
    resolveCriEndpoint(undefined, { CONTAINER_RUNTIME_ENDPOINT: 'unix:///b.sock' }, [sock])?.source,
    'env',
  );
  // candidates: a missing path and a regular file are skipped, the real socket is taken
  assert.deepEqual(resolveCriEndpoint(undefined, {}, [missing, plainFile, sock]), {
    target: `unix://${sock}`,
    socketPath: sock,
    source: 'default',
  });
  assert.equal(resolveCriEndpoint(undefined, {}, [missing, plainFile]), undefined);
  assert.equal(resolveCriEndpoint('  ', { CONTAINER_RUNTIME_ENDPOINT: '' }, []), undefined);
});

test('label policy: allow-list (exact and prefix*), max keys, value length, invalid config named', () => {
  const p = compileLabelPolicy({ allow: ['app', 'team.example.com/*'], maxKeys: 2, maxValueLength: 5 });
  const sel = p.select({
    app: 'checkout-service',
    'team.example.com/owner': 'ann',
    'team.example.com/cost': 'c1',
    secret: 'no',
  });
  // sorted keys: app, team.example.com/cost, team.example.com/owner → first 2 kept
  assert.deepEqual(sel.labels, { app: 'check', 'team.example.com/cost': 'c1' });
  assert.equal(sel.droppedKeys, 1);
  assert.equal(sel.truncatedValues, 1);
  assert.deepEqual(compileLabelPolicy().select({ app: 'x' }).labels, {});
  assert.throws(
    () => compileLabelPolicy({ allow: ['bad key!'] }),
    (e: Error) => e instanceof LabelPolicyError && /bad key!/.test(e.message),
  );
  assert.throws(() => compileLabelPolicy({ allow: ['a*b*'] }), /trailing \*/);
  assert.throws(() => compileLabelPolicy({ maxKeys: 1000 }), /maxKeys must be an integer from 0 to 64/);
  assert.throws(
    () => compileLabelPolicy({ allow: Array.from({ length: 65 }, (_, i) => `k${i}`) }),
    /at most 64/,
  );
  assert.deepEqual(
    podLabelAttributes({
      uid: 'u',
      name: 'n',
      namespace: 'ns',
      labels: { app: 'web' },
      ips: [],
      sandboxId: 's',
      hostNetwork: false,
    }),
    { 'k8s.pod.label.app': 'web' },
  );
});

test('parseSandboxInfo reads pid, netns path and cgroup parent; garbage gives an empty result, not a crash', () => {
  const info = {
    info: JSON.stringify({
      pid: 4242,
      netNamespaceClosed: false,
      config: { linux: { cgroup_parent: '/kubepods/besteffort/podabc' } },
      runtimeSpec: {
        linux: {
          namespaces: [{ type: 'pid' }, { type: 'network', path: '/var/run/netns/cni-1234' }],
        },
      },
      cniResult: {
        Interfaces: {
          // names that do not exist in this host's /sys/class/net: not a bridge → the only host-side one wins
          pnpnobr0: { IPConfigs: null, Sandbox: '/var/run/netns/cni-1234' },
          vethpnp0: { IPConfigs: null, Sandbox: '' },
          eth0: { IPConfigs: [{ IP: '10.0.0.5' }], Sandbox: '/var/run/netns/cni-1234' },
        },
      },
    }),
  };
  assert.deepEqual(parseSandboxInfo(info), {
    pid: 4242,
    netnsPath: '/var/run/netns/cni-1234',
    cgroupParent: '/kubepods/besteffort/podabc',
    hostVeth: 'vethpnp0',
    netnsClosed: false,
  });
  assert.deepEqual(parseSandboxInfo({ info: 'not json' }), {});
  assert.deepEqual(parseSandboxInfo({}), {});
  assert.deepEqual(
    parseSandboxInfo({ info: JSON.stringify({ pid: 0, runtimeSpec: { linux: { namespaces: 'x' } } }) }),
    {},
  );
});

test('registry options are validated with messages naming the option', () => {
  assert.throws(
    () => new EntityRegistry({ disableCri: true, refreshIntervalMs: 5 }),
    (e: Error) => e instanceof RegistryOptionsError && /refreshInterval/.test(e.message),
  );
  assert.throws(
    () => new EntityRegistry({ disableCri: true, netnsDiscovery: 'sometimes' as 'auto' }),
    /netnsDiscovery must be auto, always or never/,
  );
  assert.throws(() => new EntityRegistry({ criEndpoint: 'tcp://1.2.3.4:5' }), /only unix sockets/);
  assert.throws(() => new EntityRegistry({ disableCri: true, labels: { allow: ['?'] } }), LabelPolicyError);
});
