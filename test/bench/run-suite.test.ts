// benchmarks/run.ts end to end with two tiny benchmarks (one passes, one fails its check): the suite reports
// the failure (npm run bench exits 1 on it), RESULTS.md holds the passing one's figures and none of the
// failed one's, and with --only semantics (merge) it keeps the sections of RESULTS.json, including one that
// another invocation wrote while this one ran.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Bench } from '../../benchmarks/lib/entries.ts';
import type { Section } from '../../benchmarks/lib/results.ts';
import { runSuite } from '../../benchmarks/run.ts';

const dir = mkdtempSync(join(tmpdir(), 'pnk-run-suite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const FINISH = new URL('../../benchmarks/lib/finish.ts', import.meta.url).pathname;
const OUT = join(dir, 'RESULTS.md');
const JSON_OUT = join(dir, 'RESULTS.json');

const kept = (id: string, title: string, figure: number): Section => ({
  id,
  title,
  commands: [`node ${id}.ts`],
  tables: [{ headers: ['v'], rows: [[figure]] }],
  targets: [],
  notes: [],
});

function bench(id: string, body: string): Bench {
  const file = join(dir, `${id}.ts`);
  writeFileSync(file, `import { finish } from ${JSON.stringify(FINISH)};\n${body}\n`);
  return { id, title: `T ${id}`, file, args: [], quickArgs: [], suite: false, timeoutS: 60 };
}

test('a failed benchmark fails the suite and leaves no figure; merged sections are kept', async () => {
  writeFileSync(JSON_OUT, JSON.stringify({ sections: [kept('peers', 'Earlier peers', 5150)] }));
  // While it runs, "another invocation" adds its section to RESULTS.json.
  const concurrent = JSON.stringify({
    sections: [kept('peers', 'Earlier peers', 5150), kept('dns', 'Concurrent dns', 6160)],
  });
  const pass = bench(
    'pass-x',
    `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(JSON_OUT)}, ${JSON.stringify(concurrent)});\nfinish('| passed figure | 1111 |', []);`,
  );
  const fail = bench('fail-x', `finish('| failed figure | 4242 |', ['the counter was off by 3']);`);
  const { failed } = await runSuite({
    benches: [pass, fail],
    quick: false,
    out: OUT,
    merge: true,
    command: 'node benchmarks/run.ts --only pass-x,fail-x',
  });
  assert.deepEqual(failed, ['fail-x']);
  const j = JSON.parse(readFileSync(JSON_OUT, 'utf8')) as { sections: Section[] };
  assert.deepEqual(
    j.sections.map((s) => s.id),
    ['dns', 'peers', 'pass-x', 'fail-x'],
  );
  const f = j.sections.find((s) => s.id === 'fail-x')!;
  assert.equal(f.error, 'exited with code 1: the counter was off by 3');
  assert.equal(f.raw, undefined);
  assert.ok((f.durationS ?? 0) > 0 && f.measuredAt !== undefined);
  const md = readFileSync(OUT, 'utf8');
  assert.match(md, /1111/);
  assert.match(md, /5150/);
  assert.match(md, /6160/);
  assert.doesNotMatch(md, /4242/);
  assert.match(
    md,
    /\| T fail-x \| \(every target of the section\) \| {2}\| the run failed \| \*\*failed\*\* \|/,
  );
  assert.match(md, /\*\*Failed:\*\* `exited with code 1: the counter was off by 3`/);
});
