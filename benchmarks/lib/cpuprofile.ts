// Where the time goes: self time of a V8 .cpuprofile (node --cpu-prof) by function and by area
// (podnet folder, npm package, Node internals, GC), for explaining a missed target.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** [area, ms, share] sorted by ms. */
  areas: [string, number, number][];
  /** [function @ file:line, area, ms, share]. */
  functions: [string, string, number, number][];
}

export function areaOf(url: string, fn: string): string {
  if (!url) {
    if (fn === '(garbage collector)') return 'V8 garbage collector';
    if (fn === '(idle)') return 'idle (waiting)';
    if (fn === '(program)') return 'V8/native (program)';
    return `native: ${fn || '(anonymous)'}`;
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `npm ${nm[1]}`;
  if (url.startsWith('node:')) return `Node ${url.replace(/^node:(internal\/)?/, '').split('/')[0]}`;
  const m = /\/(receiver|probes|benchmarks|test)\/([^/]+)/.exec(url);
  if (m) return `podnet ${m[1]}/${m[2]}`;
  return url;
}

/**
 * `window` = [from, to] in µs of CLOCK_MONOTONIC (`process.hrtime.bigint() / 1000n` in any process: V8's
 * profile timestamps use the same clock), to leave out start-up and shutdown.
 */
export function summarizeProfile(path: string, top = 15, window?: [number, number]): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (window && (t < window[0] || t > window[1])) continue;
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const areas = new Map<string, number>();
  const fns = new Map<string, { area: string; ms: number }>();
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    const file = url
      ? url.replace(/^file:\/\//, '').replace(/^.*?\/(node_modules|receiver|probes|benchmarks)\//, '$1/')
      : '';
    const key = `${functionName || '(anonymous)'}${file ? ` @ ${file}:${lineNumber + 1}` : ''}`;
    const f = fns.get(key) ?? { area, ms: 0 };
    f.ms += ms;
    fns.set(key, f);
  }
  // Idle time is not CPU: shares are of the busy time.
  const busy = total - (areas.get('idle (waiting)') ?? 0);
  return {
    totalMs: busy,
    areas: [...areas]
      .filter(([a]) => a !== 'idle (waiting)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([a, ms]) => [a, ms, ms / busy]),
    functions: [...fns]
      .filter(([, f]) => f.area !== 'idle (waiting)')
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, top)
      .map(([k, f]) => [k, f.area, f.ms, f.ms / busy]),
  };
}
