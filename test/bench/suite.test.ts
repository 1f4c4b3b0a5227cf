// Smoke test of the benchmark suite (benchmarks/run.ts): runs the suite's own benchmarks in --quick mode
// (tiny sizes, about 40-60 s) plus one per-area benchmark, into a temp file, and checks that the results
// file has the machine, the targets and every section with a command and a table, and no failure. It
// checks that the suite still works, not the timings. Needs root (netns, BPF, containerd), like the suite.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BENCHES } from '../../benchmarks/lib/entries.ts';
import type { Section } from '../../benchmarks/lib/results.ts';

const dir = mkdtempSync(join(tmpdir(), 'pnk-bench-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SUITE = ['datapath', 'events', 'scale', 'memory', 'node-exporter'];

test('every benchmark the suite runs exists', () => {
  for (const id of SUITE)
    assert.ok(
      BENCHES.some((b) => b.id === id),
      id,
    );
  for (const b of BENCHES) assert.ok(b.optional || existsSync(b.file), `${b.id}: ${b.file} missing`);
  const list = execFileSync(process.execPath, ['benchmarks/run.ts', '--list'], { encoding: 'utf8' });
  for (const b of BENCHES) assert.match(list, new RegExp(`^${b.id} `, 'm'));
});

test('run.ts --quick writes RESULTS.md and RESULTS.json with every section', { timeout: 600_000 }, () => {
  const out = join(dir, 'RESULTS.md');
  const only = [...SUITE, 'otel-pipeline'];
  execFileSync(process.execPath, ['benchmarks/run.ts', '--quick', '--only', only.join(','), '--out', out], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 580_000, // ~210 s on a quiet machine; the suite's quick runs slow down a lot under load
  });
  const md = readFileSync(out, 'utf8');
  for (const h of ['# podnet benchmark results', '## Machine', '## Targets', '## Contents'])
    assert.ok(md.includes(h), h);
  assert.match(md, /\| kernel \| \d+\.\d+/);
  assert.match(md, /\| Node\.js \| v\d+/);
  assert.ok(!md.includes('**Failed:**'), 'a benchmark failed');
  const j = JSON.parse(readFileSync(join(dir, 'RESULTS.json'), 'utf8')) as { sections: Section[] };
  assert.deepEqual(
    j.sections.map((s) => s.id),
    only,
  );
  for (const s of j.sections) {
    assert.equal(s.error, undefined, `${s.id}: ${s.error}`);
    assert.ok(md.includes(`## ${s.title}`), s.title);
    assert.ok(s.commands.length > 0 && s.commands.every((c) => md.includes(c)), `${s.id}: command`);
    if (SUITE.includes(s.id)) {
      assert.ok(s.tables.length > 0 && s.tables.every((t) => t.rows.length > 0), `${s.id}: table rows`);
    } else {
      assert.ok((s.raw ?? '').length > 0, `${s.id}: raw output`);
    }
  }
  // Targets of the issue are all listed (measured or not at quick sizes).
  const targets = j.sections.flatMap((s) => s.targets.map((t) => t.name));
  for (const t of [
    'default probes throughput cost (iperf3 ratio)',
    'all probes throughput cost (iperf3 ratio)',
    'default probes throughput cost (estimated from kernel time)',
    '1,000 netns: memory',
    '1,000 netns: CPU at a 15 s interval',
    'CPU per host scrape vs node_exporter (like-for-like)',
  ])
    assert.ok(targets.includes(t), t);
  assert.ok(targets.some((t) => t.startsWith('200,000 events/s')));
  // The event pipeline's accounting holds even at quick sizes.
  const ev = j.sections.find((s) => s.id === 'events')!.data as {
    unaccounted: number;
    sent: number;
    sinkReceived: number;
  }[];
  for (const r of ev) {
    assert.equal(r.unaccounted, 0);
    assert.equal(r.sinkReceived, r.sent);
  }
});
