// A real DNS server for the dns probe tests: unbound in a test netns, answering
//   <name>.ok.podnet      A / AAAA / a long TXT (local data; a 512-byte UDP answer is truncated)
//   <other>.ok.podnet     NXDOMAIN (static local zone)
//   <name>.fail.podnet    SERVFAIL: forwarded to a dnsmasq with no upstream in the same netns, which
//                         answers REFUSED, which unbound turns into SERVFAIL
// Every reply unbound sends is logged (`log-replies`) and parsed here: the server's own count.
import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetnsSide } from '../env/netns.ts';

/** Where the server runs: a test netns side, or the host netns (hostSide). */
export type ServerSide = Pick<NetnsSide, 'ipv4' | 'ipv6' | 'spawn' | 'exec'>;

export interface Reply {
  readonly client: string;
  readonly name: string;
  readonly type: string;
  readonly rcode: string;
}

const TXT = Array.from({ length: 3 }, (_, i) => `"${String(i).repeat(250)}"`).join(' ');

export class DnsServer {
  readonly dir: string;
  readonly replies: Reply[] = [];
  readonly #procs: ChildProcess[] = [];
  #buf = '';
  #log = '';

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Starts unbound on the side's IPv4 and IPv6 addresses (port 53) and the failing upstream. */
  static async start(
    side: ServerSide,
    o: { logReplies?: boolean; extraIpv4?: readonly string[] } = {},
  ): Promise<DnsServer> {
    const upstream = 5300 + (process.pid % 600);
    const dir = mkdtempSync(join(tmpdir(), 'pndns-'));
    const s = new DnsServer(dir);
    const conf = join(dir, 'unbound.conf');
    writeFileSync(
      conf,
      `server:
  interface: ${side.ipv4}
  interface: ${side.ipv6}
${(o.extraIpv4 ?? []).map((a) => `  interface: ${a}\n`).join('')}  port: 53
  do-daemonize: no
  use-syslog: no
  logfile: ""
  verbosity: 0
  log-replies: ${o.logReplies === false ? 'no' : 'yes'}
  access-control: 0.0.0.0/0 allow
  access-control: ::/0 allow
  chroot: ""
  username: ""
  directory: "${dir}"
  pidfile: ""
  do-not-query-localhost: no
  module-config: "iterator"
  num-threads: 1
  local-zone: "ok.podnet." static
  local-data: "a.ok.podnet. A 10.99.0.1"
  local-data: "a.ok.podnet. AAAA fd00:99::1"
  local-data: "big.ok.podnet. TXT ${TXT.replaceAll('"', '\\"')}"
forward-zone:
  name: "fail.podnet."
  forward-addr: 127.0.0.1@${upstream}
remote-control:
  control-enable: no
`,
    );
    const dnsmasq = side.spawn(
      'dnsmasq',
      [
        '-d',
        '-k',
        '--no-resolv',
        '--no-hosts',
        `--port=${upstream}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        '--pid-file=',
      ],
      { stdio: 'ignore' },
    );
    s.#procs.push(dnsmasq);
    const unbound = side.spawn('unbound', ['-d', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    s.#procs.push(unbound);
    unbound.stderr?.on('data', (d: Buffer) => s.#parse(d.toString()));
    const start = Date.now();
    while (!s.ready(side, upstream)) {
      if (Date.now() - start > 10_000) {
        s.stop();
        throw new Error(`unbound did not start within 10 s: ${s.#log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return s;
  }

  ready(side: ServerSide, upstream: number): boolean {
    try {
      const out = side.exec('ss', ['-Hlun']);
      return out.includes(`${side.ipv4}:53`) && out.includes(`127.0.0.1:${upstream}`);
    } catch {
      return false;
    }
  }

  #parse(text: string): void {
    this.#buf += text;
    if (this.#log.length < 4096) this.#log += text;
    for (let i = this.#buf.indexOf('\n'); i >= 0; i = this.#buf.indexOf('\n')) {
      const line = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 1);
      // "[ts] unbound[pid:0] info: <client> <name>. <TYPE> IN <RCODE> <time> <cached> <size>"
      const m = /info: (\S+) (\S+)\. (\S+) IN (\S+) [\d.]+ \d \d+$/.exec(line);
      if (m) this.replies.push({ client: m[1]!, name: m[2]!, type: m[3]!, rcode: m[4]! });
    }
  }

  /** Replies the server logged to `client`, by response code. */
  count(client: string, rcode?: string, type?: string): number {
    return this.replies.filter(
      (r) => r.client === client && (!rcode || r.rcode === rcode) && (!type || r.type === type),
    ).length;
  }

  stop(): void {
    for (const p of this.#procs) {
      if (p.exitCode === null && p.pid !== undefined) {
        try {
          process.kill(p.pid, 'SIGTERM');
        } catch {}
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** `dig` in a netns: the status and query time(s) it reports (TIMEOUT when no server answered). */
export function dig(
  side: Pick<NetnsSide, 'name'>,
  server: string,
  name: string,
  opts: { type?: string; tcp?: boolean; time?: number; extra?: readonly string[] } = {},
): { status: string; ms: number; times: number[]; sizes: number[] } {
  const args = [
    `@${server}`,
    name,
    opts.type ?? 'A',
    '+tries=1',
    `+time=${opts.time ?? 2}`,
    ...(opts.tcp ? ['+tcp'] : []),
    ...(opts.extra ?? []),
  ];
  let out: string;
  try {
    out = execFileSync('ip', ['netns', 'exec', side.name, 'dig', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    out = String((err as { stdout?: string }).stdout ?? '');
  }
  const status =
    /status: (\w+)/.exec(out)?.[1] ??
    (/timed out|no servers could be reached/.test(out) ? 'TIMEOUT' : `ERROR ${out}`);
  const times = [...out.matchAll(/Query time: (\d+) msec/g)].map((m) => Number(m[1]));
  const sizes = [...out.matchAll(/MSG SIZE {2}rcvd: (\d+)/g)].map((m) => Number(m[1]));
  return { status, ms: times[0] ?? -1, times, sizes };
}

export const run = (cmd: string, args: readonly string[]): string =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
