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
import { objectFile } from '../../scripts/layouts/emit.ts';
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

/**
 * Hash maps whose key does not start with a `__u32 netns` field, and why nothing per netns is left behind
 * in them when a netns goes. Every other hash map of every object must have that field first (the
 * runtime prunes counter maps by it); a new map is either one or the other.
 */
const NOT_NETNS_FIRST: Readonly<Record<string, string>> = {
  'dns/dns_tc_ifindex': 'key = host veth ifindex; deleted when the veth is detached (VethAttacher onDetach)',
  'dns/dns_tc_netns': 'key = the netns inode itself (a __u32); deleted with dns_tc_ifindex',
  'flow/flow_counts': 'key starts with addresses; entries deleted by the veth ifindex on detach (flow.ts)',
  'netiftxlat/nt_hist': 'key = the netns inode itself (a __u32): pruned by the runtime like the others',
  'netiftxlat/nt_queued': 'key = an skb address: one in-flight packet, deleted at transmit (LRU bounded)',
};
const HASH_TYPES = new Set(['hash', 'percpu_hash', 'lru_hash', 'lru_percpu_hash']);

test('every hash-map key starts with a u32 netns (what EbpfRuntime prunes by), or is listed with why not', () => {
  const listed = new Set<string>();
  for (const obj of probeObjects(root)) {
    const m = readObject(join(root, obj));
    const probe = obj.split('/')[1]!;
    for (const map of m.maps) {
      if (!HASH_TYPES.has(map.type) || map.name === 'pn_watched') continue; // pn_watched: the netns set itself
      const id = `${probe}/${map.name}`;
      const key = map.key.startsWith('struct ') ? m.structs.get(map.key.slice('struct '.length)) : undefined;
      const first = key?.fields[0];
      const netnsFirst = first?.name === 'netns' && first.offset === 0 && first.size === 4;
      if (NOT_NETNS_FIRST[id]) {
        listed.add(id);
        assert.ok(!netnsFirst, `${id} now starts with netns: remove it from NOT_NETNS_FIRST`);
        continue;
      }
      assert.ok(netnsFirst, `${obj} ${map.name} (key ${map.key}): netns is not the first u32`);
    }
  }
  assert.deepEqual([...listed].sort(), Object.keys(NOT_NETNS_FIRST).sort(), 'stale NOT_NETNS_FIRST entries');
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

test('network-order fields (__be16 / __be32) get big-endian readers', () => {
  const dir = join(tmp, 'be');
  mkdirSync(dir, { recursive: true });
  const src = join(dir, 'be.bpf.c');
  // the typedefs as the kernel's linux/types.h (and vmlinux.h) spell them
  writeFileSync(
    src,
    `typedef unsigned short __u16;
typedef unsigned int __u32;
typedef __u16 __be16;
typedef __u32 __be32;
struct be_rec { __be16 port; __u16 host; __be32 addr; const __be16 cport; };
const struct be_rec *const pn_layout_be_rec __attribute__((used)) = 0;
`,
  );
  const obj = join(dir, 'be.bpf.o');
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-c', src, '-o', obj]);
  const m = readObject(obj).structs.get('be_rec');
  assert.deepEqual(
    m?.fields.map((f) => [f.name, f.offset, f.reader]),
    [
      ['port', 0, { kind: 'int', size: 2, signed: false, bigEndian: true }],
      ['host', 2, { kind: 'int', size: 2, signed: false }],
      ['addr', 4, { kind: 'int', size: 4, signed: false, bigEndian: true }],
      ['cport', 8, { kind: 'int', size: 2, signed: false, bigEndian: true }],
    ],
  );
  // and the generated readers read them in network order
  const text = objectFile({
    source: 'be.bpf.o',
    programs: [],
    maps: [],
    rodata: [],
    structs: [m!],
    shared: '',
  });
  assert.match(text, /^ {2}port: \(v: DataView, o: number\): number => v\.getUint16\(o, false\),$/m);
  assert.match(text, /^ {2}host: \(v: DataView, o: number\): number => v\.getUint16\(o \+ 2, true\),$/m);
  assert.match(text, /^ {2}addr: \(v: DataView, o: number\): number => v\.getUint32\(o \+ 4, false\),$/m);
});
