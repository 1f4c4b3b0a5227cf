// glibc's malloc arenas (receiver/agent/malloc-arenas.ts): `npm start` and the `podnet` bin give node
// MALLOC_ARENA_MAX=2 unless the caller set it (read from the node process's /proc/<pid>/environ, the kernel's
// copy of what exec received); podnet started some other way caps the arenas itself and says so; and what the
// cap does is checked on the arenas themselves — counted from /proc/<pid>/maps, a count first checked against
// glibc's own malloc_stats() — including the secure-execution case of the image (file capabilities), where
// glibc ignores the variable.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { disableRegistered, NODE, ROOT } from '../cli/podnet-process.ts';
import { arenaHeaps } from './arenas.ts';

const dir = mkdtempSync(join(tmpdir(), `pna${process.pid}-arenas-`));
chmodSync(dir, 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));
const config = join(dir, 'podnet.yaml');
writeFileSync(
  config,
  `collection_interval: 1s\nserver: { address: "127.0.0.1:0" }\nprobes: { ${disableRegistered()} }\n`,
);
execOk('sh', [join(ROOT, 'scripts/build.sh')]);

function execOk(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}`);
}

/** The environment without MALLOC_ARENA_MAX, plus `extra`. */
function envWith(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PODNET_LOG_LEVEL: 'info', ...extra };
  if (!('MALLOC_ARENA_MAX' in extra)) delete env['MALLOC_ARENA_MAX'];
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
  env['PATH'] = `${join(ROOT, 'node_modules/.bin')}:${env['PATH'] ?? '/usr/bin:/bin'}`;
  return env;
}

/** The node process running dist/receiver/cli/main.js: `pid` itself or a descendant (npm → sh → node). */
function podnetNode(pid: number): number | undefined {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // exited meanwhile
    }
  }
  for (const queue = [pid]; queue.length > 0; ) {
    const p = queue.shift()!;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (
        /\/node$/.test(realpathSync(`/proc/${p}/exe`)) &&
        argv.some((a) => a.endsWith('dist/receiver/cli/main.js'))
      )
        return p;
    } catch {
      // exited meanwhile
    }
    queue.push(...(children.get(p) ?? []));
  }
  return undefined;
}

interface Started {
  /** MALLOC_ARENA_MAX in the node process's environment as exec gave it, or undefined. */
  environ: string | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: /status is dynamic JSON.
  status: any;
  stderr: string;
  heaps: number;
}

/** Starts podnet with this command, waits for its server and two collections, reads it, stops it. */
async function startPodnet(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Started> {
  const child: ChildProcess = spawn(cmd, args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    let url = '';
    for (const deadline = Date.now() + 120_000; !url && Date.now() < deadline; ) {
      url = /"url":"(http:\/\/[^"]+)","msg":"local server listening"/.exec(stderr)?.[1] ?? '';
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(url, `podnet did not start:\n${stderr}`);
    const pid = podnetNode(child.pid!);
    assert.ok(pid, 'the node process running dist/receiver/cli/main.js');
    const vars = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const environ = vars.find((v) => v.startsWith('MALLOC_ARENA_MAX='))?.slice('MALLOC_ARENA_MAX='.length);
    // biome-ignore lint/suspicious/noExplicitAny: /status is dynamic JSON.
    let status: any;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      status = await (await fetch(`${url}/status`)).json();
      if (status.collections >= 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return { environ, status, stderr, heaps: arenaHeaps(pid) };
  } finally {
    process.kill(-child.pid!, 'SIGTERM'); // the group: npm, sh and node
    await exited;
  }
}

const NPM_START = ['npm', ['start', '--', '--config', config]] as const;

test('npm start runs node with MALLOC_ARENA_MAX=2: glibc keeps one arena besides the main one', async () => {
  const r = await startPodnet(NPM_START[0], [...NPM_START[1]], envWith());
  assert.equal(r.environ, '2');
  assert.deepEqual(r.status.limits.mallocArenas, { max: 2, source: 'environment', atExec: true });
  assert.ok(r.heaps <= 1, `${r.heaps} arena heaps`);
  assert.doesNotMatch(r.stderr, /MALLOC_ARENA_MAX is not set/);
});

test('npm start keeps a MALLOC_ARENA_MAX the operator set', async () => {
  const r = await startPodnet(NPM_START[0], [...NPM_START[1]], envWith({ MALLOC_ARENA_MAX: '3' }));
  assert.equal(r.environ, '3');
  assert.deepEqual(r.status.limits.mallocArenas, { max: 3, source: 'environment', atExec: true });
  assert.ok(r.heaps <= 2, `${r.heaps} arena heaps`);
});

test('the podnet bin (through a node_modules/.bin-style symlink) sets MALLOC_ARENA_MAX=2 and keeps an operator value', async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: { podnet: string } };
  mkdirSync(join(dir, '.bin'), { recursive: true });
  const link = join(dir, '.bin', 'podnet');
  symlinkSync(join(ROOT, pkg.bin.podnet), link);
  const r = await startPodnet(link, ['run', '--config', config], envWith());
  assert.equal(r.environ, '2');
  assert.deepEqual(r.status.limits.mallocArenas, { max: 2, source: 'environment', atExec: true });
  const own = await startPodnet(link, ['run', '--config', config], envWith({ MALLOC_ARENA_MAX: '1' }));
  assert.equal(own.environ, '1');
  assert.equal(own.heaps, 0, 'MALLOC_ARENA_MAX=1: the main arena only');
});

test('node dist/receiver/cli/main.js without the variable: podnet caps the arenas itself and says so', async () => {
  const r = await startPodnet(NODE, ['dist/receiver/cli/main.js', 'run', '--config', config], envWith());
  assert.equal(r.environ, undefined);
  assert.deepEqual(r.status.limits.mallocArenas, { max: 2, source: 'default', atExec: false });
  assert.match(
    r.stderr,
    /"level":30,.*"msg":"MALLOC_ARENA_MAX is not set \(npm start and the podnet bin set 2\)/,
  );
});

/** Runs test/footprint/arenas-child.ts; glibc's arena count from its malloc_stats() next to the child's JSON. */
function child(
  node: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  asUser?: number,
): { before: number; after: number; glibcArenas: number; applied: unknown } {
  const argv = [node, join(ROOT, 'test/footprint/arenas-child.ts'), ...args];
  const r =
    asUser === undefined
      ? spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: 60_000 })
      : spawnSync(
          'setpriv',
          [`--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', '--inh-caps=-all', ...argv],
          { env, encoding: 'utf8', timeout: 60_000 },
        );
  assert.equal(r.status, 0, r.stderr);
  const glibcArenas = r.stderr.split('\n').filter((l) => /^Arena \d+:$/.test(l)).length;
  const out = JSON.parse(r.stdout) as { before: number; after: number; applied: unknown };
  // the maps count is glibc's own count minus the main arena
  assert.equal(out.after, glibcArenas - 1, `maps heaps vs malloc_stats:\n${r.stderr}`);
  return { ...out, glibcArenas };
}

test("the arenas: threads allocating without a cap get their own; with the variable 2 in all; podnet's own cap stops new ones", () => {
  const none = child(NODE, [], envWith());
  assert.ok(none.after >= none.before + 3, `no cap: ${none.before} → ${none.after} heaps`);
  const env = child(NODE, [], envWith({ MALLOC_ARENA_MAX: '2' }));
  assert.equal(env.glibcArenas, 2);
  const own = child(NODE, ['cap'], envWith());
  assert.equal(own.after, own.before, 'no arena created after mallopt(M_ARENA_MAX, 2)');
  assert.ok(own.after < none.after, `${own.after} vs ${none.after}`);
  assert.deepEqual(own.applied, { max: 2, source: 'default', atExec: false });
});

test("secure-execution mode (node with file capabilities, as in the image): glibc ignores MALLOC_ARENA_MAX, podnet's cap holds", () => {
  assert.equal(process.getuid?.(), 0, 'setcap and setpriv: run as root');
  const node = join(dir, 'node-fcaps');
  copyFileSync(realpathSync(NODE), node);
  chmodSync(node, 0o755);
  execOk('setcap', ['cap_net_raw+p', node]);
  const ignored = child(node, [], envWith({ MALLOC_ARENA_MAX: '2' }), 65532);
  assert.ok(ignored.glibcArenas > 2, `glibc honoured MALLOC_ARENA_MAX: ${ignored.glibcArenas} arenas`);
  const own = child(node, ['cap'], envWith({ MALLOC_ARENA_MAX: '2' }), 65532);
  assert.deepEqual(own.applied, { max: 2, source: 'environment', atExec: false });
  assert.equal(own.after, own.before, 'no arena created after mallopt(M_ARENA_MAX, 2)');
});
