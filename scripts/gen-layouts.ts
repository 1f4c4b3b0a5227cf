// Generates the TypeScript layouts of the eBPF probes from the BTF of their committed objects, as
// cilium/ebpf's bpf2go does: one `probes/<name>/<obj>.layout.gen.ts` per `probes/<name>/<obj>.bpf.o`
// (programs, maps, .rodata tunables, struct offsets, sizes and typed readers) and one file for the
// structs of the shared headers (pn_*), which must be identical in every object.
//   node scripts/gen-layouts.ts                write the files (and delete those of objects that are gone)
//   node scripts/gen-layouts.ts --check        exit 1 when a committed file is stale, missing or orphaned
//   node scripts/gen-layouts.ts --root DIR     work on another tree (the test of --check uses it)
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { objectFile, sharedFile } from './layouts/emit.ts';
import { readObject, type StructModel } from './layouts/model.ts';

/** Where the shared pn_* layouts go, relative to the root. */
export const SHARED_PATH = 'receiver/bpf/pn.layout.gen.ts';
export const GEN_SUFFIX = '.layout.gen.ts';
const SHARED_PREFIX = 'pn_';

/** `probes/<dir>/<obj>.bpf.o`, sorted, relative to `root`. */
export function probeObjects(root: string): string[] {
  const out: string[] = [];
  const probes = join(root, 'probes');
  for (const d of readdirSync(probes, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    for (const f of readdirSync(join(probes, d.name))) {
      if (f.endsWith('.bpf.o')) out.push(`probes/${d.name}/${f}`);
    }
  }
  return out.sort();
}

/** Committed generated files under probes/ (to find those whose object is gone). */
function committedGenerated(root: string): string[] {
  const out: string[] = [];
  const probes = join(root, 'probes');
  for (const d of readdirSync(probes, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    for (const f of readdirSync(join(probes, d.name))) {
      if (f.endsWith(GEN_SUFFIX)) out.push(`probes/${d.name}/${f}`);
    }
  }
  return out;
}

export function generatedPath(object: string): string {
  return object.replace(/\.bpf\.o$/, GEN_SUFFIX);
}

/** Every generated file's path (relative to root) → its text. Throws when shared structs disagree. */
export function generate(root: string): Map<string, string> {
  const objects = probeObjects(root);
  const shared = new Map<string, { model: StructModel; from: string }>();
  const out = new Map<string, string>();
  for (const obj of objects) {
    const m = readObject(join(root, obj));
    const own: StructModel[] = [];
    for (const s of m.structs.values()) {
      if (!s.name.startsWith(SHARED_PREFIX)) {
        own.push(s);
        continue;
      }
      const seen = shared.get(s.name);
      if (!seen) shared.set(s.name, { model: s, from: obj });
      else if (JSON.stringify(seen.model) !== JSON.stringify(s)) {
        throw new Error(
          `struct ${s.name} differs between ${seen.from} and ${obj}: rebuild both (npm run build:bpf)`,
        );
      }
    }
    const gen = generatedPath(obj);
    const sharedImport = relative(join(root, gen, '..'), join(root, SHARED_PATH));
    out.set(
      gen,
      objectFile({
        source: obj,
        programs: m.programs,
        maps: m.maps,
        rodata: m.rodata,
        structs: own,
        shared: sharedImport,
      }),
    );
  }
  const structs = [...shared.values()].map((s) => s.model).sort((a, b) => (a.name < b.name ? -1 : 1));
  out.set(SHARED_PATH, sharedFile(structs));
  return out;
}

/** Paths (relative to root) whose committed text differs from what the objects generate. */
export function stale(root: string): string[] {
  const want = generate(root);
  const out: string[] = [];
  for (const [path, text] of want) {
    const file = join(root, path);
    if (!existsSync(file)) out.push(`${path} (missing)`);
    else if (readFileSync(file, 'utf8') !== text) out.push(path);
  }
  for (const path of committedGenerated(root)) if (!want.has(path)) out.push(`${path} (its object is gone)`);
  return out;
}

function main(argv: readonly string[]): number {
  const i = argv.indexOf('--root');
  const root = i >= 0 && argv[i + 1] ? argv[i + 1]! : new URL('..', import.meta.url).pathname;
  if (argv.includes('--check')) {
    const bad = stale(root);
    if (bad.length === 0) return 0;
    process.stderr.write(
      `gen-layouts: stale layouts (run \`npm run build:bpf && npm run layouts:gen\` and commit):\n${bad.map((b) => `  ${b}\n`).join('')}`,
    );
    return 1;
  }
  const want = generate(root);
  for (const [path, text] of want) {
    const file = join(root, path);
    if (existsSync(file) && readFileSync(file, 'utf8') === text) continue;
    writeFileSync(file, text);
    process.stdout.write(`gen-layouts: wrote ${path}\n`);
  }
  for (const path of committedGenerated(root)) {
    if (want.has(path)) continue;
    unlinkSync(join(root, path));
    process.stdout.write(`gen-layouts: deleted ${path} (its object is gone)\n`);
  }
  return 0;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
