// N named netns for the in-process A/B benchmarks (benchmarks/procfs/ab.ts, benchmarks/procfs/pipeline-ab.ts,
// benchmarks/peers/netns-ab.ts): created and removed with `ip -batch` (one process for all of them), each
// with a veth pair inside and its links up; `inside(i)` adds commands run in the i-th (e.g. an address).
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';

/** A named netns as an entity (receiver/pods/entity.ts's `netns` kind). */
export interface BatchNetns {
  kind: 'netns';
  netnsInode: number;
  netnsPath: string;
  netnsName: string;
  displayName: string;
}

export function createNetnsBatch(
  prefix: string,
  n: number,
  inside: (i: number) => string = () => '',
): BatchNetns[] {
  const names = Array.from({ length: n }, (_, i) => `${prefix}n${i}`);
  const lines: string[] = [];
  for (const name of names) lines.push(`netns add ${name}`);
  for (const name of names)
    lines.push(`link add name eth0 netns ${name} type veth peer name peer0 netns ${name}`);
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  names.forEach((name, i) => {
    const up = `link set lo up\nlink set eth0 up\nlink set peer0 up\n${inside(i)}`;
    execFileSync('ip', ['-n', name, '-batch', '-'], { input: up, stdio: ['pipe', 'ignore', 'inherit'] });
  });
  return names.map((name) => {
    const netnsPath = `/run/netns/${name}`;
    return {
      kind: 'netns',
      netnsInode: statSync(netnsPath).ino,
      netnsPath,
      netnsName: name,
      displayName: name,
    };
  });
}

export function removeNetnsBatch(prefix: string, n: number): void {
  const lines = Array.from({ length: n }, (_, i) => `netns del ${prefix}n${i}`);
  execFileSync('ip', ['-force', '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
}
