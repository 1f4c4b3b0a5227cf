// Shared pieces of the latency probe tests: a ProbeContext over a StaticEntitySource that collects
// events, the line-driven test app (fixtures/app.ts) started inside a test netns, and point helpers.
import type { ChildProcess } from 'node:child_process';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { HistogramValue, MetricPoint, ProbeContext, ProbeEvent } from '../../receiver/probe/types.ts';
import type { NetnsPair, NetnsSide } from '../env/netns.ts';

const NODE = process.execPath;
const APP = new URL('./fixtures/app.ts', import.meta.url).pathname;

export interface TestContext extends ProbeContext {
  readonly events: ProbeEvent[];
  readonly source: StaticEntitySource;
}

export function testContext(entities: readonly Entity[]): TestContext {
  const events: ProbeEvent[] = [];
  const source = new StaticEntitySource(entities);
  return {
    log: childLogger('test-latency'),
    entities: source,
    events,
    source,
    emit: (e) => void events.push(e),
  };
}

export function sideEntity(side: NetnsSide): Entity {
  return {
    kind: 'netns',
    netnsInode: side.inode,
    netnsPath: side.path,
    netnsName: side.name,
    displayName: side.name,
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() > end) return cond();
    await sleep(20);
  }
}

/** The test app (fixtures/app.ts) in a netns, driven by lines. */
export class App {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  #waiters: { re: RegExp; from: number; resolve: (l: string) => void }[] = [];

  /**
   * `realtime`: run the app at SCHED_FIFO priority 1 (chrt execs in place: the pid is still the app's), so
   * its wakeups preempt ordinary tasks: for a test whose app must keep up on a machine busy with others.
   */
  constructor(side: NetnsSide, args: readonly string[], opts: { realtime?: boolean } = {}) {
    const cmd = opts.realtime ? ['chrt', '-f', '1', NODE] : [NODE];
    this.proc = side.spawn(cmd[0]!, [...cmd.slice(1), APP, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    this.proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      this.#check();
    });
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((w) => {
      const l = this.lines.slice(w.from).find((x) => w.re.test(x));
      if (l === undefined) return true;
      w.resolve(l);
      return false;
    });
  }

  /** Resolves with the first line matching `re` printed after line index `from` (default: from now). */
  waitLine(re: RegExp, timeoutMs = 10000, from = this.lines.length): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`no line ${re} within ${timeoutMs} ms: ${this.lines.join(' | ')}`)),
        timeoutMs,
      );
      this.#waiters.push({
        re,
        from,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
      this.#check();
    });
  }

  /** Sends a command; resolves with the answer line matching `answer`, if given. */
  async cmd(line: string, answer?: RegExp, timeoutMs?: number): Promise<string> {
    const from = this.lines.length;
    this.proc.stdin?.write(`${line}\n`);
    return answer ? this.waitLine(answer, timeoutMs, from) : '';
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.pid !== undefined) {
      try {
        process.kill(this.proc.pid, 'SIGKILL');
      } catch {}
    }
  }
}

export function histPoint(
  points: readonly MetricPoint[],
  metric: string,
  netns: number | undefined,
  match: Record<string, string | number> = {},
): HistogramValue | undefined {
  const p = points.find(
    (x) =>
      x.metric === metric &&
      x.netns === netns &&
      Object.entries(match).every(([k, v]) => x.attributes?.[k] === v) &&
      typeof x.value === 'object',
  );
  return p?.value as HistogramValue | undefined;
}

export function counterPoint(
  points: readonly MetricPoint[],
  metric: string,
  netns: number | undefined,
  match: Record<string, string | number> = {},
): number {
  let s = 0;
  for (const p of points) {
    if (p.metric !== metric || p.netns !== netns || typeof p.value !== 'number') continue;
    if (Object.entries(match).every(([k, v]) => p.attributes?.[k] === v)) s += p.value;
  }
  return s;
}

/** Count of a histogram's observations in buckets whose lower bound is ≥ `seconds`. */
export function countAtLeast(h: HistogramValue, seconds: number): number {
  let n = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const lower = i === 0 ? 0 : h.boundaries[i - 1]!;
    if (lower >= seconds) n += h.counts[i]!;
  }
  return n;
}

/** Count in buckets whose upper bound is ≤ `seconds`. */
export function countAtMost(h: HistogramValue, seconds: number): number {
  let n = 0;
  for (let i = 0; i < h.boundaries.length; i++) if (h.boundaries[i]! <= seconds) n += h.counts[i]!;
  return n;
}

/** Difference of two histograms of the same series (later − earlier). */
export function histDelta(
  later: HistogramValue | undefined,
  earlier: HistogramValue | undefined,
): HistogramValue {
  if (!later) throw new Error('no histogram');
  if (!earlier) return later;
  return {
    boundaries: later.boundaries,
    counts: later.counts.map((c, i) => c - (earlier.counts[i] ?? 0)),
    sum: later.sum - earlier.sum,
    count: later.count - earlier.count,
  };
}

/**
 * A TCP connection a → b on `port` (the app's server in b, its client in a), both ready and the server
 * reading; both apps are pushed on `apps` for the test's cleanup.
 */
export async function tcpPair(
  pair: NetnsPair,
  apps: App[],
  port: number,
): Promise<{ server: App; client: App }> {
  const server = new App(pair.b, ['server', String(port)]);
  apps.push(server);
  await server.waitLine(/^ready/);
  const client = new App(pair.a, ['client', pair.b.ipv4, String(port)]);
  apps.push(client);
  await client.waitLine(/^ready/);
  await server.waitLine(/^accepted/, 5000, 0);
  await server.cmd('read');
  return { server, client };
}
