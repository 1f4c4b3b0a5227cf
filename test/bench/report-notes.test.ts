// The report's honesty notes (benchmarks/lib/results.ts, benchmarks/lib/event-capacity.ts): sections of
// two run.ts invocations that overlapped in time say so next to their figures; the events capacity is
// bound by the one export worker thread, not the whole process's CPU spread over every core.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capacityNote } from '../../benchmarks/lib/event-capacity.ts';
import { overlapping, renderResults, type Section } from '../../benchmarks/lib/results.ts';

const section = (id: string, at: string, durationS: number): Section => ({
  id,
  title: `T ${id}`,
  commands: [`node ${id}.ts`],
  tables: [],
  targets: [],
  notes: [],
  measuredAt: at,
  durationS,
});

test('sections whose runs overlapped in time name each other; back-to-back ones do not', () => {
  // One invocation: a then b back to back; another: c during both, d after everything.
  const a = section('a', '2026-12-02T15:00:00.000Z', 60);
  const b = section('b', '2026-12-02T15:01:00.000Z', 60);
  const c = section('c', '2026-12-02T15:00:30.000Z', 45);
  const d = section('d', '2026-12-02T15:05:00.000Z', 10);
  const all = [a, b, c, d];
  assert.deepEqual(
    overlapping(a, all).map((s) => s.id),
    ['c'],
  );
  assert.deepEqual(
    overlapping(c, all).map((s) => s.id),
    ['a', 'b'],
  );
  assert.deepEqual(overlapping(d, all), []);
  const md = renderResults(
    {
      date: 'x',
      os: 'x',
      kernel: 'x',
      cpus: 2,
      cpuModel: 'x',
      memoryGiB: 1,
      node: 'x',
      loadavg: [0, 0, 0],
      iperf3: 'x',
      nodeExporter: 'x',
    } as never,
    all,
    { command: 'x', quick: false, durationS: 1 },
  );
  const part = (id: string) =>
    md.slice(md.indexOf(`## T ${id}`), md.indexOf('## ', md.indexOf(`## T ${id}`) + 3));
  assert.match(part('c'), /Ran in parallel with “T a”, “T b”/);
  assert.doesNotMatch(part('d'), /Ran in parallel/);
});

test('events capacity: the export worker bounds it at one core', () => {
  // The 2026-12-02 row at 200,000/s offered: 82,562/s exported, process 80.5 %, export worker 55.3 %.
  const row = {
    rate: 200_000,
    sentPerS: 82_562,
    cpuPct: 80.5,
    workerCpuPct: 55.3,
    lostQueueFull: 1_101_968,
    lostExportFailed: 0,
  };
  const note = capacityNote([row], 2) ?? '';
  // Worker: 6.70 µs per event → ~149,000/s on its one core; the rest 3.05 µs → ~328,000/s on the other.
  assert.match(note, /tops out at about 149,298 exported events\/s/);
  assert.match(note, /bound by the export worker thread/);
  assert.match(note, /not 205,123\/s/);
  assert.equal(capacityNote([{ ...row, rate: 10_000 }], 2), undefined, 'only rates ≥ 100k/s count');
});
