// Reading captures with the independent tools (Debian tshark and tcpdump) and running `podnet capture`.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { MAIN, NODE } from '../cli/podnet-process.ts';

export interface TsharkRead {
  /** One row per packet: the requested fields, tab-separated by tshark. */
  readonly rows: string[][];
  readonly stderr: string;
}

/** `tshark -r FILE -T fields -e ...`; throws when tshark fails or reports a damaged file. */
export function tsharkFields(file: string, fields: readonly string[], display?: string): TsharkRead {
  const args = ['-r', file, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])];
  if (display) args.push('-Y', display);
  const r = spawnSync('tshark', args, { encoding: 'utf8' });
  // tshark warns that it runs as root; anything else on stderr is a complaint about the file
  const stderr = r.stderr
    .split('\n')
    .filter((l) => l && !/Running as user "root"/.test(l))
    .join('\n');
  if (r.status !== 0 || stderr) throw new Error(`tshark -r ${file} failed (${r.status}): ${stderr}`);
  const rows = r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
  return { rows, stderr };
}

/** `tcpdump -nn -r FILE` output lines; throws when tcpdump fails. */
export function tcpdumpLines(file: string): string[] {
  const r = spawnSync('tcpdump', ['-nn', '-r', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tcpdump -r ${file} failed (${r.status}): ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

export interface CaptureRun {
  readonly child: ChildProcess;
  stderr: string;
  /** Resolves when the capture's socket is bound ("listening" on stderr). */
  readonly listening: Promise<void>;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
}

/** Starts `podnet capture ARGS` (stdout ignored unless `stdout` is 'pipe'). */
export function startCapture(args: readonly string[], stdout: 'ignore' | 'pipe' = 'ignore'): CaptureRun {
  const child = spawn(NODE, [MAIN, 'capture', ...args], { stdio: ['ignore', stdout, 'pipe'] });
  const run = { child, stderr: '' } as CaptureRun & { stderr: string };
  let onListen: () => void;
  let onFail: (e: Error) => void;
  (run as { listening: Promise<void> }).listening = new Promise<void>((res, rej) => {
    onListen = res;
    onFail = rej;
  });
  child.stderr!.on('data', (d: Buffer) => {
    run.stderr += d.toString();
    if (run.stderr.includes('podnet capture: listening')) onListen();
  });
  (run as { exited: Promise<number | null> }).exited = new Promise((res) =>
    child.once('exit', (code) => {
      onFail(new Error(`podnet capture exited ${code} before listening: ${run.stderr}`));
      res(code);
    }),
  );
  run.listening.catch(() => {});
  return run;
}
