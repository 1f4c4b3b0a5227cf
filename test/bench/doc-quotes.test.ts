// Docs quote benchmark figures with their source (benchmarks/lib/doc-quotes.ts): `(benchmarks/RESULTS.md,
// «section», YYYY-MM-DD)`. Every quote in the repo's Markdown names a section benchmarks/RESULTS.md has,
// with the day it ran, and says `failed` exactly when that run failed; a `not yet run` quote names a
// benchmark of the suite whose section is not in the file. When RESULTS.md is regenerated this test fails
// on every quote of a re-run section until its figures and date are updated (`node
// benchmarks/lib/doc-quotes.ts` lists them).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkDocs, checkQuote, quotesIn, resultSections } from '../../benchmarks/lib/doc-quotes.ts';
import { BENCHES } from '../../benchmarks/lib/entries.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('every benchmark figure quoted in the docs names a RESULTS.md section and the day it ran', () => {
  const { quotes, problems } = checkDocs(ROOT);
  assert.deepEqual(
    problems.map((p) => `${p.quote.file}:${p.quote.line}: ${p.problem}`),
    [],
  );
  // the docs this was written for quote some (a checker that finds none checks nothing)
  for (const f of ['docs/probes-ebpf.md', 'docs/receiver.md', 'docs/pods.md', 'docs/deploy.md'])
    assert.ok(
      quotes.some((q) => q.file === f && q.date !== undefined),
      `${f} quotes no RESULTS.md section with its date`,
    );
  for (const q of quotes.filter((q) => q.pending))
    assert.ok(
      BENCHES.some((b) => b.title === q.title),
      `${q.file}:${q.line}: «${q.title}» is not a benchmark of benchmarks/run.ts`,
    );
});

test('a stale, unknown, undated or failed-run quote is reported', () => {
  const results = [
    '# podnet benchmark results',
    '## A: passed',
    '_Ran 12 s at 2026-12-07T01:02:03.000Z, 1-min load average 0.2 at its start._',
    '| x | 1 |',
    '## B: failed',
    '_Ran 5 s at 2026-12-06T23:59:59.000Z._',
    '**Failed:** `exited with code 1: boom`',
  ].join('\n');
  const sections = resultSections(results);
  assert.deepEqual(sections.get('A: passed'), { title: 'A: passed', date: '2026-12-07', failed: false });
  assert.deepEqual(sections.get('B: failed'), { title: 'B: failed', date: '2026-12-06', failed: true });
  const doc = [
    'ok: 1 (benchmarks/RESULTS.md, «A:',
    '  passed», 2026-12-07).', // wrapped over two lines
    'stale: 1 (benchmarks/RESULTS.md, «A: passed», 2026-12-02).',
    'unknown: (benchmarks/RESULTS.md, «C», 2026-12-07).',
    'failed, said: (benchmarks/RESULTS.md, «B: failed», 2026-12-06, failed).',
    'failed, quoted as a result: 5 (benchmarks/RESULTS.md, «B: failed», 2026-12-06).',
    'passed, said failed: (benchmarks/RESULTS.md, «A: passed», 2026-12-07, failed).',
    'pending: (benchmarks/RESULTS.md, «D», not yet run).',
    'pending, but has run: (benchmarks/RESULTS.md, «A: passed», not yet run).',
    'undated, other form: 1, benchmarks/RESULTS.md, section «A: passed».',
    'other form, stale: 1, benchmarks/RESULTS.md, section «A: passed», 2026-12-01.',
    'in code, the form only: `(benchmarks/RESULTS.md, «section», date)`.',
  ].join('\n');
  const quotes = quotesIn('doc.md', doc);
  assert.deepEqual(
    quotes.map((q) => [q.line, checkQuote(q, sections) ?? 'ok']),
    [
      [1, 'ok'],
      [
        3,
        'section «A: passed» ran on 2026-12-07, the quote says 2026-12-02: update the figures and the date',
      ],
      [4, 'no section «C» in benchmarks/RESULTS.md'],
      [5, 'ok'],
      [6, 'section «B: failed» failed: quote no figure of it (say ", failed")'],
      [7, 'section «A: passed» passed: its figures can be quoted now'],
      [8, 'ok'],
      [9, 'section «A: passed» has run (2026-12-07): quote its figures and date'],
      [10, 'ok'],
      [
        11,
        'section «A: passed» ran on 2026-12-07, the quote says 2026-12-01: update the figures and the date',
      ],
    ],
  );
  // --strict: a quote must carry its date
  assert.equal(
    checkQuote(quotes[8]!, sections, true),
    'undated: section «A: passed» ran on 2026-12-07; say so',
  );
});
