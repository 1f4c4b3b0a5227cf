// TCP connection churn between the two netns of a pair, for benchmarks/ebpf/hook-cost.ts: a server in `b`
// (the watched netns) that answers each connection's 64-byte request with 64 bytes and closes, and a client
// in `a` (not watched) that runs `n` connect / write / read / close cycles, CONCURRENCY at a time. Each side
// reports its own CPU (process.cpuUsage: user and system µs, the system part is the connection's kernel
// work, softirq included when it runs on the way out of a syscall) so the loop's cost per connection can be
// priced with and without a probe loaded.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { NetnsSide } from '../../test/env/netns.ts';

const CONCURRENCY = 16;

const SERVER = `
const net = require('node:net');
const srv = net.createServer({ allowHalfOpen: false }, (s) => {
  s.on('error', () => {});
  s.once('data', () => s.end(Buffer.alloc(64, 1)));
});
let t0;
srv.listen(Number(process.argv[1]), '0.0.0.0', 4096, () => console.log(JSON.stringify({ ready: true })));
process.stdin.on('data', (d) => {
  if (String(d).startsWith('mark')) { t0 = process.cpuUsage(); console.log(JSON.stringify({ marked: true })); }
  else { const u = process.cpuUsage(t0); console.log(JSON.stringify({ user: u.user, system: u.system })); }
});
`;

const CLIENT = `
const net = require('node:net');
const [host, port, n, conc] = process.argv.slice(1);
let left = Number(n), done = 0, failed = 0;
const t0 = process.cpuUsage();
function one() {
  if (left <= 0) return;
  left--;
  const s = net.connect({ host, port: Number(port) });
  s.on('connect', () => s.write(Buffer.alloc(64, 2)));
  s.on('data', () => {});
  s.on('error', () => { failed++; });
  s.on('close', () => { done++; if (done === Number(n)) finish(); else one(); });
  s.on('end', () => s.end());
}
function finish() {
  const u = process.cpuUsage(t0);
  console.log(JSON.stringify({ user: u.user, system: u.system, failed }));
}
for (let i = 0; i < Number(conc); i++) one();
`;

export interface ChurnCpu {
  /** µs of CPU per connection, client + server. */
  readonly userUsPerConn: number;
  readonly sysUsPerConn: number;
}

export interface Churn {
  /** Runs `n` connections; throws if any failed. */
  run(n: number): Promise<ChurnCpu>;
  close(): void;
}

/** A reader of a child's stdout JSON lines, one at a time; rejects when the child exits or times out first. */
function lines(child: ChildProcess): (what: string) => Promise<Record<string, unknown>> {
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let exited = false;
  createInterface({ input: child.stdout! }).on('line', (l) => {
    queue.push(l);
    wake?.();
  });
  child.on('exit', () => {
    exited = true;
    wake?.();
  });
  return async (what) => {
    const deadline = Date.now() + 300_000;
    while (queue.length === 0) {
      if (exited) throw new Error(`${what}: exited with code ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error(`${what}: timeout`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 1000);
      });
    }
    return JSON.parse(queue.shift()!) as Record<string, unknown>;
  };
}

/** Starts the server in `server` on `port` (and widens the client netns' ports: TIME_WAIT piles up there). */
export async function startChurn(client: NetnsSide, server: NetnsSide, port: number): Promise<Churn> {
  client.exec('sysctl', ['-q', '-w', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65000']);
  const srv = server.spawn(process.execPath, ['-e', SERVER, String(port)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const srvLine = lines(srv);
  await srvLine('churn server');
  return {
    async run(n) {
      srv.stdin!.write('mark\n');
      await srvLine('churn server mark');
      const cl = client.spawn(
        process.execPath,
        ['-e', CLIENT, server.ipv4, String(port), String(n), String(CONCURRENCY)],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const c = await lines(cl)(`churn client ${n}`);
      srv.stdin!.write('read\n');
      const s = await srvLine('churn server read');
      if (c['failed'] !== 0) throw new Error(`churn: ${c['failed']} of ${n} connections failed`);
      return {
        userUsPerConn: ((c['user'] as number) + (s['user'] as number)) / n,
        sysUsPerConn: ((c['system'] as number) + (s['system'] as number)) / n,
      };
    },
    close() {
      if (srv.pid !== undefined && srv.exitCode === null) process.kill(srv.pid, 'SIGKILL');
    },
  };
}
