// Builds benchmarks/ebpf/udpflood.c with the system clang into a temp dir (once per process) and runs it
// inside a netns. Used by the storm test (test/ebpf/storm.test.ts) and benchmark (storm.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = new URL('./udpflood.c', import.meta.url).pathname;
let built: { bin: string; dir: string } | undefined;

/** Path of the compiled generator (built on first use; removeFlood() deletes it). */
export function floodBinary(): string {
  if (!built) {
    const dir = mkdtempSync(join(tmpdir(), 'pna-flood-'));
    const bin = join(dir, 'udpflood');
    execFileSync('clang', ['-O2', '-Wall', '-o', bin, SOURCE], { stdio: ['ignore', 'ignore', 'inherit'] });
    built = { bin, dir };
  }
  return built.bin;
}

export function removeFlood(): void {
  if (built) rmSync(built.dir, { recursive: true, force: true });
  built = undefined;
}

export interface FloodResult {
  readonly sent: number;
  readonly seconds: number;
}

/** Runs the flood in netns `ns` (async: the caller's event loop keeps running). */
export async function flood(
  ns: string,
  addr: string,
  port: number,
  count: number,
  opts: { size?: number; procs?: number; rate?: number } = {},
): Promise<FloodResult> {
  const bin = floodBinary();
  const { spawn } = await import('node:child_process');
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      bin,
      addr,
      String(port),
      String(count),
      String(opts.size ?? 16),
      String(opts.procs ?? 1),
      String(opts.rate ?? 0),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`udpflood exited ${code}: ${out}`);
  return JSON.parse(out) as FloodResult;
}
