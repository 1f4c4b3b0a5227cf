// What V8 compiled and deoptimized per collection interval, from a podnet's stdout under node --trace-opt
// --trace-deopt --trace-gc (benchmarks/suite/scale.ts --child-stdout DIR --variant 'x=.;node:--trace-opt;
// node:--trace-deopt;node:--trace-gc'). The trace lines carry no time: each counts in the interval of the
// --trace-gc line before it (ms since the isolate started; at 1,000 netns there are ~30 scavenges an
// interval, so the attribution is within ~0.5 s). Steady state means intervals with the same work each: a
// compile or deopt that recurs there is code thrown away and rebuilt.
//
//   node benchmarks/lib/v8-trace.ts FILE [--interval 15s] [--top 3]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cli } from './cli.ts';

const USAGE = `usage: node benchmarks/lib/v8-trace.ts FILE [--interval 15s] [--top N]
  FILE            a podnet's stdout under node --trace-opt --trace-deopt --trace-gc
  --interval Ns   bucket width (podnet's collection_interval; default 15s)
  --top N         most frequent deopts (function, reason) shown per bucket (default 3)`;
const o = cli(
  () =>
    parseArgs({
      allowPositionals: true,
      options: {
        interval: { type: 'string', default: '15s' },
        top: { type: 'string', default: '3' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }),
  USAGE,
);
const file = process.argv.slice(2).find((a) => !a.startsWith('-') && a !== o.interval && a !== o.top);
if (!file) {
  console.error(USAGE);
  process.exit(2);
}
const widthMs = Number(o.interval.replace(/s$/, '')) * 1000;

interface Bucket {
  compiles: number;
  osr: number;
  /** Compile time summed over the three phases V8 reports (prepare, execute on a worker, finalize), ms. */
  compileMs: number;
  deopts: number;
  markCompacts: number;
  scavenges: number;
  byDeopt: Map<string, number>;
}
const buckets = new Map<number, Bucket>();
const at = (t: number): Bucket => {
  const k = Math.floor(t / widthMs);
  let b = buckets.get(k);
  if (!b) {
    b = { compiles: 0, osr: 0, compileMs: 0, deopts: 0, markCompacts: 0, scavenges: 0, byDeopt: new Map() };
    buckets.set(k, b);
  }
  return b;
};
const GC = /^\[\d+:0x[0-9a-f]+\]\s+(\d+) ms: (Scavenge|Mark-Compact|Minor Mark-Sweep)/;
const DONE = /^\[completed compiling .*\(target \w+\)( OSR)? - took ([\d.]+), ([\d.]+), ([\d.]+) ms/;
const DEOPT = /^\[bailout \(kind: [^,]+, reason: ([^)]*)\).*<JSFunction ([^>]*?) ?\(sfi = (\w+)/;
let t = 0;
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const gc = GC.exec(line);
  if (gc) {
    t = Number(gc[1]);
    if (gc[2] === 'Mark-Compact') at(t).markCompacts++;
    else at(t).scavenges++;
    continue;
  }
  const done = DONE.exec(line);
  if (done) {
    const b = at(t);
    b.compiles++;
    if (done[1]) b.osr++;
    b.compileMs += Number(done[2]) + Number(done[3]) + Number(done[4]);
    continue;
  }
  const d = DEOPT.exec(line);
  if (d) {
    const b = at(t);
    b.deopts++;
    const key = `${d[2] || `(anonymous ${d[3]})`}: ${d[1]}`;
    b.byDeopt.set(key, (b.byDeopt.get(key) ?? 0) + 1);
  }
}
const top = Number(o.top);
console.log('from s\tcompiles\tOSR\tcompile ms\tdeopts\tmark-compacts\tscavenges\tmost frequent deopts');
for (const [k, b] of [...buckets].sort((x, y) => x[0] - y[0])) {
  const most = [...b.byDeopt]
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)
    .map(([key, n]) => `${n}× ${key}`)
    .join('; ');
  console.log(
    `${(k * widthMs) / 1000}\t${b.compiles}\t${b.osr}\t${b.compileMs.toFixed(1)}\t${b.deopts}\t${b.markCompacts}\t${b.scavenges}\t${most}`,
  );
}
