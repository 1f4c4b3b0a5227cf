// benchmarks/run.ts's command line: a usage line for --help and for an unknown option (exit 2, no stack
// trace), and `--list | head -1` ends quietly when the pipe closes early (it died of EPIPE before).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../../benchmarks/run.ts', import.meta.url));

test('--help prints the usage; an unknown option names itself, prints the usage and exits 2', () => {
  const help = spawnSync(process.execPath, [RUN, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: node benchmarks\/run\.ts/);
  const bad = spawnSync(process.execPath, [RUN, '--bogus'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /Unknown option '--bogus'\nusage:/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
});

test('--list into a pipe closed after one line exits 0 without a stack trace', () => {
  const r = spawnSync('sh', ['-c', `"${process.execPath}" "${RUN}" --list | head -1`], {
    encoding: 'utf8',
  });
  assert.match(r.stdout, /^datapath .*\n$/, r.stdout);
  assert.doesNotMatch(r.stderr, /EPIPE|\n\s+at /, r.stderr);
});
