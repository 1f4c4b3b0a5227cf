// Start podnet as a separate process for a benchmark (its CPU and memory are then its own, read from
// /proc/<pid>), on a free loopback port, with a config written to a temp file; read /status and
// /metrics; stop it with SIGTERM (as an operator would).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startForm } from './as-started.ts';
import { sleep } from './stats.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = join(ROOT, 'receiver/cli/main.ts');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface PodnetOptions {
  /** The YAML config as an object; server.address is set here. */
  readonly config: Record<string, unknown>;
  readonly withSynthetic?: boolean;
  /** Entities = host + named netns with this prefix (benchmarks/lib/podnet-child.ts). */
  readonly netnsPrefix?: string;
  /** Entities = the host only. */
  readonly hostOnly?: boolean;
  readonly env?: Record<string, string>;
  /** Wait until this many collections are done (default 1). */
  readonly collections?: number;
  readonly startTimeoutMs?: number;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=DIR']. */
  readonly nodeArgs?: readonly string[];
  /** Another podnet checkout to run (a worktree of a baseline commit, for same-run A/B); default this one. */
  readonly root?: string;
  /** Run podnet as the checkout's `npm start` does (its node flags, compiled dist/ when it has one: as-started.ts). */
  readonly asStarted?: boolean;
  /** Keep podnet's stdout in this file (e.g. node --trace-deopt/--trace-opt/--trace-gc output); default dropped. */
  readonly stdoutFile?: string;
}

export interface PodnetProc {
  readonly pid: number;
  readonly url: string;
  /** The command line, for RESULTS.md. */
  readonly command: string;
  // biome-ignore lint/suspicious/noExplicitAny: /status is dynamic JSON.
  status(): Promise<any>;
  /**
   * The collection count, from `/status?entities=0` (no entity list: cheap to poll at 1,000 netns; a
   * checkout without the option answers the full view, same field). Throws unless it is a number.
   */
  collections(): Promise<number>;
  metrics(): Promise<{ text: string; ms: number }>;
  waitCollections(n: number, timeoutMs?: number): Promise<void>;
  /** Rewrite the config file (podnet hot-reloads it about 0.5 s after the write); resolves once /status shows the reload. */
  reload(config: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
  /** Last lines of podnet's stderr (logs). */
  logTail(): string;
  /** podnet-child only: process.memoryUsage() of podnet (asked with SIGUSR2). */
  memoryUsage(): Promise<NodeJS.MemoryUsage>;
}

export async function startPodnet(o: PodnetOptions): Promise<PodnetProc> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pnk-podnet-'));
  const configPath = join(dir, 'podnet.yaml');
  const server = { ...((o.config['server'] as object | undefined) ?? {}), address: `127.0.0.1:${port}` };
  writeFileSync(configPath, stringify({ ...o.config, server }));
  const filtered = o.netnsPrefix !== undefined || o.hostOnly;
  const root = o.root ? `${o.root.replace(/\/+$/, '')}/` : ROOT;
  const form = o.asStarted ? startForm(root) : undefined;
  const args = filtered
    ? [
        form?.child ?? join(root, 'benchmarks/lib/podnet-child.ts'),
        '--config',
        configPath,
        ...(o.netnsPrefix !== undefined ? ['--netns-prefix', o.netnsPrefix] : ['--host-only']),
      ]
    : [form?.cli ?? join(root, 'receiver/cli/main.ts'), 'run', '--config', configPath];
  if (o.withSynthetic) args.push('--with-synthetic');
  const logPath = join(dir, 'podnet.log');
  const memPath = join(dir, 'memory.json');
  const logFd = openSync(logPath, 'a');
  const child: ChildProcess = spawn(
    process.execPath,
    [...(form?.nodeArgs ?? []), ...(o.nodeArgs ?? []), ...args],
    {
      stdio: ['ignore', o.stdoutFile ? openSync(o.stdoutFile, 'a') : 'ignore', logFd],
      env: {
        ...process.env,
        ...(form?.env ?? {}),
        PODNET_LOG_LEVEL: 'warn',
        PNK_MEMORY_FILE: memPath,
        ...(o.env ?? {}),
      },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const tail = (): string => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '';
    }
  };
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const proc: PodnetProc = {
    pid: child.pid!,
    url,
    command: `${Object.entries(form?.env ?? {})
      .map(([k, v]) => `${k}=${v} `)
      .join('')}node ${[...(form?.nodeArgs ?? []), ...args].map((a) => a.replace(root, '')).join(' ')}`,
    status: async () => (await fetch(`${url}/status`)).json(),
    collections: async () => {
      const res = await fetch(`${url}/status?entities=0`);
      const c = ((await res.json()) as { collections?: unknown }).collections;
      if (!res.ok || typeof c !== 'number')
        throw new Error(`/status?entities=0: ${res.status}, collections ${c}`);
      return c;
    },
    metrics: async () => {
      const t0 = performance.now();
      const res = await fetch(`${url}/metrics`);
      const text = await res.text();
      return { text, ms: performance.now() - t0 };
    },
    waitCollections: async (n, timeoutMs = 120_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (exited) throw new Error(`podnet exited during start:\n${tail()}`);
        try {
          if ((await proc.collections()) >= n) return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline)
          throw new Error(`podnet: no ${n} collections in ${timeoutMs} ms:\n${tail()}`);
        await sleep(100);
      }
    },
    reload: async (config) => {
      const before = (await proc.status()).config?.reloadsApplied ?? 0;
      writeFileSync(configPath, stringify({ ...config, server }));
      const deadline = Date.now() + 10_000;
      while ((await proc.status()).config?.reloadsApplied === before) {
        if (Date.now() > deadline) throw new Error(`podnet did not apply the reload:\n${tail()}`);
        await sleep(50);
      }
    },
    stop: async () => {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await gone;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
    logTail: tail,
    memoryUsage: async () => {
      rmSync(memPath, { force: true });
      child.kill('SIGUSR2');
      for (let i = 0; i < 100; i++) {
        try {
          return JSON.parse(readFileSync(memPath, 'utf8')) as NodeJS.MemoryUsage;
        } catch {
          await sleep(20);
        }
      }
      throw new Error('podnet did not report its memory usage (SIGUSR2; podnet-child only)');
    },
  };
  try {
    await proc.waitCollections(o.collections ?? 1, o.startTimeoutMs ?? 120_000);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return proc;
}

/** Sum of a Prometheus counter/gauge family in exposition text (optionally filtered by a label substring). */
export function promSum(text: string, name: string, labelFilter?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (labelFilter && !line.includes(labelFilter)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}
