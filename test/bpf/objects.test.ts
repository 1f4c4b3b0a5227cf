// The committed .bpf.o objects are exactly what their sources build to (clang output is byte-stable
// here: relative paths + -fdebug-prefix-map, DWARF stripped), so `npm start` runs what the code says.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, test } from 'node:test';

const root = new URL('../../', import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), `pnb-objs-${process.pid}-`));
after(() => rmSync(out, { recursive: true, force: true }));

test('every probes/*/*.bpf.c and receiver/bpf/selftest/*.bpf.c has a committed object identical to a fresh build', () => {
  execFileSync('sh', ['scripts/build-bpf.sh', '--out', out], { cwd: root, stdio: 'pipe' });
  const dirs = readdirSync(join(root, 'probes'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join('probes', d.name));
  dirs.push(join('receiver', 'bpf', 'selftest'));
  const sources: string[] = [];
  for (const dir of dirs) {
    for (const f of readdirSync(join(root, dir))) {
      if (f.endsWith('.bpf.c')) sources.push(join(dir, f));
    }
  }
  assert.ok(sources.length >= 2, 'no BPF sources found');
  const stale: string[] = [];
  for (const src of sources) {
    const obj = src.replace(/\.c$/, '.o');
    let committed: Buffer;
    try {
      committed = readFileSync(join(root, obj));
    } catch {
      stale.push(`${obj} (missing)`);
      continue;
    }
    // build-bpf.sh --out writes DIR/<folder name>/<prog>.bpf.o
    if (!committed.equals(readFileSync(join(out, basename(dirname(obj)), basename(obj))))) stale.push(obj);
  }
  assert.deepEqual(stale, [], `objects out of date: run npm run build:bpf and commit (${stale.join(', ')})`);
});
