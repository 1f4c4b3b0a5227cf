// No import cycles in the product code (receiver/, probes/), type-only imports included: a cycle makes the
// order modules initialize in depend on which one is imported first. The imports are read by the
// TypeScript compiler's own pre-processor (every static, type-only and dynamic import and re-export).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts')) out.push(resolve(p));
  }
  return out;
}

/** Every cycle reachable by a depth-first walk, as file paths relative to the repo. */
function importCycles(files: readonly string[]): string[][] {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const info = ts.preProcessFile(readFileSync(f, 'utf8'), true, true);
    graph.set(
      f,
      info.importedFiles
        .map((i) => i.fileName)
        .filter((s) => s.startsWith('.'))
        .map((s) => resolve(dirname(f), s))
        .filter((p) => known.has(p)),
    );
  }
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const s = state.get(m);
      if (s === 'open') cycles.push(stack.slice(stack.indexOf(m)).map((p) => relative(ROOT, p)));
      else if (s === undefined) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return cycles;
}

test('the cycle finder sees a type-only cycle (so the check below can fail)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'podnet-cycles-'));
  try {
    writeFileSync(join(dir, 'a.ts'), "import type { B } from './b.ts';\nexport type A = B;\n");
    writeFileSync(join(dir, 'b.ts'), "import {\n  type A,\n} from './a.ts';\nexport type B = A | 1;\n");
    writeFileSync(join(dir, 'c.ts'), "export { type B } from './b.ts';\n");
    const cycles = importCycles(tsFiles(dir));
    assert.equal(cycles.length, 1);
    assert.deepEqual(cycles[0]!.map((p) => p.slice(-4)).sort(), ['a.ts', 'b.ts']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('receiver/ and probes/ have no import cycles', () => {
  const files = [...tsFiles(join(ROOT, 'receiver')), ...tsFiles(join(ROOT, 'probes'))];
  assert.ok(files.length > 50, `found only ${files.length} files`);
  assert.deepEqual(importCycles(files), []);
});
