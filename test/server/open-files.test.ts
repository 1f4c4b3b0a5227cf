// The open-file limit: podnet started with a low soft limit (prlimit 256, hard 4096) runs with the soft
// limit at the hard one (Node raises it at start), as the kernel shows in /proc/<pid>/limits; the low hard
// limit is warned about; /status reports the limits and the descriptors open (compared with /proc/<pid>/fd).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { disableRegistered, MAIN, NODE } from '../cli/podnet-process.ts';

test('podnet runs at the hard RLIMIT_NOFILE, warns when it is low, and reports it in /status', async () => {
  const dir = mkdtempSync(join(tmpdir(), `pno${process.pid}-nofile-`));
  const config = join(dir, 'podnet.yaml');
  writeFileSync(config, `server: { address: "127.0.0.1:0" }\nprobes: { ${disableRegistered()} }\n`);
  const child = spawn('prlimit', ['--nofile=256:4096', NODE, MAIN, 'run', '--config', config], {
    env: { ...process.env, PODNET_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  try {
    let url = '';
    const deadline = Date.now() + 30_000;
    while (!url && Date.now() < deadline) {
      url = /"url":"(http:\/\/[^"]+)","msg":"local server listening"/.exec(stderr)?.[1] ?? '';
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(url, stderr);
    // prlimit execs node: same pid
    const limits = readFileSync(`/proc/${child.pid}/limits`, 'utf8');
    assert.match(limits, /^Max open files\s+4096\s+4096\s+files/m);
    assert.match(
      stderr,
      /"soft":4096,"hard":4096,"recommended":16384,"msg":"the open-file limit \(RLIMIT_NOFILE\) is low/,
    );
    const s = (await (await fetch(`${url}/status`)).json()) as {
      limits: { openFiles: { soft: number; hard: number; open: number } };
    };
    assert.equal(s.limits.openFiles.soft, 4096);
    assert.equal(s.limits.openFiles.hard, 4096);
    const fds = readdirSync(`/proc/${child.pid}/fd`).length;
    // The same process between two reads: the /status request's own socket and the directory read may
    // come and go, a handful of descriptors either way.
    assert.ok(Math.abs(s.limits.openFiles.open - fds) <= 4, `${s.limits.openFiles.open} vs ${fds}`);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
