// `--variant NAME=ROOT[;env:K=V][;node:FLAG]` (benchmarks/lib/variant.ts), the runtime-setting A/B of
// benchmarks/suite/node-exporter.ts and scale.ts: the modifiers parse as written, a malformed one is an
// error naming it, and a node flag the variant adds reaches podnet's node: an invalid one makes the run fail
// (exit non-zero, no figure) instead of measuring podnet without it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { describeVariant, parseVariant } from '../../benchmarks/lib/variant.ts';

const HERE = '/here/';

test('a variant parses into its root, environment and node flags', () => {
  const v = parseVariant('sgc=.;node:--single-threaded-gc;env:UV_THREADPOOL_SIZE=1;env:A=b=c', HERE);
  assert.deepEqual(v, {
    name: 'sgc',
    root: HERE,
    env: { UV_THREADPOOL_SIZE: '1', A: 'b=c' },
    nodeArgs: ['--single-threaded-gc'],
  });
  assert.equal(describeVariant(v), 'UV_THREADPOOL_SIZE=1 A=b=c --single-threaded-gc');
  assert.deepEqual(parseVariant('base=/work/base-x//', HERE), {
    name: 'base',
    root: '/work/base-x/',
    env: {},
    nodeArgs: [],
  });
  assert.equal(parseVariant('plain', HERE).root, HERE);
});

test('a malformed modifier is an error naming it', () => {
  assert.throws(() => parseVariant('x=.;nodeflag', HERE), /unknown modifier "nodeflag"/);
  assert.throws(() => parseVariant('x=.;node:max-opt=1', HERE), /unknown modifier "node:max-opt=1"/);
  assert.throws(() => parseVariant('x=.;env:NOVALUE', HERE), /unknown modifier "env:NOVALUE"/);
});

test('node-exporter.ts fails (non-zero, no figure on stdout) when a variant node flag is refused', () => {
  const r = spawnSync(
    process.execPath,
    [
      new URL('../../benchmarks/suite/node-exporter.ts', import.meta.url).pathname,
      '--quick',
      '--configs',
      'like',
      '--variant',
      'base=.',
      '--variant',
      'bad=.;node:--no-such-flag-pnk-variant-test',
    ],
    { encoding: 'utf8', timeout: 240_000 },
  );
  assert.notEqual(r.status, 0, r.stdout);
  assert.doesNotMatch(r.stdout, /CPU per scrape/);
  assert.match(r.stderr, /no-such-flag-pnk-variant-test/);
});
