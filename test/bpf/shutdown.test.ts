// SIGTERM and kill -9 of a process that loaded and attached programs leave nothing attached or loaded
// (checked with bpftool, by program id and in the link list).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { waitFor } from './selftest-object.ts';

const fixture = new URL('./fixtures/hold-programs.ts', import.meta.url).pathname;

function progExists(id: number): boolean {
  try {
    execFileSync('bpftool', ['prog', 'show', 'id', String(id)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function linkedProgIds(): Set<number> {
  const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' }) || '[]') as {
    prog_id?: number;
  }[];
  return new Set(links.map((l) => l.prog_id ?? -1));
}

async function startHolder(): Promise<{
  child: ReturnType<typeof spawn>;
  ids: number[];
  output: () => string;
}> {
  const child = spawn(process.execPath, [fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const ok = await waitFor(() => out.includes('\n') || child.exitCode !== null, 20000);
  assert.ok(ok && out.includes('\n'), `holder did not start: ${err}`);
  const { progIds } = JSON.parse(out.split('\n')[0]!) as { progIds: number[] };
  assert.ok(progIds.length >= 1);
  return { child, ids: progIds, output: () => out };
}

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  test(`${signal} of the loading process leaves no program attached or loaded`, async () => {
    const { child, ids, output } = await startHolder();
    for (const id of ids) {
      assert.ok(progExists(id), `program ${id} should be loaded`);
      assert.ok(linkedProgIds().has(id), `program ${id} should be attached (a link)`);
    }
    const exited = once(child, 'exit');
    child.kill(signal);
    const [code, sig] = (await exited) as [number | null, string | null];
    if (signal === 'SIGTERM') {
      assert.equal(code, 143, 'clean exit with 128+SIGTERM after closing everything');
      const report = JSON.parse(output().split('\n')[1] ?? '{}') as {
        remaining?: string[];
        stillLoaded?: number[];
      };
      assert.deepEqual(report.remaining, [], 'closeAll released every collection and ring reader');
      assert.ok(report.stillLoaded, 'no shutdown report');
    } else assert.equal(sig, 'SIGKILL');
    // the kernel frees programs once the last fd is gone (may take an RCU grace period)
    assert.ok(await waitFor(() => ids.every((id) => !progExists(id)), 5000), 'program still loaded');
    const linked = linkedProgIds();
    assert.ok(
      ids.every((id) => !linked.has(id)),
      'a link still references the program',
    );
  });
}
