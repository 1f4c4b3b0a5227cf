// Helpers for the reliability tests and benchmarks: `podnet run` as a child process (optionally inside a
// netns), and what the kernel says about that process: open fds, RSS, the BPF programs, maps and links it
// holds (from /proc/<pid>/fdinfo), map entry counts (bpftool), and the programs still loaded system-wide.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const NODE = join(ROOT, 'node_modules/.bin/node');
export const MAIN = join(ROOT, 'receiver/cli/main.ts');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * fetch for idempotent GETs that retries a request the server never answered because the keep-alive
 * connection it went out on was closed at that moment (ECONNRESET / socket closed). On a machine loaded
 * well past its cores the client's and the server's keep-alive clocks drift apart by seconds and this
 * race shows up; anything else (HTTP errors, refused connections, timeouts) is not retried.
 */
export async function fetchRetry(url: string, init: RequestInit = {}, attempts = 3): Promise<Response> {
  for (let i = 1; ; i++) {
    try {
      return await fetch(url, init);
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      const reset = cause?.code === 'ECONNRESET' || cause?.code === 'UND_ERR_SOCKET';
      if (!reset || i >= attempts) throw err;
    }
  }
}

export interface StartOptions {
  /** Extra environment (merged over process.env minus OTEL_* and CONTAINER_RUNTIME_ENDPOINT). */
  readonly env?: NodeJS.ProcessEnv;
  /** Run inside this named netns (`ip netns exec`). */
  readonly netns?: string;
  readonly withSynthetic?: boolean;
  /** Wait for the "local server listening" log line (default true). */
  readonly waitForServer?: boolean;
  /** Run under `setpriv` with these arguments before node (e.g. capability sets). */
  readonly setpriv?: readonly string[];
  readonly timeoutMs?: number;
}

/** A `podnet run` child process; its config file lives in `dir` (rewrite it to hot-reload). */
export class PodnetProcess {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly configPath: string;
  stderr = '';
  stdout = '';
  private constructor(child: ChildProcess, dir: string, configPath: string) {
    this.child = child;
    this.dir = dir;
    this.configPath = configPath;
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 4_000_000) this.stderr = this.stderr.slice(-2_000_000);
    });
    child.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      if (this.stdout.length > 4_000_000) this.stdout = this.stdout.slice(-2_000_000);
    });
  }

  /** The node process's pid (not `ip netns exec`'s: that one execs node, so it is the same pid). */
  get pid(): number {
    return this.child.pid!;
  }

  /** Server URLs logged so far ("local server listening"), oldest first. */
  get urls(): string[] {
    return [...this.stderr.matchAll(/"url":"(https?:\/\/[^"]+)","msg":"local server listening"/g)].map(
      (m) => m[1]!,
    );
  }

  get url(): string {
    const u = this.urls;
    return u[u.length - 1] ?? '';
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  static async start(yaml: string, o: StartOptions = {}): Promise<PodnetProcess> {
    const dir = mkdtempSync(join(tmpdir(), `pnr${process.pid}-run-`));
    const configPath = join(dir, 'podnet.yaml');
    writeFileSync(configPath, yaml);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env))
      if (!k.startsWith('OTEL_') && k !== 'CONTAINER_RUNTIME_ENDPOINT') env[k] = v;
    Object.assign(env, { PODNET_LOG_LEVEL: 'info' }, o.env ?? {});
    let argv = [
      NODE,
      MAIN,
      'run',
      ...(o.withSynthetic !== false ? ['--with-synthetic'] : []),
      '--config',
      configPath,
    ];
    if (o.setpriv) argv = ['setpriv', ...o.setpriv, ...argv];
    if (o.netns) argv = ['ip', 'netns', 'exec', o.netns, ...argv];
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new PodnetProcess(child, dir, configPath);
    if (o.waitForServer !== false) await p.waitForLog(/"msg":"podnet running"/, o.timeoutMs ?? 60_000);
    return p;
  }

  /** Wait until the log (stderr) matches; throws when the process exits first or on timeout. */
  async waitForLog(re: RegExp, timeoutMs = 30_000, from = 0): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.stderr.slice(from));
      if (m) return m;
      if (this.exited) throw new Error(`podnet exited (${this.child.exitCode}) before ${re}: ${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}: ${this.tail()}`);
      await sleep(50);
    }
  }

  tail(n = 3000): string {
    return this.stderr.slice(-n);
  }

  /** Count of log lines matching re. */
  count(re: RegExp): number {
    return this.stderr.split('\n').filter((l) => re.test(l)).length;
  }

  async status<T = Record<string, unknown>>(init: RequestInit = {}): Promise<T> {
    const r = await fetchRetry(`${this.url}/status`, init);
    if (!r.ok) throw new Error(`/status: HTTP ${r.status}`);
    return (await r.json()) as T;
  }

  /** Atomic replace (write + rename), so the watcher never reads a half-written file. */
  rewriteConfig(yaml: string): void {
    const tmp = `${this.configPath}.tmp`;
    writeFileSync(tmp, yaml);
    renameSync(tmp, this.configPath);
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.exited) process.kill(this.pid, sig);
  }

  /** Resolves with { code, signal } when the process exits; SIGKILL after timeoutMs. */
  async waitExit(timeoutMs = 30_000): Promise<{ code: number | null; signal: string | null }> {
    if (!this.exited) {
      const done = new Promise<void>((r) => this.child.once('exit', () => r()));
      const t = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
      await done;
      clearTimeout(t);
    }
    return { code: this.child.exitCode, signal: this.child.signalCode };
  }

  /** SIGTERM, wait, remove the temp dir. */
  async stop(): Promise<{ code: number | null; signal: string | null }> {
    this.signal('SIGTERM');
    const r = await this.waitExit(30_000);
    rmSync(this.dir, { recursive: true, force: true });
    return r;
  }
}

// ---------------------------------------------------------------------------------------------------------
// What the kernel says about a process

export interface BpfHeld {
  /** BPF program ids held through fds (prog fds and link fds' prog_id). */
  readonly progIds: number[];
  readonly mapIds: number[];
  readonly linkIds: number[];
  /** Number of fds of each kind (an fd may be counted once even if two fds point at the same object). */
  readonly progFds: number;
  readonly mapFds: number;
  readonly linkFds: number;
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** fd targets grouped by kind (`socket`, `anon_inode:bpf-map`, `pipe`, files by path prefix). */
export function fdKinds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let t: string;
    try {
      t = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const k = t.startsWith('socket:')
      ? 'socket'
      : t.startsWith('pipe:')
        ? 'pipe'
        : t.startsWith('anon_inode:')
          ? t
          : t.startsWith('/proc/')
            ? '/proc/…'
            : t;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

export function bpfHeld(pid: number): BpfHeld {
  const prog = new Set<number>();
  const map = new Set<number>();
  const link = new Set<number>();
  let progFds = 0;
  let mapFds = 0;
  let linkFds = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    let info: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (!target.startsWith('anon_inode:bpf')) continue;
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const field = (k: string) => {
      const m = new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(info);
      return m ? Number(m[1]) : undefined;
    };
    if (target === 'anon_inode:bpf-map') {
      mapFds++;
      const id = field('map_id');
      if (id !== undefined) map.add(id);
    } else if (target === 'anon_inode:bpf-prog') {
      progFds++;
      const id = field('prog_id');
      if (id !== undefined) prog.add(id);
    } else if (target === 'anon_inode:bpf_link' || target === 'anon_inode:bpf-link') {
      linkFds++;
      const id = field('link_id');
      if (id !== undefined) link.add(id);
      const p = field('prog_id');
      if (p !== undefined) prog.add(p);
    }
  }
  const sort = (s: Set<number>) => [...s].sort((a, b) => a - b);
  return { progIds: sort(prog), mapIds: sort(map), linkIds: sort(link), progFds, mapFds, linkFds };
}

export interface MapInfo {
  readonly id: number;
  readonly name: string;
  readonly type: string;
  readonly maxEntries: number;
}

export function mapInfo(id: number): MapInfo {
  const j = JSON.parse(
    execFileSync('bpftool', ['-j', 'map', 'show', 'id', String(id)], { encoding: 'utf8' }),
  ) as {
    id: number;
    name?: string;
    type: string;
    max_entries: number;
  };
  return { id: j.id, name: j.name ?? '', type: j.type, maxEntries: j.max_entries };
}

/** Entries of a hash-like map (`bpftool map dump id`); undefined for types without keys to count. */
export function mapEntryCount(id: number): number | undefined {
  const info = mapInfo(id);
  if (!/hash|lru/.test(info.type)) return undefined;
  const out = execFileSync('bpftool', ['-j', 'map', 'dump', 'id', String(id)], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  return (JSON.parse(out) as unknown[]).length;
}

/** Every BPF program id loaded on the system. */
export function loadedProgIds(): Set<number> {
  const j = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as Array<{
    id: number;
  }>;
  return new Set(j.map((p) => p.id));
}

/** Every BPF link id on the system. */
export function loadedLinkIds(): Set<number> {
  const j = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{
    id: number;
  }>;
  return new Set(j.map((p) => p.id));
}

/** Names of the programs with these ids (bpftool prog show id). */
export function progNames(ids: readonly number[]): string[] {
  return ids.map((id) => {
    const j = JSON.parse(
      execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(id)], { encoding: 'utf8' }),
    ) as { name?: string };
    return j.name ?? `#${id}`;
  });
}

/** Config text: every registered probe off, plus `extra` inside `probes: { ... }`. */
export function probesOff(names: readonly string[], extra = ''): string {
  return `{ ${names.map((n) => `${n}: { enabled: false }`).join(', ')}${extra ? `, ${extra}` : ''} }`;
}

/** Sum of the Prometheus text samples of `name` whose labels include every one of `labels`. */
export function promSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^([^{\s]+)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      got[l[1]!] = l[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** Poll `fn` until it returns a truthy value; throws with `what` after timeoutMs. */
export async function until<T>(
  fn: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}
