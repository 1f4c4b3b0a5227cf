// podnet preflight: does this process have what podnet needs, and does each thing it needs actually work?
//
//   node deploy/image/preflight.ts [--json] [--pid PID]
//   kubectl -n podnet exec ds/podnet -- node dist/deploy/image/preflight.js     (the image runs dist/)
//
// For every capability in capabilities.ts it reads the effective set (CapEff) and runs the operation podnet
// performs with it, through podnet's own code (receiver/bpf, receiver/netns, receiver/netlink):
// loading and attaching a tp_btf program, reading kallsyms, opening another user's /proc/<pid>/ns/net,
// setns(2), listing another user's /proc/<pid>/fd, a ctnetlink statistics request. A missing capability is
// named with what fails without it. Exit status 0 = every operation works, 1 = something podnet needs fails.
// --pid names the other user's process to try /proc/<pid>/ns/net and /proc/<pid>/fd on (default 1: under
// hostPID the node's init). On current kernels CAP_SYS_ADMIN also grants what CAP_BPF and CAP_PERFMON grant
// (bpf_capable(), perfmon_capable()); the report says when a missing capability is covered that way.
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CAPABILITIES, effectiveCapabilities, hasCapability, raiseEffective } from './capabilities.ts';

const SELFTEST_OBJECT = fileURLToPath(new URL('../../receiver/bpf/selftest/selftest.bpf.o', import.meta.url));

export interface CheckResult {
  readonly check: string;
  /** Capabilities the operation needs (all must be effective). */
  readonly needs: readonly string[];
  readonly ok: boolean;
  readonly detail: string;
}

export interface PreflightReport {
  readonly uid: number;
  /** `covered`: every operation that needs it still worked (CAP_SYS_ADMIN covers CAP_BPF / CAP_PERFMON). */
  readonly missing: ReadonlyArray<{ readonly cap: string; readonly why: string; readonly covered: boolean }>;
  readonly checks: readonly CheckResult[];
  readonly ok: boolean;
}

interface Check {
  readonly check: string;
  readonly needs: readonly string[];
  run(pid: number): Promise<string>;
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message}` : (e.message ?? String(err));
}

const CHECKS: readonly Check[] = [
  {
    check: 'eBPF tracing program loads and attaches (tp_btf/kfree_skb, receiver/bpf/selftest)',
    needs: ['CAP_BPF', 'CAP_PERFMON'],
    async run() {
      const { BpfSpec } = await import('../../receiver/bpf/object.ts');
      const coll = BpfSpec.fromFile(SELFTEST_OBJECT).load({
        programs: {
          on_kfree_skb: { tpArgs: 4 },
          on_kfree_skb_v3: { tpArgs: 3 },
          on_tcp_sendmsg_kprobe: { enabled: false },
          on_tcp_sendmsg_fentry: { enabled: false },
          on_missing_tp_btf: { enabled: false },
          on_missing_tracepoint: { enabled: false },
        },
      });
      try {
        const st = coll.attach();
        if (st.state !== 'running') throw new Error(st.reason ?? st.state);
        return 'loaded and attached';
      } finally {
        coll.close();
      }
    },
  },
  {
    check: 'kernel symbols readable (/proc/kallsyms shows addresses)',
    needs: ['CAP_SYSLOG'],
    async run() {
      const { Kallsyms } = await import('../../receiver/bpf/kallsyms.ts');
      const k = new Kallsyms();
      if (!k.available) throw new Error(k.reason ?? 'kallsyms shows zero addresses');
      return `${k.size} text symbols`;
    },
  },
  {
    check: "another user's network namespace opens (/proc/<pid>/ns/net)",
    needs: ['CAP_SYS_PTRACE'],
    async run(pid) {
      closeSync(openSync(`/proc/${pid}/ns/net`, 'r'));
      return `/proc/${pid}/ns/net opened`;
    },
  },
  {
    check: 'setns(2) into a network namespace',
    needs: ['CAP_SYS_ADMIN'],
    async run() {
      const { inNetns } = await import('../../receiver/netns/setns.ts');
      inNetns('/proc/self/ns/net', () => 0);
      return 'entered and returned';
    },
  },
  {
    check: "another user's file descriptors list (/proc/<pid>/fd)",
    needs: ['CAP_DAC_READ_SEARCH'],
    async run(pid) {
      return `${readdirSync(`/proc/${pid}/fd`).length} fds in /proc/${pid}/fd`;
    },
  },
  {
    check: 'AF_PACKET socket for packet captures',
    needs: ['CAP_NET_RAW'],
    async run() {
      const { default: koffi } = await import('koffi');
      const libc = koffi.load('libc.so.6');
      const socket = libc.func('int socket(int domain, int type, int protocol)');
      const close = libc.func('int close(int fd)');
      const fd = socket(17, 2, 0) as number; // AF_PACKET, SOCK_DGRAM, no protocol: receives nothing
      if (fd < 0) {
        const errno = koffi.errno();
        throw new Error(`socket(AF_PACKET): ${errno === 1 ? 'EPERM' : `errno ${errno}`}`);
      }
      close(fd);
      return 'opened and closed';
    },
  },
  {
    check: 'conntrack statistics over ctnetlink',
    needs: ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'],
    async run() {
      const { NetlinkSocket, NETLINK_NETFILTER } = await import('../../receiver/netlink/socket.ts');
      const { conntrackGlobal } = await import('../../receiver/netlink/ctnetlink.ts');
      const sock = NetlinkSocket.open('/proc/self/ns/net', NETLINK_NETFILTER);
      try {
        const g = conntrackGlobal(sock);
        return `${g.entries} entries`;
      } finally {
        sock.close();
      }
    },
  },
];

export async function preflight(pid = 1): Promise<PreflightReport> {
  const eff = effectiveCapabilities(readFileSync('/proc/self/status', 'utf8'));
  const effective = new Set<string>(CAPABILITIES.filter((c) => hasCapability(eff, c.bit)).map((c) => c.cap));
  const checks: CheckResult[] = [];
  for (const c of CHECKS) {
    try {
      checks.push({ check: c.check, needs: c.needs, ok: true, detail: await c.run(pid) });
    } catch (err) {
      const lacking = c.needs.filter((n) => !effective.has(n));
      // podnet's eBPF loader already names the missing capability and what it disables (receiver/bpf/caps.ts)
      const text = errText(err).replace(/^cannot load [^:]+: /, '');
      // (a message that names it later, like setns's, still gets the capability in front)
      const named =
        lacking.length > 0 && text.startsWith('CAP_') && lacking.every((n) => text.includes(`${n} missing`));
      const detail = lacking.length
        ? named
          ? text
          : `${lacking.join(' and ')} missing: ${text}`
        : `failed although ${c.needs.join(', ')} ${c.needs.length > 1 ? 'are' : 'is'} effective (kernel setting, LSM or seccomp?): ${errText(err)}`;
      checks.push({ check: c.check, needs: c.needs, ok: false, detail });
    }
  }
  const missing = CAPABILITIES.filter((c) => !effective.has(c.cap)).map((c) => ({
    cap: c.cap,
    why: c.why,
    covered: checks.filter((k) => k.needs.includes(c.cap)).every((k) => k.ok),
  }));
  return { uid: process.getuid?.() ?? -1, missing, checks, ok: checks.every((c) => c.ok) };
}

export function formatReport(r: PreflightReport): string {
  const lines = [`podnet preflight (uid ${r.uid})`];
  for (const c of r.checks) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.check}: ${c.detail}`);
  for (const m of r.missing)
    lines.push(
      m.covered
        ? `missing ${m.cap} (its operations still work here: CAP_SYS_ADMIN covers it on this kernel): ${m.why}`
        : `missing ${m.cap}: ${m.why}`,
    );
  lines.push(r.ok ? 'all capabilities podnet needs are effective and work' : 'podnet will run degraded here');
  return `${lines.join('\n')}\n`;
}

if (import.meta.main) {
  const i = process.argv.indexOf('--pid');
  const pid = i > 0 ? Number(process.argv[i + 1]) : 1;
  if (!Number.isInteger(pid) || pid < 1) {
    process.stderr.write('preflight: --pid needs a process id\n');
    process.exit(2);
  }
  // In the image node has permitted-only file capabilities: make them effective, as the entrypoint does.
  await raiseEffective();
  const report = await preflight(pid);
  process.stdout.write(
    process.argv.includes('--json') ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report),
  );
  process.exitCode = report.ok ? 0 : 1;
}
