// A failed benchmark run records no figure (issue 19, "Honesty of the benchmark report"): a benchmark
// ending through benchmarks/lib/finish.ts with a failure exits 1 and prints nothing on stdout (its figures
// go to stderr, marked as from a failed run); run.ts turns that outcome into a section with the failures as
// its error and no table, target, note or output; RESULTS.md shows no figure of it and lists it as failed in
// the targets table, even for a section an older RESULTS.json still holds with figures.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Bench } from '../../benchmarks/lib/entries.ts';
import { FAILED_BANNER } from '../../benchmarks/lib/finish.ts';
import { MARK, renderResults, type Section } from '../../benchmarks/lib/results.ts';
import { type Outcome, toSection } from '../../benchmarks/run.ts';

const dir = mkdtempSync(join(tmpdir(), 'pnk-bench-fail-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const FINISH = new URL('../../benchmarks/lib/finish.ts', import.meta.url).pathname;

/** Runs a tiny benchmark that ends with finish(figures, failures), or finishSection(section, failures). */
function runFinish(failures: string[], section?: Section): Outcome {
  const file = join(dir, `b${failures.length}${section ? 's' : ''}.ts`);
  writeFileSync(
    file,
    section
      ? `import { finishSection } from ${JSON.stringify(FINISH)};\nfinishSection(${JSON.stringify(section)}, ${JSON.stringify(failures)});\n`
      : `import { finish } from ${JSON.stringify(FINISH)};\nfinish('| x | 42 |', ${JSON.stringify(failures)});\n`,
  );
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
  return {
    stdout: r.stdout,
    stderr: r.stderr,
    code: r.status,
    timedOut: false,
    seconds: (performance.now() - t0) / 1000,
  };
}

const bench = (suite: boolean): Bench => ({
  id: 'x',
  title: 'Per area — x',
  file: 'benchmarks/x.ts',
  args: [],
  quickArgs: [],
  suite,
  timeoutS: 10,
});

const machine = {
  date: 'd',
  os: 'o',
  kernel: 'k',
  cpus: 2,
  cpuModel: 'c',
  memoryGiB: 1,
  node: 'v24',
  loadavg: [0, 0, 0],
  iperf3: 'i',
  nodeExporter: 'n',
};

test('finish(): a passing run prints its figures on stdout and exits 0', () => {
  const r = runFinish([]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '| x | 42 |\n');
  const s = toSection(bench(false), [], r);
  assert.equal(s.error, undefined);
  assert.match(s.raw ?? '', /42/);
});

test('finish(): a failed run exits 1, stdout empty, figures on stderr marked as from a failed run', () => {
  const r = runFinish(['the probe counted 3, the kernel 4', 'only 10 of 20 answers arrived']);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.ok(r.stderr.startsWith(`${FAILED_BANNER}\n| x | 42 |\n`), r.stderr);
  const s = toSection(bench(false), [], r);
  assert.equal(
    s.error,
    'exited with code 1: the probe counted 3, the kernel 4; only 10 of 20 answers arrived',
  );
  assert.equal(s.raw, undefined);
  assert.deepEqual([s.tables, s.targets, s.notes], [[], [], []]);
  const md = renderResults(machine, [s], { command: 'c', quick: false, durationS: 1 });
  assert.doesNotMatch(md, /42/);
  assert.match(
    md,
    /\| Per area — x \| \(every target of the section\) \| {2}\| the run failed \| \*\*failed\*\* \|/,
  );
});

test('a suite section that printed its tables and then exited 1 keeps none of them', () => {
  const printed: Section = {
    id: 'x',
    title: 'Suite x',
    commands: ['node x.ts'],
    tables: [{ headers: ['a'], rows: [[12345]] }],
    targets: [{ name: 't', target: '< 1', measured: '0.5', met: true }],
    notes: ['at 12345/s'],
    data: { v: 12345 },
  };
  const r: Outcome = {
    stdout: `progress\n${MARK} ${JSON.stringify(printed)}\n`,
    stderr: 'boom\n',
    code: 1,
    timedOut: false,
    seconds: 3,
  };
  const s = toSection(bench(true), [], r);
  assert.equal(s.title, 'Suite x');
  assert.equal(s.error, 'exited with code 1: boom');
  assert.deepEqual([s.tables, s.targets, s.notes, s.data], [[], [], [], undefined]);
  // a time-out is a failure too, and so is a suite benchmark that printed no result line
  assert.match(toSection(bench(true), [], { ...r, code: null, timedOut: true }).error ?? '', /^timed out/);
  assert.match(toSection(bench(true), [], { ...r, stdout: '', code: 0 }).error ?? '', /^no result line/);
  // an older RESULTS.json section with figures and an error: rendered without them
  const md = renderResults(machine, [{ ...printed, error: 'exited with code 1' }], {
    command: 'c',
    quick: false,
    durationS: 1,
  });
  assert.doesNotMatch(md, /12345|\*\*met\*\*/);
  assert.match(md, /No figure of this run is recorded: it failed\./);
});

test('finishSection(): the result line only from a passing run', () => {
  const section: Section = {
    id: 'x',
    title: 'Suite x',
    commands: ['node x.ts'],
    tables: [{ headers: ['a'], rows: [[777]] }],
    targets: [],
    notes: [],
  };
  const ok = runFinish([], section);
  assert.equal(ok.code, 0);
  assert.equal(toSection(bench(true), [], ok).tables[0]?.rows[0]?.[0], 777);
  const bad = runFinish(['unaccounted 3'], section);
  assert.equal(bad.code, 1);
  assert.ok(!bad.stdout.includes(MARK), bad.stdout);
  assert.match(bad.stderr, /777/);
  const s = toSection(bench(true), [], bad);
  assert.equal(s.error, 'exited with code 1: unaccounted 3');
  assert.deepEqual(s.tables, []);
});
