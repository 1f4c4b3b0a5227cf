// Time and memory of a pod-discovery refresh at N real pods (default 100) on a private containerd.
//   node --expose-gc benchmarks/pods/refresh.ts [--pods 100] [--rounds 50] [--json]
// Prints: cold refresh (new registry: connect + ListPodSandbox + N × PodSandboxStatus(verbose)), warm
// refresh (steady state: ListPodSandbox + one readlink per pod), heap and RSS held by the registry, and
// the refresh after all pods are deleted. Exits 1 (and prints no figure as a result) when a refresh sees the
// wrong pods or the test containerd leaves something behind.
import { parseArgs } from 'node:util';
import type { TestPod } from '../../test/env/cri/index.ts';
import { finish } from '../lib/finish.ts';

process.env['PODNET_LOG_LEVEL'] ??= 'warn';
const { EntityRegistry } = await import('../../receiver/pods/registry.ts');
const { startCriEnv } = await import('../../test/env/cri/index.ts');

const { values } = parseArgs({
  options: {
    pods: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '50' },
    json: { type: 'boolean', default: false },
  },
});
const nPods = Number(values.pods);
const rounds = Number(values.rounds);
if (!Number.isInteger(nPods) || nPods < 1 || nPods > 230) throw new Error('--pods must be 1..230');
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');

function stats(xs: number[]): { p50: number; p95: number; max: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  const r = (x: number): number => Math.round(x * 100) / 100;
  return {
    p50: r(at(0.5)),
    p95: r(at(0.95)),
    max: r(s[s.length - 1] ?? Number.NaN),
    mean: r(s.reduce((a, b) => a + b, 0) / s.length),
  };
}

const gcFn = (globalThis as { gc?: () => void }).gc;
if (!gcFn) throw new Error('run with node --expose-gc (the heap figures are taken after gc())');
const gc: () => void = gcFn;
const mb = (b: number): number => Math.round((b / 1024 / 1024) * 100) / 100;

const env = await startCriEnv();
const failures: string[] = [];
let figures = '';
try {
  const t0 = performance.now();
  const pods: TestPod[] = [];
  // 4 in flight keeps the 2-vCPU machine busy without timeouts
  for (let i = 0; i < nPods; i += 4) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(4, nPods - i) }, (_, j) =>
        env.runPod({ name: `bench-${i + j}`, namespace: 'bench', labels: { app: `a${(i + j) % 7}` } }),
      ),
    );
    pods.push(...batch);
  }
  const createMs = performance.now() - t0;

  const cold: number[] = [];
  for (let i = 0; i < Math.min(rounds, 10); i++) {
    const r = new EntityRegistry({ criEndpoint: env.endpoint, labels: { allow: ['app'] } });
    const t = performance.now();
    await r.refresh();
    cold.push(performance.now() - t);
    if (r.pods().length !== nPods)
      failures.push(`cold refresh saw ${r.pods().length} pods, expected ${nPods}`);
    r.stop();
  }

  const settle = async (): Promise<number> => {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 50));
      gc();
    }
    return process.memoryUsage().heapUsed;
  };
  // heap held by one registry with N pods: heap with it minus heap after dropping it
  let probe: InstanceType<typeof EntityRegistry> | undefined = new EntityRegistry({
    criEndpoint: env.endpoint,
    labels: { allow: ['app'] },
  });
  await probe.refresh();
  const heapWith = await settle();
  probe.stop();
  probe = undefined;
  const heapWithout = await settle();
  const heapHeld = heapWith - heapWithout;

  const heap0 = await settle();
  const rss0 = process.memoryUsage().rss;
  const reg = new EntityRegistry({ criEndpoint: env.endpoint, labels: { allow: ['app'] } });
  await reg.refresh();
  const warm: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    await reg.refresh();
    warm.push(performance.now() - t);
  }
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < rounds; i++) await reg.refresh();
  const cpu = process.cpuUsage(cpu0);
  const heapAfterRounds = (await settle()) - heap0;
  const rssDelta = process.memoryUsage().rss - rss0;
  if (reg.entities().length !== nPods + 1)
    failures.push(`expected ${nPods + 1} entities, got ${reg.entities().length}`);

  const t1 = performance.now();
  for (let i = 0; i < pods.length; i += 8)
    await Promise.all(pods.slice(i, i + 8).map((p) => env.removePod(p)));
  const removeMs = performance.now() - t1;
  const t2 = performance.now();
  await reg.refresh();
  const emptyRefreshMs = performance.now() - t2;
  if (reg.entities().length !== 1)
    failures.push(`expected only the host after deletion, got ${reg.entities().length}`);
  reg.stop();

  const result = {
    pods: nPods,
    rounds,
    createPodsMs: Math.round(createMs),
    removePodsMs: Math.round(removeMs),
    coldRefreshMs: stats(cold),
    warmRefreshMs: stats(warm),
    warmRefreshCpuMsPerRefresh: Math.round(((cpu.user + cpu.system) / 1000 / rounds) * 100) / 100,
    registryHeapMB: mb(heapHeld),
    heapGrowthAfterRoundsMB: mb(heapAfterRounds),
    rssDeltaMB: mb(rssDelta),
    refreshAfterDeleteAllMs: Math.round(emptyRefreshMs * 100) / 100,
  };
  figures = values.json ? JSON.stringify(result) : JSON.stringify(result, null, 2);
} finally {
  const rep = await env.teardown();
  if (rep.leftovers.length > 0) failures.push(`teardown leftovers: ${JSON.stringify(rep.leftovers)}`);
}
finish(figures, failures);
