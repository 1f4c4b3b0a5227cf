// Pod discovery against real pods: a private containerd with CRI + CNI bridge (test/env/cri), pods
// created over CRI, every answer compared with the kernel (readlink /proc/<pid>/ns/net, ip addr in the
// pod netns, the veth's ifindex).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { hostNetnsInode } from '../../receiver/netns/setns.ts';
import { isNotFound } from '../../receiver/pods/cri-client.ts';
import type { Entity, EntityChange } from '../../receiver/pods/entity.ts';
import { podLabelAttributes } from '../../receiver/pods/labels.ts';
import { EntityRegistry } from '../../receiver/pods/registry.ts';
import { type CriEnv, netnsInodeOfPid, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { isAlive } from '../env/cri/procs.ts';

let env: CriEnv;
let reg: EntityRegistry;
const changes: EntityChange[] = [];
let web: TestPod;
let client: TestPod;
let hn: TestPod;

before(async () => {
  env = await startCriEnv();
  reg = new EntityRegistry({
    criEndpoint: env.endpoint,
    refreshIntervalMs: 60_000, // these tests refresh on demand; the periodic test uses its own registry
    labels: { allow: ['app', 'example.com/*'], maxKeys: 2, maxValueLength: 8 },
  });
  reg.onChange((c) => changes.push(...c));
});

after(async () => {
  reg?.stop();
  const report = await env?.teardown();
  if (report) assert.deepEqual(report.leftovers, [], 'CRI env teardown left things behind');
});

function podEntity(pod: TestPod): Entity | undefined {
  return reg.entities().find((e) => e.pod?.uid === pod.uid);
}

test('3 real pods (one hostNetwork): uid, name, namespace, netns inode, IP, veth match the kernel', async () => {
  web = await env.runPod({
    name: 'web',
    namespace: 'shop',
    labels: { app: 'web-frontend-v2', 'example.com/team': 'a', 'example.com/zone': 'b', other: 'x' },
    containers: [{ name: 'httpd', command: ['httpd', '-f', '-p', '8080', '-h', '/var/www'] }],
  });
  client = await env.runPod({ name: 'client', namespace: 'shop' });
  hn = await env.runPod({ name: 'hostnet', namespace: 'kube-system', hostNetwork: true });
  await reg.start();
  assert.equal(reg.status().mode, 'cri');
  assert.equal(reg.status().cri.connected, true);
  assert.match(reg.status().cri.runtime ?? '', /^containerd /);

  for (const p of [web, client]) {
    const e = podEntity(p);
    assert.ok(e, `pod ${p.name} missing from the registry`);
    assert.equal(e.kind, 'pod');
    assert.equal(e.pod?.uid, p.uid);
    assert.equal(e.pod?.name, p.name);
    assert.equal(e.pod?.namespace, 'shop');
    assert.equal(e.pod?.sandboxId, p.sandboxId);
    assert.equal(e.pod?.hostNetwork, false);
    // kernel truth: the pause process found through its cgroup
    assert.equal(e.netnsInode, netnsInodeOfPid(p.pid));
    assert.equal(e.pid, p.pid);
    assert.equal(netnsInodeOfPid(e.pid ?? 0), e.netnsInode);
    assert.ok(p.ip.startsWith(env.subnet.split('.').slice(0, 3).join('.')), p.ip);
    assert.deepEqual(e.pod?.ips, [p.ip]);
    assert.equal(e.displayName, `shop/${p.name}`);
    assert.equal(reg.byNetns(e.netnsInode), e);
    // host veth from the CNI result = the host interface whose ifindex is eth0's peer in the pod
    assert.ok(e.hostVeth, 'hostVeth missing');
    const link = execFileSync(
      'nsenter',
      [`--net=/proc/${p.pid}/ns/net`, 'ip', '-o', 'link', 'show', 'eth0'],
      {
        encoding: 'utf8',
      },
    );
    const peer = Number(/eth0@if(\d+)/.exec(link)?.[1]);
    assert.equal(Number(readFileSync(`/sys/class/net/${e.hostVeth}/ifindex`, 'utf8')), peer);
  }
  assert.notEqual(podEntity(web)?.netnsInode, podEntity(client)?.netnsInode);

  // hostNetwork: listed as a pod, owns no entity, and its netns is the host entity's
  assert.equal(podEntity(hn), undefined);
  const hp = reg.pods().find((p) => p.uid === hn.uid);
  assert.ok(hp, 'hostNetwork pod not listed');
  assert.equal(hp.hostNetwork, true);
  assert.deepEqual(hp.ips, []);
  assert.equal(hp.name, 'hostnet');
  assert.equal(hn.netnsInode, hostNetnsInode);
  assert.equal(reg.byNetns(hn.netnsInode)?.kind, 'host');
  assert.deepEqual(
    reg.pods().map((p) => `${p.namespace}/${p.name}`),
    ['kube-system/hostnet', 'shop/client', 'shop/web'],
  );
  assert.equal(reg.entities().length, 3);
  assert.deepEqual(
    changes
      .filter((c) => c.type === 'added')
      .map((c) => c.entity.displayName)
      .sort(),
    ['host', 'shop/client', 'shop/web'],
  );

  // labels: allow-list, max 2 keys (sorted: app, example.com/team), values cut at 8
  assert.deepEqual(podLabelAttributes(podEntity(web)?.pod ?? hp), {
    'k8s.pod.label.app': 'web-fron',
    'k8s.pod.label.example.com/team': 'a',
  });
  assert.deepEqual(reg.status().labels, { droppedKeys: 1, truncatedValues: 1 });
});

test('an unchanged refresh emits nothing and keeps entity objects stable', async () => {
  const before = reg.entities();
  changes.length = 0;
  await reg.refresh();
  assert.deepEqual(changes, []);
  const now = reg.entities();
  assert.equal(now.length, before.length);
  for (const e of before) assert.equal(reg.byNetns(e.netnsInode), e);
});

test('a deleted pod and a stopped sandbox leave within one refresh', async () => {
  const gone = await env.runPod({ name: 'gone', namespace: 'shop' });
  const stopped = await env.runPod({ name: 'stopped', namespace: 'shop' });
  await reg.refresh();
  const goneInode = podEntity(gone)?.netnsInode;
  const stoppedInode = podEntity(stopped)?.netnsInode;
  assert.ok(goneInode && stoppedInode);
  changes.length = 0;
  await env.removePod(gone);
  await env.stopPod(stopped); // NOTREADY, still listed by the runtime
  await reg.refresh();
  assert.equal(reg.byNetns(goneInode), undefined);
  assert.equal(reg.byNetns(stoppedInode), undefined);
  assert.ok(!reg.pods().some((p) => p.uid === gone.uid || p.uid === stopped.uid));
  assert.deepEqual(changes.map((c) => `${c.type} ${c.entity.displayName}`).sort(), [
    'removed shop/gone',
    'removed shop/stopped',
  ]);
  // a removed sandbox answers NOT_FOUND (the race the registry skips)
  await assert.rejects(env.client.podSandboxStatus(gone.sandboxId), (err) => isNotFound(err));
  await env.removePod(stopped);
});

test('pods removed while refreshes run (NOT_FOUND races) never break a refresh', async () => {
  const pods = await Promise.all(
    [0, 1, 2, 3].map((i) => env.runPod({ name: `race${i}`, namespace: 'race' })),
  );
  await reg.refresh();
  const refreshing = (async () => {
    for (let i = 0; i < 20; i++) await reg.refresh();
  })();
  await Promise.all(pods.map((p) => env.removePod(p)));
  await refreshing;
  await reg.refresh();
  assert.equal(reg.status().lastRefresh?.error, undefined);
  assert.ok(!reg.pods().some((p) => p.namespace === 'race'));
  assert.equal(reg.entities().length, 3);
});

test('the interval refresh picks up a new pod and its removal without being asked', async () => {
  const periodic = new EntityRegistry({ criEndpoint: env.endpoint, refreshIntervalMs: 150 });
  try {
    await periodic.start();
    const seen: string[] = [];
    periodic.onChange((c) => seen.push(...c.map((x) => `${x.type} ${x.entity.displayName}`)));
    const p = await env.runPod({ name: 'late', namespace: 'shop' });
    const waitUntil = async (cond: () => boolean): Promise<void> => {
      for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
    };
    await waitUntil(() => periodic.byNetns(p.netnsInode) !== undefined);
    assert.equal(periodic.byNetns(p.netnsInode)?.pod?.uid, p.uid);
    await env.removePod(p);
    await waitUntil(() => periodic.byNetns(p.netnsInode) === undefined);
    assert.equal(periodic.byNetns(p.netnsInode), undefined);
    assert.deepEqual(seen, ['added shop/late', 'removed shop/late']);
  } finally {
    periodic.stop();
  }
});

test('restarting containerd loses nothing: pods stay during the outage and after reconnect', async () => {
  await reg.refresh();
  const snapshot = JSON.stringify(reg.entities());
  const podsBefore = JSON.stringify(reg.pods());
  const oldPid = env.containerdPid();
  changes.length = 0;
  const restarting = env.restartContainerd();
  // refreshes during the restart window: the runtime may be down, the view must not change
  for (let i = 0; i < 5; i++) {
    await reg.refresh();
    assert.equal(JSON.stringify(reg.entities()), snapshot);
  }
  await restarting;
  assert.notEqual(env.containerdPid(), oldPid);
  await reg.refresh();
  assert.equal(reg.status().cri.connected, true, reg.status().cri.lastError);
  assert.equal(reg.status().lastRefresh?.error, undefined);
  assert.equal(JSON.stringify(reg.entities()), snapshot);
  assert.equal(JSON.stringify(reg.pods()), podsBefore);
  assert.deepEqual(changes, []);
  // and the runtime really serves again: a new pod appears
  const fresh = await env.runPod({ name: 'after-restart', namespace: 'shop' });
  await reg.refresh();
  assert.equal(podEntity(fresh)?.netnsInode, fresh.netnsInode);
  await env.removePod(fresh);
  await reg.refresh();
});

test('runtime down: pods kept while their netns lives, a pod that dies meanwhile leaves, nothing lost after restart', async () => {
  const victim = await env.runPod({ name: 'victim', namespace: 'shop' });
  await reg.refresh();
  assert.ok(reg.byNetns(victim.netnsInode));
  const keep = JSON.stringify(reg.entities().filter((e) => e.pod?.uid !== victim.uid));
  changes.length = 0;
  await env.stopContainerd();
  await reg.refresh();
  const st = reg.status();
  assert.equal(st.cri.connected, false);
  assert.match(st.cri.lastError ?? '', /containerd\.sock/);
  assert.equal(st.mode, 'cri');
  assert.ok(reg.byNetns(victim.netnsInode), 'pods must stay while the runtime is down');
  assert.equal(changes.length, 0, 'no changes while the runtime is down');
  // the pod's sandbox process dies while nobody can ask the runtime: it leaves anyway
  process.kill(victim.pid, 'SIGKILL');
  for (let i = 0; i < 100 && isAlive(victim.pid); i++) await new Promise((r) => setTimeout(r, 10));
  await reg.refresh();
  assert.equal(reg.byNetns(victim.netnsInode), undefined);
  assert.deepEqual(
    changes.map((c) => `${c.type} ${c.entity.displayName}`),
    ['removed shop/victim'],
  );
  assert.equal(JSON.stringify(reg.entities()), keep);
  changes.length = 0;
  await env.startContainerd();
  await reg.refresh();
  assert.equal(reg.status().cri.connected, true, reg.status().cri.lastError);
  assert.equal(JSON.stringify(reg.entities()), keep);
  assert.ok(!reg.pods().some((p) => p.uid === victim.uid), 'a dead sandbox is NOTREADY, not listed');
  assert.deepEqual(changes, []);
  await env.removePod(victim);
});

test('a runtime that appears later takes over from netns discovery', async () => {
  const dir = mkdtempSync(`/tmp/pnp${process.pid}-late-`);
  const link = join(dir, 'cri.sock');
  const late = new EntityRegistry({ criEndpoint: link, criTimeoutMs: 3000 });
  try {
    await late.refresh();
    assert.equal(late.status().mode, 'netns');
    assert.match(late.status().cri.lastError ?? '', /cri\.sock does not exist/);
    // netns discovery sees the pods' netns by their CNI names meanwhile
    const asNetns = late.byNetns(web.netnsInode);
    assert.equal(asNetns?.kind, 'netns');
    assert.match(asNetns?.netnsName ?? '', /^cni-/);
    symlinkSync(env.socket, link);
    const seen: EntityChange[] = [];
    late.onChange((c) => seen.push(...c));
    await late.refresh();
    assert.equal(late.status().mode, 'cri');
    assert.equal(late.byNetns(web.netnsInode)?.kind, 'pod');
    assert.equal(late.byNetns(web.netnsInode)?.pod?.uid, web.uid);
    assert.ok(seen.some((c) => c.type === 'updated' && c.entity.netnsInode === web.netnsInode));
    assert.ok(
      late.entities().every((e) => e.kind !== 'netns'),
      'netns entities must go once CRI answers',
    );
  } finally {
    late.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

test('churn: 50 pods created and deleted leave no leaked fds or registry entries', async () => {
  const base = reg.entities().length;
  const basePods = reg.pods().length;
  // warm up (lazy fds of the runtime client and the thread pool)
  const w = await env.runPod({ name: 'warm', namespace: 'churn' });
  await reg.refresh();
  await env.removePod(w);
  await reg.refresh();
  const fdBefore = fdCount();
  let maxSeen = 0;
  for (let round = 0; round < 5; round++) {
    const batch: TestPod[] = [];
    for (let i = 0; i < 10; i++)
      batch.push(await env.runPod({ name: `churn-${round}-${i}`, namespace: 'churn' }));
    await reg.refresh();
    maxSeen = Math.max(maxSeen, reg.pods().filter((p) => p.namespace === 'churn').length);
    for (const e of batch) assert.equal(reg.byNetns(e.netnsInode)?.pod?.uid, e.uid);
    await Promise.all(batch.map((p) => env.removePod(p)));
    await reg.refresh();
  }
  assert.equal(maxSeen, 10);
  assert.equal(reg.entities().length, base);
  assert.equal(reg.pods().length, basePods);
  assert.ok(!reg.pods().some((p) => p.namespace === 'churn'));
  const fdAfter = fdCount();
  assert.ok(fdAfter <= fdBefore + 2, `fds: ${fdBefore} before, ${fdAfter} after 50 pods`);
});
