// The perf phase of benchmarks/suite/datapath.ts (--perf): where the "all probes" BPF cost goes with
// BPF_STATS off, from CPU samples rather than the kernel's run-time accounting. `perf record -a -g` runs
// during one more iperf3 transfer per protocol (TCP, UDP flood); every sample of iperf3 (client and server:
// the CPU the row's denominator counts) is charged to the innermost BPF program on its stack (a tail-called
// program has its own JIT symbol, so a chain's members are told apart, which BPF_STATS cannot do), else to
// the dispatch (the tracepoint's or TCX's call into BPF, the trampolines) when one is on the stack, else to
// the rest of the transfer. net.core.bpf_jit_kallsyms is 1 during the phase (the bpf_prog_<tag>_<name> symbols).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Table } from '../lib/results.ts';
import { fmt, sleep } from '../lib/stats.ts';
import { progLayout } from './datapath-hooks.ts';
import { type KernelTimeOptions, startDiscovered } from './datapath-stats.ts';

const KALLSYMS = '/proc/sys/net/core/bpf_jit_kallsyms';
const PROG = /^bpf_prog_[0-9a-f]{16}_(\w+)$/;
/** Frames of the call into BPF (not inside a program): tracepoint runners, trampolines, TC/TCX. */
const DISPATCH =
  /^(bpf_trace_run\d+|__bpf_trace_\w+|__bpf_prog_enter\w*|__bpf_prog_exit\w*|bpf_trampoline_\w+|__bpf_tramp_\w+|tcx_run|tc_run|sch_handle_ingress\w*|sch_handle_egress\w*|bpf_dispatcher_\w+)$/;

export interface PerfSplit {
  tree: 'this' | 'base';
  proto: 'tcp' | 'udp';
  /** Samples of iperf3 (client + server). */
  total: number;
  dispatch: number;
  /** The dispatch samples by hook: tc ingress / egress, the tracepoint's __bpf_trace_<tp> frame, else the
   * function that fired it (the frame below the dispatch). */
  dispatchByHook: Map<string, number>;
  /** Program name → samples with it innermost on the stack. */
  progs: Map<string, number>;
  /** Program name → its hook (podnet's /status). */
  hooks: Map<string, string>;
  /** Whether BPF_STATS was on during the transfer (another process held it): then its clock reads are in. */
  statsOn: boolean;
}

/** Samples of the `comm` processes in a perf.data: per innermost program, dispatch, total. */
export function splitSamples(
  script: string,
  comm: string,
): Omit<PerfSplit, 'tree' | 'proto' | 'hooks' | 'statsOn'> {
  let total = 0;
  let dispatch = 0;
  const progs = new Map<string, number>();
  const dispatchByHook = new Map<string, number>();
  for (const block of script.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.length > 0);
    const head = lines[0]?.trim().split(/\s+/)[0];
    if (head !== comm) continue;
    total++;
    let prog: string | undefined;
    let disp = false;
    let hook: string | undefined;
    for (const l of lines.slice(1)) {
      const sym = l.trim().split(/\s+/)[1] ?? '';
      const m = PROG.exec(sym);
      if (m) {
        prog = m[1];
        break; // leaf first: the innermost program
      }
      if (DISPATCH.test(sym)) {
        disp = true;
        const t = /^__bpf_trace_(\w+)$/.exec(sym) ?? /^sch_handle_(ingress|egress)/.exec(sym);
        if (t && !hook) hook = sym.startsWith('sch_') ? `tc ${t[1]}` : t[1];
      } else if (disp && !hook) {
        // __bpf_trace_<tp> is tail-called away on this kernel: name the function that fired the hook
        hook = `called from ${sym}`;
      }
    }
    if (prog) progs.set(prog, (progs.get(prog) ?? 0) + 1);
    else if (disp) {
      dispatch++;
      const h = hook ?? '(hook not on the stack)';
      dispatchByHook.set(h, (dispatchByHook.get(h) ?? 0) + 1);
    }
  }
  return { total, dispatch, progs, dispatchByHook };
}

/** Sum of run_cnt over every loaded program (to tell whether BPF_STATS was on meanwhile). */
function allRunCounts(): number {
  const all = JSON.parse(
    execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 }),
  );
  return (all as { run_cnt?: number }[]).reduce((a, p) => a + (p.run_cnt ?? 0), 0);
}

/** One transfer per protocol and tree under `perf record -a -g` (BPF_STATS off), "all probes". */
export async function measurePerf(o: KernelTimeOptions, freq = 2999): Promise<PerfSplit[]> {
  // the programs have no symbols without it: turned on for the phase, put back after
  const kallsyms = readFileSync(KALLSYMS, 'utf8').trim();
  if (kallsyms !== '1') writeFileSync(KALLSYMS, '1');
  const dir = mkdtempSync(join(tmpdir(), 'pn-dp-perf-'));
  const out: PerfSplit[] = [];
  const trees: ('this' | 'base')[] = o.base
    ? o.order === 'this-first'
      ? ['this', 'base']
      : ['base', 'this']
    : ['this'];
  try {
    for (const tree of trees) {
      const podnet = await startDiscovered({
        config: o.config('all'),
        tree,
        base: o.base,
        settleMs: o.settleMs,
      });
      try {
        const hooks = new Map(progLayout(await podnet.status()).map((l) => [l.name, l.hook]));
        for (const proto of ['tcp', 'udp'] as const) {
          const file = join(dir, `${tree}-${proto}.data`);
          const args = ['-c', o.serverIp, '-p', String(o.port), '-t', String(o.seconds), '-J'];
          if (proto === 'udp') args.push('-u', '-b', '0');
          const runs0 = allRunCounts();
          const perf = spawn('perf', ['record', '-a', '-g', '-F', String(freq), '-o', file], {
            stdio: 'ignore',
          });
          const exited = new Promise<string>((res) => perf.on('exit', (c, sig) => res(sig ?? String(c))));
          await sleep(300);
          // biome-ignore lint/suspicious/noExplicitAny: iperf3 JSON.
          const j = JSON.parse(await o.iperf(o.clientPid, args)) as any;
          perf.kill('SIGINT');
          const code = await exited;
          if (j.error) throw new Error(`iperf3: ${j.error}`);
          // perf record stops on SIGINT (exit 0, or the signal itself when it is delivered before perf's handler)
          if (code !== '0' && code !== 'SIGINT') throw new Error(`perf record exited ${code}`);
          const statsOn = allRunCounts() > runs0;
          const script = execFileSync('perf', ['script', '-i', file, '-F', 'comm,pid,ip,sym'], {
            encoding: 'utf8',
            maxBuffer: 1 << 30,
            stdio: ['ignore', 'pipe', 'ignore'],
          });
          const s = splitSamples(script, 'iperf3');
          if (s.total < 100) throw new Error(`perf: only ${s.total} samples of iperf3`);
          out.push({ tree, proto, ...s, hooks, statsOn });
          console.log(
            `perf ${tree} all ${proto}: ${s.total} iperf3 samples, BPF programs ${fmt((sum(s.progs) / s.total) * 100, 2)} %, dispatch ${fmt((s.dispatch / s.total) * 100, 2)} %${statsOn ? ' (BPF_STATS was on: another process)' : ''}`,
          );
        }
      } finally {
        await podnet.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (kallsyms !== '1') writeFileSync(KALLSYMS, kallsyms);
  }
  return out;
}

function sum(m: ReadonlyMap<string, number>): number {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
}

/** Per tree and protocol: % of iperf3's samples in dispatch, per hook and per program (podnet's only). */
export function printPerf(splits: readonly PerfSplit[]): void {
  console.log(
    '\nperf (BPF_STATS off): % of iperf3 samples (client + server CPU) per hook and program, "all probes"; dispatch = the call into BPF outside any program. perf samples with cpu-clock here (no PMU in this VM): code run with interrupts off is charged where they are re-enabled, so hooks that fire with interrupts off (softirq_raise) read low',
  );
  for (const s of splits) {
    const pct = (n: number) => `${fmt((n / s.total) * 100, 2)} %`;
    let podnet = 0;
    const byHook = new Map<string, [string, number][]>();
    let other = 0;
    for (const [name, n] of s.progs) {
      const hook = s.hooks.get(name);
      if (!hook) {
        other += n; // not podnet's (the floor's null programs are not loaded in this phase; others' tests)
        continue;
      }
      podnet += n;
      const l = byHook.get(hook) ?? [];
      l.push([name, n]);
      byHook.set(hook, l);
    }
    console.log(
      `  ${s.tree} ${s.proto}: ${s.total} samples; podnet's programs ${pct(podnet)} + dispatch ${pct(s.dispatch)} = ${pct(podnet + s.dispatch)} of iperf3's CPU${other ? `; other processes' programs ${pct(other)}` : ''}${s.statsOn ? ' [BPF_STATS was on]' : ''}`,
    );
    const hooks = [...byHook].sort((a, b) => sum(new Map(b[1])) - sum(new Map(a[1])));
    for (const [hook, progs] of hooks) {
      const list = progs
        .sort((a, b) => b[1] - a[1])
        .map(([n, c]) => `${n} ${pct(c)}`)
        .join(', ');
      console.log(`    ${pct(sum(new Map(progs))).padStart(8)}  ${hook}: ${list}`);
    }
    const disp = [...s.dispatchByHook].sort((a, b) => b[1] - a[1]).map(([h, n]) => `${h} ${pct(n)}`);
    console.log(`    dispatch by hook: ${disp.join(', ')}`);
  }
}

/** The report's tables: this checkout's split per protocol (hooks by share, then dispatch and totals). */
export function perfTables(splits: readonly PerfSplit[]): Table[] {
  return splits
    .filter((s) => s.tree === 'this')
    .map((s) => {
      const pct = (n: number) => `${fmt((n / s.total) * 100, 2)} %`;
      const byHook = new Map<string, [string, number][]>();
      let podnet = 0;
      for (const [name, n] of s.progs) {
        const hook = s.hooks.get(name);
        if (!hook) continue;
        podnet += n;
        byHook.set(hook, [...(byHook.get(hook) ?? []), [name, n]]);
      }
      const rows: string[][] = [...byHook]
        .map(([hook, progs]) => ({ hook, progs, n: sum(new Map(progs)) }))
        .sort((a, b) => b.n - a.n)
        .map(({ hook, progs, n }) => [
          hook,
          pct(n),
          progs
            .sort((a, b) => b[1] - a[1])
            .map(([p, c]) => `${p} ${pct(c)}`)
            .join(', '),
        ]);
      rows.push(
        ['(dispatch: the call into BPF, outside any program)', pct(s.dispatch), '–'],
        ['(podnet’s programs + dispatch)', pct(podnet + s.dispatch), `${s.total} iperf3 samples`],
      );
      return {
        title: `All probes, ${s.proto === 'udp' ? 'UDP flood' : 'TCP'}: perf samples of iperf3 (client + server) in podnet’s BPF, BPF_STATS off${s.statsOn ? ' (it was on: another process held it)' : ''}`,
        headers: ['hook', 'share of iperf3’s CPU', 'programs (a chain’s members apart)'],
        rows,
      };
    });
}
