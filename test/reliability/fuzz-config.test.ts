// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${env:...} references are config input here, not templates.
// Fuzzed configs: random mutations of docs/podnet.example.yaml (every key of it: deleted, retyped,
// renamed with a typo, given huge/negative/odd values, extra keys added) and random YAML-ish text (syntax
// soup, alias bombs, deep nesting, ${env:} references, binary bytes). Each must be accepted or rejected
// with a ConfigError whose every issue names a key path (or `(yaml)`/`(root)` with a line), never any other
// exception. Seeded (PODNET_FUZZ_SEED) so a failure is reproducible; PODNET_FUZZ_ROUNDS sets the count.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { probeSpecs } from '../../probes/registry.ts';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { ConfigError, resolveConfigText } from '../../receiver/config/load.ts';
import { MAIN, NODE } from './lib.ts';

const SEED = Number(process.env['PODNET_FUZZ_SEED'] ?? 20261126);
const ROUNDS = Number(process.env['PODNET_FUZZ_ROUNDS'] ?? 1000);
const EXAMPLE = readFileSync(new URL('../../docs/podnet.example.yaml', import.meta.url), 'utf8');
const specs = [...probeSpecs, syntheticSpec];

function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

const rnd = prng(SEED);
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

const ODD_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1e308,
  -1e308,
  2 ** 53 + 1,
  0.5,
  '',
  ' ',
  'x'.repeat(100_000),
  '10',
  '10x',
  '-5s',
  '1e3ms',
  '0ms',
  '999999h',
  'NaN',
  'Infinity',
  '127.0.0.1:-1',
  '[::1]:65536',
  '::::',
  'http://',
  'ftp://x',
  'unix:///tmp/x',
  '../../etc/passwd',
  '$(id)',
  '${env:HOME}',
  '${env:PODNET_FUZZ_UNSET}',
  '${env:}',
  '${env:A:-${env:B}}',
  '\u0000\u0001',
  '💥',
  [],
  [1, 'a', null],
  {},
  { enabled: 'yes' },
  { a: { b: { c: [] } } },
];

/** Paths of every node in the example document. */
function paths(node: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  if (isMap(node))
    for (const it of node.items) {
      const k = isScalar(it.key) ? String(it.key.value) : String(it.key);
      const p = [...prefix, k];
      out.push(p);
      paths(it.value, p, out);
    }
  else if (isSeq(node))
    node.items.forEach((v, i) => {
      out.push([...prefix, i]);
      paths(v, [...prefix, i], out);
    });
  return out;
}

function mutateExample(): string {
  const doc = parseDocument(EXAMPLE);
  const all = paths(doc.contents);
  for (let m = 1 + int(4); m > 0; m--) {
    const path = pick(all);
    const op = int(6);
    try {
      if (op === 0) doc.deleteIn(path);
      else if (op === 1 || op === 2) doc.setIn(path, pick(ODD_VALUES));
      else if (op === 3) {
        // a typo in the key
        const v = doc.getIn(path, true) as YamlNode | undefined;
        doc.deleteIn(path);
        const last = String(path[path.length - 1]);
        doc.setIn([...path.slice(0, -1), `${last.slice(0, -1)}${pick(['_', 's', 'S', '-', ''])}`], v ?? null);
      } else if (op === 4) doc.setIn([...path.slice(0, -1), `unknown_${int(100)}`], pick(ODD_VALUES));
      else doc.setIn(path, doc.createNode(pick(ODD_VALUES)));
    } catch {
      // setIn below a scalar: the yaml library refuses; just skip this mutation
    }
  }
  return doc.toString({ lineWidth: 0 });
}

const SOUP = [
  ':',
  '- ',
  '{',
  '}',
  '[',
  ']',
  '&a ',
  '*a',
  '!!binary ',
  '!!str ',
  '!custom ',
  '? ',
  '|',
  '>',
  '#',
  '"',
  "'",
  '\t',
  '\n',
  '  ',
  '---\n',
  '...\n',
  '%YAML 1.2\n',
  'probes',
  'server',
  'collection_interval',
  'enabled',
  'true',
  '${env:X}',
  '<<: ',
  '\u0000',
  '\ufeff',
];

function soup(): string {
  const n = 1 + int(60);
  let s = '';
  for (let i = 0; i < n; i++) s += pick(SOUP);
  return s;
}

function special(i: number): string {
  switch (i % 8) {
    case 0: {
      // billion laughs
      let t = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n';
      for (let k = 1; k < 9; k++)
        t += `${String.fromCharCode(97 + k)}: &${String.fromCharCode(97 + k)} [${Array(10)
          .fill(`*${String.fromCharCode(96 + k)}`)
          .join(',')}]\n`;
      return `${t}probes: *i\n`;
    }
    case 1:
      return `probes: ${'['.repeat(5000)}${']'.repeat(5000)}\n`;
    case 2:
      return `probes:\n${Array.from({ length: 200 }, (_, k) => `${'  '.repeat(k + 1)}k${k}:`).join('\n')} 1\n`;
    case 3:
      return Buffer.from(Array.from({ length: 256 }, () => int(256))).toString('latin1');
    case 4:
      return 'server: { address: 127.0.0.1:9464, address: 0.0.0.0:1 }\n';
    case 5:
      return `metrics: { ${Array.from({ length: 2000 }, (_, k) => `m${k}: { enabled: true }`).join(', ')} }\n`;
    case 6:
      return '<<: { collection_interval: 1s }\nprobes: { <<: *nope }\n';
    default:
      return `collection_interval: \${env:${'A'.repeat(int(3000))}}\n`;
  }
}

function check(text: string, label: string): 'ok' | 'error' {
  try {
    resolveConfigText(text, 'fuzz.yaml', { specs, env: { HOME: '/root', A: '1s' } });
    return 'ok';
  } catch (err) {
    if (!(err instanceof ConfigError))
      assert.fail(
        `${label}: ${(err as Error)?.constructor?.name} escaped instead of a ConfigError: ${String(err).slice(0, 300)}\n--- input (seed ${SEED}) ---\n${text.slice(0, 2000)}`,
      );
    assert.ok(err.issues.length > 0, label);
    for (const i of err.issues) {
      // A path names keys as the user wrote them (an unknown key may hold any character) — on one line.
      assert.match(i.path, /^[^\n]{1,400}$/, `${label}: issue path ${JSON.stringify(i.path)}`);
      assert.ok(
        i.message.length > 0 && i.message.length < 2000,
        `${label}: message ${i.message.slice(0, 200)}`,
      );
      if (i.path === '(yaml)') assert.match(i.message, /^line \d+ column \d+: /);
    }
    return 'error';
  }
}

test(`config fuzz: ${ROUNDS} mutations of the example config (seed ${SEED})`, () => {
  const tally = { ok: 0, error: 0 };
  for (let i = 0; i < ROUNDS; i++) tally[check(mutateExample(), `mutation ${i}`)]++;
  assert.ok(tally.ok > 0 && tally.error > ROUNDS / 4, JSON.stringify(tally));
});

test(`config fuzz: ${ROUNDS} random YAML texts and pathological documents (seed ${SEED})`, () => {
  const tally = { ok: 0, error: 0 };
  for (let i = 0; i < ROUNDS; i++) tally[check(soup(), `soup ${i}`)]++;
  for (let i = 0; i < 16; i++) tally[check(special(i), `special ${i % 8}`)]++;
  assert.ok(tally.error > ROUNDS / 2, JSON.stringify(tally));
});

test('podnet validate: an unresolved alias, an alias bomb and a 100 kB value exit 2 with a short, precise message', () => {
  const dir = mkdtempSync(join(tmpdir(), `pnr${process.pid}-fuzz-`));
  try {
    for (const [text, re] of [
      ['probes: *nope\n', /\(yaml\): line 1 column 1: Unresolved alias/],
      [special(0), /\(yaml\): .*alias/i],
      [
        `collection_interval: "${'9'.repeat(100_000)}"\n`,
        /collection_interval: got "9{200}\.\.\." \(100000 characters\)/,
      ],
    ] as const) {
      const f = join(dir, 'c.yaml');
      writeFileSync(f, text);
      const r = spawnSync(NODE, [MAIN, 'validate', '--config', f], { encoding: 'utf8' });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, re);
      assert.ok(r.stderr.length < 4000, `message of ${r.stderr.length} characters`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'a stack trace');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
