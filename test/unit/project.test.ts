import assert from 'node:assert/strict';
import { test } from 'node:test';

test('runs under Node 24 (the node@24 dev dependency is first on the PATH of npm scripts)', () => {
  const major = Number(process.versions.node.split('.')[0]);
  assert.ok(major >= 24, `expected Node >= 24, got ${process.version}`);
});
