// The reusable CRI test environment itself: pods talk over the bridge, exec works, a restart keeps pods,
// and teardown leaves nothing behind (checked in the kernel: processes, bridge, netns, cgroups, mounts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

test('CRI env: a test process that exits without teardown still leaves nothing (exit hook)', async () => {
  const name = `pnx${process.pid}`;
  const script = `
    import { startCriEnv } from ${JSON.stringify(new URL('../env/cri/index.ts', import.meta.url).pathname)};
    const env = await startCriEnv({ name: ${JSON.stringify(name)} });
    const p = await env.runPod({ name: 'crash', containers: [{ name: 'sh' }] });
    const { readdirSync, statSync } = await import('node:fs');
    const netns = readdirSync('/run/netns').filter((n) => { try { return statSync('/run/netns/' + n).ino === p.netnsInode; } catch { return false; } });
    console.log(JSON.stringify({ dir: env.dir, socket: env.socket, pid: p.pid, cpid: env.containerdPid(), netns }));
    process.exit(7); // no teardown(); 7 tells this exit from a start-up failure (an unhandled rejection exits 1)
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(child.status, 7, `the child failed before its exit: status ${child.status}\n${child.stderr}`);
  const info = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as {
    dir: string;
    socket: string;
    pid: number;
    cpid: number;
    netns: string[];
  };
  assert.ok(info.pid > 0 && info.cpid > 0, child.stdout);
  assert.ok(!isAlive(info.cpid), 'containerd survived');
  assert.ok(!isAlive(info.pid), 'pod process survived');
  assert.deepEqual(shimsOf(info.socket), []);
  assert.ok(!existsSync(`/sys/class/net/${name}br`), 'bridge left');
  assert.deepEqual(cgroupDirs(name), []);
  assert.deepEqual(mountsUnder(info.dir), []);
  assert.ok(!existsSync(info.dir), 'temp dir left');
  assert.equal(info.netns.length, 1, 'the pod netns should have been found under /run/netns');
  for (const n of info.netns) assert.ok(!existsSync(`/run/netns/${n}`), `netns ${n} left`);
});
