// process probe against /proc/<pid>/io, /proc/<pid>/fd and `ip netns pids`, for processes this test
// starts inside a test netns (match by netns), in a cgroup v1 hierarchy and in the cgroup v2 hierarchy
// (match by the pod's cgroup parent); counters survive a process exit; the host is off by default.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { PROCESS_METRICS, processProbe } from '../../probes/process/process.ts';
import { hostNetnsInode } from '../../receiver/netns/setns.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricPoint } from '../../receiver/probe/types.ts';
import {
  namedEntity,
  nsA,
  pidEntity,
  probeContext,
  procIo,
  setupNetns,
  sh,
  sleep,
  stableRead,
  startWorker,
  stopWorker,
  tag,
  teardownNetns,
  type Worker,
} from './env.ts';

const workers: Worker[] = [];
const CG_V1 = `/sys/fs/cgroup/memory/${tag}`;
const CG_V2 = `/sys/fs/cgroup/unified/${tag}v2`;

before(async () => {
  setupNetns();
  workers.push(await startWorker(nsA, 0), await startWorker(nsA, 1));
});
after(async () => {
  for (const w of workers) stopWorker(w);
  await sleep(200);
  for (const d of [CG_V1, CG_V2]) {
    try {
      rmdirSync(d);
    } catch {
      // not created / already gone
    }
  }
  teardownNetns();
});

interface Truth {
  count: number;
  fds: number;
  sockets: number;
  io: Record<string, number>;
}

/** Independent reading: pids from `ip netns pids` (or given), fds by `ls`, sockets by readlink. */
function truthFor(pids: readonly number[]): Truth {
  const io: Record<string, number> = {
    rchar: 0,
    wchar: 0,
    syscr: 0,
    syscw: 0,
    read_bytes: 0,
    write_bytes: 0,
  };
  let fds = 0;
  const sockets = new Set<string>();
  for (const pid of pids) {
    const one = procIo(pid);
    for (const k of Object.keys(io)) io[k]! += one[k]!;
    const names = sh('ls', ['-1', `/proc/${pid}/fd`])
      .trim()
      .split('\n')
      .filter(Boolean);
    fds += names.length;
    for (const n of names) {
      try {
        const t = readlinkSync(`/proc/${pid}/fd/${n}`);
        if (t.startsWith('socket:')) sockets.add(t);
      } catch {
        // the ls's own fd
      }
    }
  }
  return { count: pids.length, fds, sockets: sockets.size, io };
}

function netnsPids(ns: string): number[] {
  return sh('ip', ['netns', 'pids', ns]).trim().split('\n').filter(Boolean).map(Number).sort();
}

function summarize(points: readonly MetricPoint[], netns: number): Truth {
  const v = (m: string, k?: string, val?: string): number => {
    const p = points.find(
      (x) => x.metric === m && x.netns === netns && (k === undefined || x.attributes?.[k] === val),
    );
    assert.ok(p, `${m} ${val ?? ''} missing`);
    return p.value as number;
  };
  return {
    count: v('podnet.process.instances'),
    fds: v('podnet.process.file_descriptors'),
    sockets: v('podnet.process.sockets'),
    io: {
      rchar: v('podnet.process.io.chars', 'podnet.io.operation', 'read'),
      wchar: v('podnet.process.io.chars', 'podnet.io.operation', 'write'),
      syscr: v('podnet.process.io.syscalls', 'podnet.io.operation', 'read'),
      syscw: v('podnet.process.io.syscalls', 'podnet.io.operation', 'write'),
      read_bytes: v('podnet.process.disk.io', 'disk.io.direction', 'read'),
      write_bytes: v('podnet.process.disk.io', 'disk.io.direction', 'write'),
    },
  };
}

function podEntity(base: Entity, cgroupParent: string): Entity {
  return {
    ...base,
    kind: 'pod',
    displayName: `test/${cgroupParent}`,
    pod: {
      uid: `uid-${cgroupParent}`,
      name: 'p',
      namespace: 'test',
      labels: {},
      ips: [],
      sandboxId: 'sb',
      hostNetwork: false,
      cgroupParent,
    },
  };
}

test('process (netns match) equals /proc/<pid>/io, fd tables and ip netns pids; survives an exit', async () => {
  const probe = await processProbe.create(probeContext(), processProbe.args.parse({}));
  for (const entity of [namedEntity(nsA), pidEntity(nsA, workers[0]!.pid)]) {
    const [truth, points] = await stableRead(
      () => truthFor(netnsPids(nsA)),
      () => probe.collect([entity]),
    );
    assert.equal(truth.count, 2, 'the two workers live in the netns');
    assert.ok(truth.sockets >= 8 && truth.fds > truth.sockets, 'workers hold sockets (one of them dup()ed)');
    assert.ok((truth.io.write_bytes ?? 0) >= 1 << 20, 'worker wrote 1 MiB and fsync()ed');
    assert.deepEqual(summarize(points, entity.netnsInode), truth, entity.displayName);
    for (const p of points) {
      const d = PROCESS_METRICS.find((m) => m.name === p.metric);
      assert.ok(d);
      for (const k of Object.keys(p.attributes ?? {})) assert.ok(d.attributes.includes(k));
    }
  }
  // Kill worker 1: the counters keep its last values (no drop), the gauges follow the live processes.
  const entity = namedEntity(nsA);
  const [beforeTruth, beforePoints] = await stableRead(
    () => truthFor(netnsPids(nsA)),
    () => probe.collect([entity]),
  );
  const goneIo = procIo(workers[1]!.pid);
  stopWorker(workers[1]);
  for (let i = 0; i < 50 && netnsPids(nsA).length > 1; i++) await sleep(50);
  const [afterTruth, afterPoints] = await stableRead(
    () => truthFor(netnsPids(nsA)),
    () => probe.collect([entity]),
  );
  const b = summarize(beforePoints, entity.netnsInode);
  const a = summarize(afterPoints, entity.netnsInode);
  assert.equal(a.count, 1);
  assert.equal(a.fds, afterTruth.fds);
  assert.equal(a.sockets, afterTruth.sockets);
  for (const [k, v] of Object.entries(afterTruth.io)) {
    assert.equal(a.io[k], v + goneIo[k]!, `${k}: live + last seen of the exited process`);
    assert.ok(a.io[k]! >= b.io[k]!, `${k} monotonic`);
  }
  assert.deepEqual(b, beforeTruth);
});

test('process (cgroup match): pod cgroup parent in a cgroup v1 hierarchy and in cgroup v2', async () => {
  const probe = await processProbe.create(probeContext(), processProbe.args.parse({}));
  const cases = [
    { dir: CG_V1, parent: `/${tag}` },
    { dir: CG_V2, parent: `/${tag}v2` },
  ];
  for (const c of cases) {
    const w = await startWorker(nsA, workers.length);
    workers.push(w);
    mkdirSync(c.dir, { recursive: true });
    mkdirSync(`${c.dir}/ctr`, { recursive: true });
    writeFileSync(`${c.dir}/ctr/cgroup.procs`, String(w.pid));
    assert.ok(readdirSync(c.dir).includes('ctr'));
    const entity = podEntity(namedEntity(nsA), c.parent);
    const [truth, points] = await stableRead(
      () => truthFor([w.pid]),
      () => probe.collect([entity]),
    );
    // Only the cgroup's process, although the netns holds others too.
    assert.ok(netnsPids(nsA).length > 1);
    assert.deepEqual(summarize(points, entity.netnsInode), truth, c.dir);
    stopWorker(w);
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(`${c.dir}/ctr`);
        rmdirSync(c.dir);
        break;
      } catch {
        await sleep(50);
      }
    }
  }
  // match: auto with a cgroup parent that exists in no hierarchy falls back to the netns match.
  const auto = await processProbe.create(probeContext(), processProbe.args.parse({}));
  const elsewhere = podEntity(namedEntity(nsA), `/${tag}-not-on-this-host`);
  const [truth, points] = await stableRead(
    () => truthFor(netnsPids(nsA)),
    () => auto.collect([elsewhere]),
  );
  assert.deepEqual(summarize(points, elsewhere.netnsInode), truth, 'auto: netns fallback');
  // match: cgroup with an unknown cgroup is a failure for that entity, not a crash.
  const strict = await processProbe.create(probeContext(), processProbe.args.parse({ match: 'cgroup' }));
  const missing = podEntity(namedEntity(nsA), `/${tag}-nope`);
  assert.deepEqual(await strict.collect([missing]), []);
  assert.equal((strict.status().details as { failedEntities: number }).failedEntities, 1);
  assert.equal(strict.status().state, 'degraded', 'every entity failed');
  assert.match(strict.status().reason ?? '', /not found/);
});

test('process: host entity off by default, on with host: true', async () => {
  const host: Entity = {
    kind: 'host',
    netnsInode: hostNetnsInode,
    netnsPath: '/proc/self/ns/net',
    displayName: 'host',
  };
  const off = await processProbe.create(probeContext(), processProbe.args.parse({}));
  assert.deepEqual(await off.collect([host]), []);
  const on = await processProbe.create(probeContext(), processProbe.args.parse({ host: true }));
  const points = await on.collect([host]);
  const count = points.find((p) => p.metric === 'podnet.process.instances')?.value as number;
  assert.ok(count >= 1, 'at least this test process');
});
