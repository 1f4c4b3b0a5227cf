// Runs the real `podnet` binary (receiver/cli/main.ts under Node 24) as a child process for CLI tests.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { probeSpecs } from '../../probes/registry.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const NODE = join(ROOT, 'node_modules/.bin/node');
export const MAIN = join(ROOT, 'receiver/cli/main.ts');

/** `name: { enabled: false }, ` for every registered probe: put inside a `probes: { ... }` flow mapping. */
export function disableRegistered(): string {
  return probeSpecs.map((s) => `${s.name}: { enabled: false }, `).join('');
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `podnet <args>` to completion. */
export function podnet(args: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((res) => {
    execFile(
      NODE,
      [MAIN, ...args],
      { timeout: timeoutMs, env: { ...process.env, PODNET_LOG_LEVEL: 'info' } },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? null) : 0;
        res({ code: typeof code === 'number' ? code : null, stdout, stderr });
      },
    );
  });
}

export class PodnetRun {
  readonly child: ChildProcess;
  readonly dir: string;
  stderr = '';
  stdout = '';
  url = '';
  private constructor(child: ChildProcess, dir: string) {
    this.child = child;
    this.dir = dir;
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
    });
  }

  /** Start `podnet run --with-synthetic --config <yaml>`; resolves when the server URL is logged. */
  static async start(yaml: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<PodnetRun> {
    const dir = mkdtempSync(join(tmpdir(), `pno${process.pid}-cli-`));
    const config = join(dir, 'podnet.yaml');
    writeFileSync(config, yaml);
    const child = spawn(NODE, [MAIN, 'run', '--with-synthetic', '--config', config], {
      env: { ...process.env, PODNET_LOG_LEVEL: 'info', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run = new PodnetRun(child, dir);
    const deadline = Date.now() + 30_000;
    while (!run.url) {
      const m = /"url":"(http:\/\/[^"]+)","msg":"local server listening"/.exec(run.stderr);
      if (m) run.url = m[1]!;
      else if (child.exitCode !== null) throw new Error(`podnet run exited ${child.exitCode}: ${run.stderr}`);
      else if (Date.now() > deadline) throw new Error(`podnet run did not start: ${run.stderr}`);
      else await new Promise((r) => setTimeout(r, 50));
    }
    return run;
  }

  /** SIGTERM by PID and wait for the exit code (SIGKILL after 20 s). */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(this.dir, { recursive: true, force: true });
    return child.exitCode;
  }
}
