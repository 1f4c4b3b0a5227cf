// Where a stretch of work allocates: the inspector's sampling heap profiler with the objects the GC has
// already collected kept in the profile (what `--heap-prof` drops), summed by allocating function (self)
// and by the nearest podnet frame above it (receiver/, probes/). A diagnosis aid for the per-netns path
// (benchmarks/scale/agent.ts --alloc-sample): the figures are sampled (one sample per ~32 KiB allocated).
import { Session } from 'node:inspector/promises';

interface SampleNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly SampleNode[];
}

const PODNET = /\/(receiver|probes)\//;

function frameName(n: SampleNode): string {
  const f = n.callFrame;
  const url = f.url.replace(/^.*?\/((dist\/)?(receiver|probes|benchmarks|node_modules)\/)/, '$1');
  return `${f.functionName || '(anonymous)'} ${url}:${f.lineNumber + 1}`;
}

/**
 * Starts sampling; `stop(runs)` returns a printable summary per run (bytes divided by `runs`).
 * `minorGcCollected: false` leaves out what scavenges collected (the rest was promoted or is alive).
 */
export async function startAllocationSampling(
  opts: { intervalBytes?: number; minorGcCollected?: boolean } = {},
): Promise<{ stop: (runs: number) => Promise<string> }> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: opts.intervalBytes ?? 32 * 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: opts.minorGcCollected ?? true,
  });
  return {
    async stop(runs: number): Promise<string> {
      const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
        profile: { head: SampleNode };
      };
      session.disconnect();
      const self = new Map<string, number>();
      const owner = new Map<string, number>();
      let total = 0;
      const walk = (n: SampleNode, podnet: string | undefined): void => {
        const name = frameName(n);
        const here = PODNET.test(n.callFrame.url) ? name : podnet;
        if (n.selfSize > 0) {
          total += n.selfSize;
          self.set(name, (self.get(name) ?? 0) + n.selfSize);
          const o = here ?? '(no podnet frame)';
          owner.set(o, (owner.get(o) ?? 0) + n.selfSize);
        }
        for (const c of n.children) walk(c, here);
      };
      walk(profile.head, undefined);
      const mb = (b: number): string => (b / runs / 2 ** 20).toFixed(2);
      const top = (m: Map<string, number>): string =>
        [...m]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 25)
          .map(([k, v]) => `    ${mb(v).padStart(6)} MB  ${k}`)
          .join('\n');
      return [
        `  allocations sampled per collection: ${mb(total)} MB`,
        '  by allocating function (self):',
        top(self),
        '  by nearest podnet frame:',
        top(owner),
      ].join('\n');
    },
  };
}
