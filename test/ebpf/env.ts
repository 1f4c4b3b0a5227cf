// Shared pieces of the eBPF probe tests: a ProbeContext over a StaticEntitySource that collects emitted
// events, netns pairs named `pna<pid><tag>`, kernel MIB counters (nstat) and polling helpers.
import { execFileSync } from 'node:child_process';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import type { MetricPoint, ProbeContext, ProbeEvent } from '../../receiver/probe/types.ts';
import type { NetnsSide } from '../env/netns.ts';

export interface TestContext extends ProbeContext {
  readonly events: ProbeEvent[];
  readonly source: StaticEntitySource;
}

export function testContext(entities: readonly Entity[] = []): TestContext {
  const events: ProbeEvent[] = [];
  const source = new StaticEntitySource(entities);
  return {
    log: childLogger('test-ebpf'),
    entities: source,
    events,
    source,
    emit: (e) => {
      events.push(e);
    },
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

/** Polls `cond` every 20 ms until true or `timeoutMs` (generous: other tests load the machine); returns the last result. */
export async function waitFor(cond: () => boolean, timeoutMs = 30_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() > end) return cond();
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** All MIB counters of a netns (`nstat -az`, absolute values, no history file touched). */
export function nstat(ns: string): Map<string, number> {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'nstat', '-a', '-z', '-j', '--ignore'], {
    encoding: 'utf8',
  });
  const j = JSON.parse(out) as { kernel: Record<string, number> };
  return new Map(Object.entries(j.kernel));
}

/** Sum of the points of `metric` for `netns` whose attributes include `match`. */
export function sumPoints(
  points: readonly MetricPoint[],
  metric: string,
  netns: number,
  match: Record<string, string | number> = {},
): number {
  let s = 0;
  for (const p of points) {
    if (p.metric !== metric || p.netns !== netns) continue;
    if (!Object.entries(match).every(([k, v]) => p.attributes?.[k] === v)) continue;
    s += typeof p.value === 'number' ? p.value : 0;
  }
  return s;
}

export function selfPoint(points: readonly MetricPoint[], metric: string): number {
  const p = points.find((x) => x.metric === metric);
  return typeof p?.value === 'number' ? p.value : Number.NaN;
}

const TCP_FIXTURE = new URL('./fixtures/traffic.ts', import.meta.url).pathname;

/** Runs the TCP fixture in `side` until its first JSON line; returns it and the child (still running). */
export async function tcpFixture(
  side: NetnsSide,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ result: Record<string, unknown>; child: import('node:child_process').ChildProcess }> {
  const child = side.spawn(process.execPath, [TCP_FIXTURE, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const result = await firstJsonLine(child, `tcp fixture ${args.join(' ')}`, timeoutMs);
  return { result, child };
}

/** The first stdout line of a fixture that keeps running, as JSON; rejects if it exits or times out first. */
export function firstJsonLine(
  child: import('node:child_process').ChildProcess,
  what: string,
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`${what}: timeout`)), timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(t);
      if (!buf.includes('\n')) reject(new Error(`${what} exited ${code}`));
    });
  });
}

/** Kills a child by its pid (only processes the test started). */
export function killChild(child: import('node:child_process').ChildProcess | undefined): void {
  if (child?.pid !== undefined && child.exitCode === null) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {}
  }
}

/** Every event is declared by the spec: its name, its type, and every attribute key it carries. */
export function assertDeclared(
  spec: {
    readonly events: readonly { name: string; types: readonly string[]; attributes: readonly string[] }[];
  },
  events: readonly ProbeEvent[],
): void {
  for (const e of events) {
    const def = spec.events.find((d) => d.name === e.name);
    if (!def) throw new Error(`event ${e.name} is not declared`);
    if (!def.types.includes(e.type)) throw new Error(`event ${e.name}: type ${e.type} is not declared`);
    for (const k of Object.keys(e.attributes)) {
      if (!def.attributes.includes(k)) throw new Error(`event ${e.name}: attribute ${k} is not declared`);
    }
  }
}
