// The netlink probes on real pods (private containerd + CRI + CNI bridge, test/env/cri) with entities from
// the real pod discovery (EntityRegistry): TCP and UDP traffic between two pods, an nft ct rule in the
// server pod (conntrack in use there) and a tbf on the client pod's eth0; then sockets, conntrack and
// qdisc equal `ss -tanmi`/`-uanm`, `conntrack -S`/`-C` and `tc -s -j qdisc` read in the pod's netns
// (nsenter --net=/proc/<pause pid>/ns/net). Then the client pod is deleted while its entity is still in
// the list being collected: no points for it, no crash, the other pod complete.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { conntrackProbe, ENTRIES } from '../../probes/conntrack/conntrack.ts';
import { qdiscProbe } from '../../probes/qdisc/qdisc.ts';
import { M, socketsProbe } from '../../probes/sockets/sockets.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { EntityRegistry } from '../../receiver/pods/registry.ts';
import type { HistogramValue, MetricPoint, Probe, ProbeContext } from '../../receiver/probe/types.ts';
import { type CriEnv, startCriEnv, type TestPod } from '../env/cri/index.ts';
import { sh, sleep } from './env.ts';
import {
  conntrackTruth,
  conntrackValues,
  pidRun,
  qdiscTruth,
  qdiscValues,
  type Runner,
  rttStep,
  socketValues,
  sortedRows,
  ssTruth,
} from './truth.ts';

const FIXTURE = new URL('./fixtures/traffic.ts', import.meta.url).pathname;
const ctx = { log: childLogger('test'), entities: undefined as never, emit() {} } as unknown as ProbeContext;
let env: CriEnv | undefined;
let reg: EntityRegistry | undefined;
let server: TestPod;
let client: TestPod;
const children: ChildProcess[] = [];
const probes: Probe[] = [];

/** Starts the traffic fixture in a pod's netns and waits (generously) for its "ready" line. */
async function inPod(pod: TestPod, args: string[]): Promise<void> {
  const p = spawn('nsenter', [`--net=/proc/${pod.pid}/ns/net`, process.execPath, FIXTURE, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(p);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`fixture ${args.join(' ')} not ready`)), 60_000);
    let out = '';
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) {
        clearTimeout(t);
        resolve();
      }
    });
    p.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`fixture ${args.join(' ')} exited ${code}`));
    });
  });
}

function killChildren(): void {
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {}
    }
  }
}

function entityOf(pod: TestPod): Entity {
  const e = reg!.entities().find((x) => x.pod?.uid === pod.uid);
  assert.ok(e, `pod ${pod.name} not discovered`);
  assert.equal(e.netnsInode, pod.netnsInode);
  return e;
}

/**
 * Probe, tool, probe until the two probe reads agree (the pod netns was quiet across the tool's read);
 * returns [probe values, tool values]. `norm` keys the probe points as the tool values are keyed.
 */
async function quiescent<T>(
  probe: Probe,
  e: Entity,
  norm: (points: readonly MetricPoint[]) => T,
  truth: () => T,
): Promise<[T, T]> {
  // Generous (other tests load the machine): retry for up to 30 s.
  for (const end = Date.now() + 30_000; Date.now() < end; ) {
    const p1 = norm(await probe.collect([e]));
    const t = truth();
    const p2 = norm(await probe.collect([e]));
    if (JSON.stringify(p1) === JSON.stringify(p2)) return [p1, t];
    await sleep(250);
  }
  throw new Error(`pod ${e.displayName} never quiesced`);
}

before(async () => {
  env = await startCriEnv();
  server = await env.runPod({ name: 'pnl-server', namespace: 'pnl' });
  client = await env.runPod({ name: 'pnl-client', namespace: 'pnl' });
  reg = new EntityRegistry({ criEndpoint: env.endpoint, refreshIntervalMs: 60_000 });
  await reg.start();
  const run = (pod: TestPod, cmd: string, args: string[]) =>
    sh('nsenter', [`--net=/proc/${pod.pid}/ns/net`, cmd, ...args]);
  run(server, 'nft', [
    'add table inet pnlpod; add chain inet pnlpod in { type filter hook input priority 0; }; add rule inet pnlpod in ct state established,related accept',
  ]);
  run(client, 'tc', [
    'qdisc',
    'add',
    'dev',
    'eth0',
    'root',
    'tbf',
    'rate',
    '50mbit',
    'burst',
    '16kb',
    'limit',
    '64kb',
  ]);
  await inPod(server, ['server', '8080']);
  await inPod(server, ['sink', '9090', '4']);
  await inPod(client, ['client', server.ip, '8080', '3', '300000']);
  await inPod(client, ['client', server.ip, '9090', '2', '100']);
  await inPod(client, ['udp', server.ip, '9090', '50', '500']);
});

after(async () => {
  for (const p of probes) await p.close();
  killChildren();
  reg?.stop();
  const report = await env?.teardown();
  if (report) assert.deepEqual(report.leftovers, []);
});

test('real pods: sockets equal ss -tanmi / -uanm in each pod netns', async () => {
  const probe = await socketsProbe.create(ctx, socketsProbe.args.parse({}));
  probes.push(probe);
  for (const pod of [server, client]) {
    const e = entityOf(pod);
    const truth: Runner = pidRun(pod.pid);
    // RTT is cumulative per collection: compare what one collection added.
    let prev: HistogramValue | undefined;
    const norm = (points: readonly MetricPoint[]) => {
      const m = socketValues(points, e.netnsInode);
      const cum = m.get(M.rtt) as HistogramValue;
      m.set(M.rtt, rttStep(prev, cum));
      prev = cum;
      return [...m];
    };
    await probe.collect([e]).then(norm);
    const [got, want] = await quiescent(probe, e, norm, () => [...ssTruth(truth)]);
    assert.deepEqual(new Map(got), new Map(want));
    const g = new Map(got);
    if (pod === server) {
      assert.equal(g.get(`${M.connections}|listen`), 2, 'server + sink listeners');
      assert.equal(g.get(`${M.connections}|established`), 5, '3 accepted + 2 in the accept queue');
      assert.ok((g.get(M.rxQueue) as number) > 100_000, 'unread bytes queued');
      assert.ok((g.get(M.udpRx) as number) > 0, 'unread datagrams queued');
    } else {
      assert.equal(g.get(`${M.connections}|established`), 5);
      assert.ok((g.get(M.rtt) as HistogramValue).count >= 5);
    }
  }
});

test('real pods: conntrack equals conntrack -S / -C (in use in the server pod, idle in the client pod)', async () => {
  const probe = await conntrackProbe.create(ctx, conntrackProbe.args.parse({}));
  probes.push(probe);
  for (const pod of [server, client]) {
    const e = entityOf(pod);
    const [got, want] = await quiescent(
      probe,
      e,
      (p) => [...conntrackValues(p, e.netnsInode)],
      () => [...conntrackTruth(pidRun(pod.pid))],
    );
    assert.deepEqual(new Map(got), new Map(want));
    const entries = new Map(got).get(ENTRIES)!;
    if (pod === server) assert.ok(entries >= 6, `server pod conntrack entries ${entries}`);
    else assert.equal(entries, 0);
  }
});

test('real pods: qdisc equals tc -s -j qdisc (tbf on the client eth0, noqueue on the server)', async () => {
  const probe = await qdiscProbe.create(ctx, qdiscProbe.args.parse({}));
  probes.push(probe);
  for (const pod of [server, client]) {
    const e = entityOf(pod);
    const [got, want] = await quiescent(
      probe,
      e,
      (p) => sortedRows(qdiscValues(p, e.netnsInode)),
      () => sortedRows(qdiscTruth(pidRun(pod.pid))),
    );
    assert.deepEqual(got, want);
    const rows = new Map(got);
    if (pod === client) {
      const tbf = [...rows].find(([k]) => k.startsWith('eth0|tbf|') && k.endsWith('|root'));
      assert.ok(tbf && tbf[1][0]! > 300_000, `bytes through the client tbf: ${JSON.stringify(got)}`);
    } else {
      assert.ok(
        [...rows.keys()].some((k) => k.startsWith('eth0|')),
        `server eth0 qdisc: ${JSON.stringify(got)}`,
      );
    }
  }
});

test('real pods: a pod deleted while its entity is being collected gives no points and no crash', async () => {
  const s = entityOf(server);
  const c = entityOf(client);
  const list = [s, c]; // the collection's entity list, taken before the pod goes away
  const created = [
    await socketsProbe.create(ctx, socketsProbe.args.parse({})),
    await conntrackProbe.create(ctx, conntrackProbe.args.parse({})),
    await qdiscProbe.create(ctx, qdiscProbe.args.parse({})),
  ];
  probes.push(...created);
  for (const c of children) {
    // the client fixtures hold the client netns open: stop them with the pod
    if (c.spawnargs.some((a) => a === `--net=/proc/${client.pid}/ns/net`) && c.pid !== undefined) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {}
    }
  }
  await env!.removePod(client);
  for (const probe of created) {
    const points = await probe.collect(list);
    assert.equal(points.filter((p) => p.netns === c.netnsInode).length, 0, 'no series for the gone pod');
    assert.ok(
      points.some((p) => p.netns === s.netnsInode),
      'the other pod is still collected',
    );
    const st = probe.status();
    assert.notEqual(st.state, 'unavailable');
  }
  await reg!.refresh();
  assert.equal(
    reg!.entities().find((x) => x.pod?.uid === client.uid),
    undefined,
  );
});
