// The reusable CRI test environment itself: pods talk over the bridge, exec works, a restart keeps pods,
// and teardown leaves nothing behind (checked in the kernel: processes, bridge, netns, cgroups, mounts).
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { startCriEnv } from '../env/cri/index.ts';
import { cgroupDirs, isAlive, mountsUnder, shimsOf } from '../env/cri/procs.ts';

test('CRI env: traffic between pods, exec, teardown leaves no process, bridge, netns, cgroup or mount', async () => {
  const env = await startCriEnv();
  let torn = false;
  try {
    const web = await env.runPod({
      name: 'web',
      containers: [{ name: 'httpd', command: ['httpd', '-f', '-p', '8080', '-h', '/var/www'] }],
    });
    const client = await env.runPod({ name: 'client', containers: [{ name: 'sh' }] });
    const hn = await env.runPod({ name: 'hn', hostNetwork: true, containers: [{ name: 'sh' }] });
    assert.notEqual(web.ip, '');
    assert.equal(hn.ip, '');
    let body = '';
    for (let i = 0; i < 50 && !body.includes('podnet test'); i++) {
      body = (await env.exec(client, ['wget', '-q', '-O', '-', `http://${web.ip}:8080/index.html`])).stdout;
      if (!body) await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(body, /podnet test/);
    const r = await env.exec(client, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
    await assert.rejects(env.exec(web, ['true'], { container: 'nope' }), /has no container nope/);
    // the hostNetwork pod sees the host bridge
    assert.match(
      (await env.exec(hn, ['ip', '-o', 'link', 'show', env.bridge])).stdout,
      new RegExp(env.bridge),
    );

    await env.restartContainerd();
    assert.equal((await env.exec(client, ['echo', 'still'])).stdout, 'still\n');
    assert.equal(env.pods().length, 3);

    const cpid = env.containerdPid();
    const pids = [web.pid, client.pid, hn.pid];
    const rep = await env.teardown();
    torn = true;
    assert.deepEqual(rep.leftovers, []);
    assert.equal(rep.podsRemoved, 3);
    assert.ok(!isAlive(cpid), 'containerd still running');
    for (const p of pids) assert.ok(!isAlive(p), `pause pid ${p} still running`);
    assert.deepEqual(shimsOf(env.socket), []);
    assert.ok(!existsSync(`/sys/class/net/${env.bridge}`), 'bridge left');
    assert.deepEqual(cgroupDirs(env.name), []);
    assert.deepEqual(mountsUnder(env.dir), []);
    assert.ok(!existsSync(env.dir), 'temp dir left');
    assert.deepEqual(await env.teardown(), { podsRemoved: 0, leftovers: [] }); // idempotent
  } finally {
    if (!torn) await env.teardown();
  }
});

test('CRI env: a bad option fails with a clear error and leaves nothing', async () => {
  const name = `pnq${process.pid}`;
  await assert.rejects(startCriEnv({ name: 'Bad Name' }), /must be 1-12 chars/);
  await assert.rejects(startCriEnv({ name, subnet: '10.201.0.0/8' }), /prefix must be \/16 to \/24/);
  await assert.rejects(startCriEnv({ name, subnet: '10.201.300.0/24' }), /bad IPv4/);
  assert.deepEqual(
    readdirSync('/tmp').filter((f) => f.startsWith(`${name}-`)),
    [],
  );
  assert.ok(!existsSync(`/sys/class/net/${name}br`));
});
