// What one BPF program run costs by itself, with and without BPF_STATS_RUN_TIME, measured on a syscall
// instead of on packets (a low-noise loop on a loaded machine): benchmarks/suite/recvloop.c calls recv()
// on an empty UDP socket N times (each call fires the sock_recv_length tracepoint once, in its own
// thread) and prints its thread's CPU ns per call. Variants, interleaved per rep:
//   none     nothing on sock_recv_length
//   one      one empty tp_btf program on it (receiver/bpf/selftest/hookset.bpf.c hs_recv_length): also turns
//            the tracepoint on, which the packet path pays once per hook
//   empty    K empty programs on it (hs_recv_length loaded K times)
//   stats    the same K with BPF_STATS_RUN_TIME on (also reads what the accounting reports per run)
//   clock    K programs that read bpf_ktime_get_ns once (clk_recv_length), no BPF_STATS
// one − none = a hook's first program; (variant − none) / K = the cost of one program run on that hook: the tracepoint's call into BPF, the
// dispatch and the program. stats − empty = the accounting's own cost per run; clock − empty = one clock
// read. Exits non-zero when a program does not attach or the loop fails.
//
//   node benchmarks/suite/bpf-run-floor.ts [--programs 8] [--calls 2000000] [--reps 7]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BpfCollection, BpfSpec } from '../../receiver/bpf/object.ts';
import { enableRunTimeStats, programInfo } from '../../receiver/bpf/stats.ts';
import { fmt, max, median, min } from '../lib/stats.ts';

const { values: o } = parseArgs({
  options: {
    programs: { type: 'string' },
    calls: { type: 'string' },
    reps: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (o.help) {
  console.log('usage: node benchmarks/suite/bpf-run-floor.ts [--programs 8] [--calls 2000000] [--reps 7]');
  process.exit(0);
}
const k = Number(o.programs ?? 8);
const calls = Number(o.calls ?? 2_000_000);
const reps = Number(o.reps ?? 7);
if (!(k >= 1) || !(calls >= 1000) || !(reps >= 1))
  throw new Error('--programs ≥ 1, --calls ≥ 1000, --reps ≥ 1');

const OBJECT = new URL('../../receiver/bpf/selftest/hookset.bpf.o', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'pn-runfloor-'));
const bin = join(dir, 'recvloop');
execFileSync('clang', ['-O2', '-Wall', '-o', bin, new URL('./recvloop.c', import.meta.url).pathname]);

type Variant = 'none' | 'one' | 'empty' | 'stats' | 'clock';
const VARIANTS: Variant[] = ['none', 'one', 'empty', 'stats', 'clock'];
const per = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
const accounted: number[] = [];
const load = (prog: string): BpfCollection[] =>
  Array.from({ length: k }, () =>
    BpfSpec.fromFile(OBJECT).load({
      programs: Object.fromEntries(
        BpfSpec.fromFile(OBJECT)
          .programs.filter((p) => p.name !== prog)
          .map((p) => [p.name, { enabled: false }]),
      ),
      strict: true,
    }),
  );
const empty = load('hs_recv_length');
const clock = load('clk_recv_length');

const loop = (): number => Number(execFileSync(bin, [String(calls)], { encoding: 'utf8' }).trim());
try {
  loop(); // warm-up
  for (let rep = 1; rep <= reps; rep++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + rep - 1) % VARIANTS.length] as Variant);
    for (const v of order) {
      const colls = v === 'clock' ? clock : v === 'none' ? [] : v === 'one' ? empty.slice(0, 1) : empty;
      const name = v === 'clock' ? 'clk_recv_length' : 'hs_recv_length';
      for (const c of colls)
        if (!c.attachProgram(name)) throw new Error(`${name}: ${c.program(name).status().reason}`);
      const stats = v === 'stats' ? enableRunTimeStats() : undefined;
      try {
        const before = stats ? colls.map((c) => programInfo(c.program(name).fd)) : [];
        const ns = loop();
        if (!(ns > 0)) throw new Error(`recvloop printed ${ns}`);
        per.get(v)?.push(ns);
        if (stats) {
          const after = colls.map((c) => programInfo(c.program(name).fd));
          const runs = after.reduce((a, x, i) => a + x.runCount - (before[i]?.runCount ?? 0), 0);
          const t = after.reduce((a, x, i) => a + x.runTimeNs - (before[i]?.runTimeNs ?? 0), 0);
          if (runs < calls * k) throw new Error(`stats: ${runs} runs for ${calls} calls × ${k} programs`);
          accounted.push(t / runs);
        }
      } finally {
        stats?.close();
        for (const c of colls) c.detachProgram(name);
      }
    }
    console.log(
      `rep ${rep}: ${VARIANTS.map((v) => `${v} ${fmt(per.get(v)?.at(-1), 1)}`).join(', ')} ns per call; accounted ${fmt(accounted.at(-1), 1)} ns per run`,
    );
  }
} finally {
  for (const c of [...empty, ...clock]) c.close();
  rmSync(dir, { recursive: true, force: true });
}

const base = median(per.get('none') ?? []);
const runCost = (v: Variant): string => {
  const n = v === 'one' ? 1 : k;
  const xs = (per.get(v) ?? []).map((x, i) => (x - (per.get('none')?.[i] ?? base)) / n);
  return `${fmt(median(xs), 1)} ns per run (${fmt(min(xs), 1)} … ${fmt(max(xs), 1)})`;
};
console.log(
  `\nrecv() with nothing attached: ${fmt(base, 1)} ns per call (median of ${reps}); ${k} programs:`,
);
console.log(`  the hook's only program, empty: ${runCost('one')}`);
console.log(`  empty program, no BPF_STATS:   ${runCost('empty')}`);
console.log(
  `  empty program, BPF_STATS on:   ${runCost('stats')}; the accounting reports ${fmt(median(accounted), 1)} ns per run`,
);
console.log(`  one bpf_ktime_get_ns, no stats: ${runCost('clock')}`);
