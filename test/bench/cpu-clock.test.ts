// benchmarks/lib/cpu-clock.ts: a process's CPU time in ns over a window, all threads including those that
// exited inside it, checked against the kernel's other accounts of the same process: getrusage(RUSAGE_SELF)
// read by the process itself (process.cpuUsage(), µs) and utime + stime of /proc/<pid>/stat (10 ms ticks).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { PreciseCpuWindow, processCpuNs } from '../../benchmarks/lib/cpu-clock.ts';

// Waits for a line on stdin, then burns 300 ms of CPU (the thread's own getrusage, not wall time: the
// machine may be loaded) in a worker thread that exits, and 150 ms on the main thread, and prints its own
// process CPU (getrusage, µs) over that; then waits to be killed.
const CHILD = `
const { Worker } = require('node:worker_threads');
const BURN = 'globalThis.burn = (ms) => { const t = process.threadCpuUsage(); for (let x = 0; ; x++) if (x % 10000 === 0) { const u = process.threadCpuUsage(t); if (u.user + u.system >= ms * 1000) return x; } };';
eval(BURN);
process.stdin.once('data', async () => {
  const u0 = process.cpuUsage();
  const w = new Worker(BURN + 'burn(300);', { eval: true });
  await new Promise((r) => w.once('exit', r));
  burn(150);
  const u1 = process.cpuUsage(u0);
  process.stdout.write(JSON.stringify({ us: u1.user + u1.system }) + '\\n');
});
setInterval(() => {}, 1000);
`;

async function line(c: ChildProcess): Promise<string> {
  let buf = '';
  for await (const chunk of c.stdout!) {
    buf += String(chunk);
    if (buf.includes('\n')) return buf.split('\n')[0]!;
  }
  throw new Error('child closed its stdout');
}

test('the CPU clock counts every thread, the exited ones too, and agrees with getrusage and /proc ticks', async () => {
  const c = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise((r) => setTimeout(r, 300)); // node started
    const win = new PreciseCpuWindow([c.pid!]).start();
    c.stdin!.write('go\n');
    const { us } = JSON.parse(await line(c)) as { us: number };
    const [r] = win.stop();
    assert.ok(r);
    const rusageS = us / 1e6;
    // The worker's 300 ms are in both (it exited before the end of the window) ...
    assert.ok(rusageS > 0.4, `getrusage counted ${rusageS} s`);
    // ... and the clock's window encloses the child's own: at least as much, and not much more (the
    // few ms between our reads and its own, plus its stdin/stdout handling).
    assert.ok(r.cpuS >= rusageS - 0.002, `clock ${r.cpuS} s < getrusage ${rusageS} s`);
    assert.ok(r.cpuS - rusageS < 0.05, `clock ${r.cpuS} s ≫ getrusage ${rusageS} s`);
    // Within the ticks' rounding of /proc/<pid>/stat (stop() throws otherwise).
    assert.ok(Math.abs(r.cpuS - r.ticksS) <= 0.021, `clock ${r.cpuS} vs ticks ${r.ticksS}`);
    // Summing the live threads' schedstat would have lost the worker: why the clock is the measure.
    const live = [...r.byThread.values()].reduce((a, b) => a + b, 0);
    assert.ok(r.cpuS - live > 0.25, `live threads ${live} s of ${r.cpuS} s: the exited worker is missing`);
  } finally {
    c.kill('SIGKILL');
    await once(c, 'exit').catch(() => undefined);
  }
});

test('a process gone before the end of the window fails the measurement', async () => {
  const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 200)'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 50));
  const win = new PreciseCpuWindow([c.pid!]).start();
  assert.ok(processCpuNs(c.pid!) > 0n);
  await once(c, 'exit');
  assert.throws(() => win.stop());
});
