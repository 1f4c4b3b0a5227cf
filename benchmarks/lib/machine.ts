// The machine a result was measured on (kernel, CPUs, memory, Node, load), for RESULTS.md.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

export interface MachineInfo {
  readonly date: string;
  readonly kernel: string;
  readonly os: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly loadavg: readonly number[];
  readonly iperf3: string;
  readonly nodeExporter: string;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return (
      execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0] ?? ''
    );
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return (e.stdout || e.stderr || 'not installed').split('\n')[0] ?? '';
  }
}

export function machineInfo(): MachineInfo {
  let os = 'Linux';
  try {
    os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    // keep the default
  }
  const c = cpus();
  return {
    date: new Date().toISOString(),
    kernel: firstLine('uname', ['-r']),
    os,
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    iperf3: firstLine('iperf3', ['--version']),
    nodeExporter: firstLine('/usr/bin/prometheus-node-exporter', ['--version']),
  };
}
