// The TypeScript layouts are generated from the committed objects' BTF (scripts/gen-layouts.ts) and
// `--check` fails when one is stale: proved on a copy of the tree where a real clang build of a changed
// struct no longer matches the committed layout.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { PN_HIST_SIZE } from '../../receiver/bpf/pn.layout.gen.ts';
import { HIST_BYTES } from '../../receiver/kit/ebpf/log2.ts';
import { generate, probeObjects, SHARED_PATH, stale } from '../../scripts/gen-layouts.ts';
import { readObject } from '../../scripts/layouts/model.ts';

const root = new URL('../../', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), `pnb-layouts-${process.pid}-`));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('the committed layouts are what the committed objects generate', () => {
  assert.deepEqual(stale(root), [], 'run npm run layouts:gen and commit');
  const files = [...generate(root).keys()];
  assert.ok(files.includes(SHARED_PATH));
  assert.ok(files.includes('probes/packetloss/packetloss.layout.gen.ts'));
});

test('every counter-map key starts with a u32 netns (what EbpfRuntime prunes by)', () => {
  for (const obj of probeObjects(root)) {
    const m = readObject(join(root, obj));
    for (const map of m.maps) {
      if (!map.key.startsWith('struct ')) continue;
      const key = m.structs.get(map.key.slice('struct '.length));
      const netns = key?.fields.find((f) => f.name === 'netns');
      if (!netns) continue;
      assert.deepEqual([netns.offset, netns.size], [0, 4], `${obj} ${map.name}: netns is not the first u32`);
    }
  }
});

test('the log2 histogram reader and struct pn_hist agree on its size', () => {
  assert.equal(HIST_BYTES, PN_HIST_SIZE);
});

/** Copies what scripts/build-bpf.sh needs to build one probe: every header under probes/ and one source. */
function copyTree(dst: string, probe: string): void {
  mkdirSync(join(dst, 'scripts'), { recursive: true });
  cpSync(join(root, 'scripts/build-bpf.sh'), join(dst, 'scripts/build-bpf.sh'));
  for (const d of readdirSync(join(root, 'probes'), { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    for (const f of readdirSync(join(root, 'probes', d.name))) {
      if (f.endsWith('.h')) cpSync(join(root, 'probes', d.name, f), join(dst, 'probes', d.name, f));
    }
  }
  const src = `probes/${probe}/${probe}.bpf.c`;
  cpSync(join(root, src), join(dst, src));
  for (const gen of [`probes/${probe}/${probe}.layout.gen.ts`, SHARED_PATH]) {
    mkdirSync(dirname(join(dst, gen)), { recursive: true });
    cpSync(join(root, gen), join(dst, gen));
  }
}

test('--check fails when a struct changed in C and its layout was not regenerated', () => {
  const tree = join(tmp, 'tree');
  copyTree(tree, 'packetloss');
  // swap two fields of the ring record: same size (the old _Static_assert(sizeof) would still pass)
  const src = join(tree, 'probes/packetloss/packetloss.bpf.c');
  const c = readFileSync(src, 'utf8');
  const swapped = c.replace(
    /(\t__u32 reason;[^\n]*\n)(\t__u32 ifindex;[^\n]*\n)/,
    (_, reason: string, ifindex: string) => ifindex + reason,
  );
  assert.notEqual(swapped, c, 'struct pl_event no longer has reason followed by ifindex: update this test');
  writeFileSync(src, swapped);
  execFileSync('sh', ['scripts/build-bpf.sh'], { cwd: tree, stdio: 'pipe' });

  const gen = 'probes/packetloss/packetloss.layout.gen.ts';
  const check = () =>
    spawnSync(process.execPath, [join(root, 'scripts/gen-layouts.ts'), '--check', '--root', tree], {
      encoding: 'utf8',
    });
  const r = check();
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`stale layouts[^]*${gen.replace(/\./g, '\\.')}`));

  // regenerating fixes it, and the new layout has the fields where clang put them
  execFileSync(process.execPath, [join(root, 'scripts/gen-layouts.ts'), '--root', tree], { stdio: 'pipe' });
  assert.equal(check().status, 0);
  const text = readFileSync(join(tree, gen), 'utf8');
  assert.match(text, /^ {2}ifindex: 24, \/\/ __u32/m);
  assert.match(text, /^ {2}reason: 28, \/\/ __u32/m);
  assert.match(readFileSync(join(root, gen), 'utf8'), /^ {2}reason: 24, \/\/ __u32/m);
});

test('--check names a generated file whose object is gone', () => {
  const tree = join(tmp, 'orphan');
  mkdirSync(join(tree, 'probes/gone'), { recursive: true });
  mkdirSync(dirname(join(tree, SHARED_PATH)), { recursive: true });
  writeFileSync(join(tree, 'probes/gone/gone.layout.gen.ts'), '// stale\n');
  const r = spawnSync(process.execPath, [join(root, 'scripts/gen-layouts.ts'), '--check', '--root', tree], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /probes\/gone\/gone\.layout\.gen\.ts \(its object is gone\)/);
});
