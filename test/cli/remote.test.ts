// The CLI against an agent that requires a bearer token, as from a laptop through a port-forward:
// --token-file / PODNET_TOKEN_FILE, clear errors without or with a wrong token, `events -o json|table|wide`,
// the `kubectl podnet` plugin run by the real kubectl (its port-forward step substituted by PODNET_URL, as
// no API server runs here), and `podnet completion bash|zsh` driven by the real shells.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { EventsPrinter } from '../../receiver/cli/events-view.ts';
import { disableRegistered, MAIN, NODE, PodnetRun, podnet, ROOT } from './podnet-process.ts';

const dir = mkdtempSync(join(tmpdir(), `pno${process.pid}-remote-`));
const tokenFile = join(dir, 'token');
const wrongFile = join(dir, 'wrong');
let run: PodnetRun;

before(async () => {
  writeFileSync(tokenFile, 's3cret-token\n');
  writeFileSync(wrongFile, 'not-the-token\n');
  run = await PodnetRun.start(`
collection_interval: 200ms
kernel_stacks: true
server: { address: "127.0.0.1:0", bearer_token_file: "${tokenFile}" }
probes: { ${disableRegistered()}synthetic: { enabled: true, args: { event_rate_per_sec: 20 } } }
`);
  // events exist before the checks below
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const r = await podnet(['events', '--url', run.url, '--token-file', tokenFile]);
    if (r.stdout.trim().split('\n').length >= 3) break;
    await new Promise((res) => setTimeout(res, 200));
  }
});

after(async () => {
  await run?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function sh(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((res) =>
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      res({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    ),
  );
}

// The record's one-line body (receiver/otel/event-body.ts) for the synthetic probe's known attributes.
const SYNTHETIC_DETAIL =
  /^synthetic anomaly NETFILTER_DROP tcp 10\.0\.0\.1:4\d{4} -> 10\.0\.0\.2:80 in \S.* \(kfree_skb_reason\)$/;

test('no token, a wrong token: exit 1 with what to do; the token file or PODNET_TOKEN_FILE works', async () => {
  const none = await podnet(['events', '--url', run.url]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /requires a bearer token \(401\): pass --token-file or set PODNET_TOKEN_FILE/);
  const wrong = await podnet(['events', '--url', run.url, '--token-file', wrongFile]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /refused the token in .*wrong \(401\)/);
  const missing = await podnet(['events', '--url', run.url, '--token-file', join(dir, 'nope')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read --token-file .*nope: ENOENT/);
  const ok = await podnet(['events', '--url', run.url, '--token-file', tokenFile]);
  assert.equal(ok.code, 0, ok.stderr);
  const lines = ok.stdout.trim().split('\n');
  assert.ok(lines.length >= 3);
  for (const l of lines) assert.equal((JSON.parse(l) as { type: string }).type, 'SYNTHETIC_DROP');
  const viaEnv = await sh(NODE, [MAIN, 'events'], { PODNET_URL: run.url, PODNET_TOKEN_FILE: tokenFile });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  assert.ok(viaEnv.stdout.trim().split('\n').length >= 3);
});

test('events -o table and -o wide: a header, then one aligned row per event', async () => {
  const t = await podnet(['events', '--url', run.url, '--token-file', tokenFile, '-o', 'table']);
  assert.equal(t.code, 0, t.stderr);
  const [head, ...rows] = t.stdout.trimEnd().split('\n');
  assert.match(head!, /^TIME +ENTITY +EVENT +TYPE +DETAIL$/);
  assert.ok(rows.length >= 3);
  // Cells sit under their titles (entity names may contain spaces: `pid 42 (unbound)`).
  const at = (t: string) => head!.indexOf(t);
  for (const r of rows) {
    assert.match(r.slice(0, at('ENTITY')), /^\d\d:\d\d:\d\d\.\d{3} +$/, r);
    assert.equal(r.slice(at('EVENT'), at('TYPE')).trim(), 'synthetic.anomaly', r);
    assert.equal(r.slice(at('TYPE'), at('DETAIL')).trim(), 'SYNTHETIC_DROP', r);
    assert.match(r.slice(at('DETAIL')), SYNTHETIC_DETAIL, r);
  }
  const w = await podnet(['events', '--url', run.url, '--token-file', tokenFile, '-o', 'wide']);
  assert.equal(w.code, 0, w.stderr);
  const [wh, ...wrows] = w.stdout.trimEnd().split('\n');
  assert.match(wh!, /^TIME +SEVERITY +PROBE +ENTITY +EVENT +TYPE +PEER +DETAIL$/);
  assert.ok(wrows.length >= 3, w.stdout); // the same recent events as -o table: a loop over none checks nothing
  for (const r of wrows) {
    assert.match(r, / synthetic +/);
    // the first frame of the synthetic stack follows the detail
    assert.match(r, /\(kfree_skb_reason\) {2}at \S+/);
  }
  const bad = await podnet(['events', '-o', 'yaml']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Allowed choices are json, table, wide/);
});

test('kubectl podnet: the real kubectl runs the plugin, which runs podnet against the agent', async () => {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  symlinkSync(join(ROOT, 'deploy', 'kubectl-podnet'), join(bin, 'kubectl-podnet'));
  writeFileSync(join(bin, 'podnet'), `#!/bin/sh\nexec ${NODE} ${MAIN} "$@"\n`);
  chmodSync(join(bin, 'podnet'), 0o755);
  const env = { PATH: `${bin}:${process.env['PATH']}`, PODNET_TOKEN_FILE: tokenFile };
  const list = await sh('kubectl', ['plugin', 'list'], env);
  assert.match(list.stdout, /kubectl-podnet/, list.stderr);
  const r = await sh('kubectl', ['podnet', 'events', '-o', 'table', '--name', 'podnet.synthetic.anomaly'], {
    ...env,
    PODNET_URL: run.url,
  });
  assert.equal(r.code, 0, r.stderr);
  const [head, ...rows] = r.stdout.trimEnd().split('\n');
  assert.match(head!, /^TIME +ENTITY +EVENT +TYPE +DETAIL$/);
  assert.ok(rows.length >= 3, r.stdout);
  // Without a node, a pod or PODNET_URL there is nothing to connect to: it says so before any API call.
  const noTarget = await sh('kubectl', ['podnet', 'events'], env);
  assert.equal(noTarget.code, 2);
  assert.match(noTarget.stderr, /say which node: --node NODE \(or --pod NS\/NAME\)/);
});

test('completion: bash and zsh complete commands, options and option values', async () => {
  const script = join(dir, 'podnet.bash');
  const gen = await podnet(['completion', 'bash']);
  assert.equal(gen.code, 0, gen.stderr);
  writeFileSync(script, gen.stdout);
  const complete = async (words: string[]) => {
    const r = await sh('bash', [
      '-c',
      `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _podnet; echo "\${COMPREPLY[*]}"`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  assert.equal(await complete(['podnet', 'ev']), 'events');
  assert.equal(await complete(['podnet', 'events', '--to']), '--token-file');
  assert.equal(await complete(['podnet', 'events', '-o', '']), 'json table wide');
  assert.equal(await complete(['podnet', 'completion', '']), 'bash zsh --help');
  const zsh = await podnet(['completion', 'zsh']);
  writeFileSync(join(dir, 'podnet.zsh'), zsh.stdout);
  // Called as bashcompinit's _bash_complete calls it: zsh's 1-based COMP_WORDS, COMP_CWORD = CURRENT - 1.
  // zsh's compgen emulation leaves the prefix match to compsys, so the candidates come unfiltered.
  const z = await sh('zsh', [
    '-c',
    `source ${join(dir, 'podnet.zsh')}; COMP_WORDS=(podnet events -o t); COMP_CWORD=3; _podnet; echo "\${COMPREPLY[*]}"`,
  ]);
  assert.equal(z.code, 0, z.stderr);
  assert.equal(z.stdout.trim(), 'json table wide');
});

test('events from an agent that sends no body: DETAIL summarises the tuple attributes', () => {
  let out = '';
  const p = new EventsPrinter('table', (x) => {
    out += x;
  });
  const line = {
    time: '2026-12-06T10:00:00.000Z',
    name: 'podnet.packet.drop',
    type: 'PACKET_LOSS',
    entity: 'shop/web',
    attributes: {
      'network.transport': 'udp',
      'network.local.address': '10.0.0.5',
      'network.local.port': 41234,
      'network.peer.address': 'fd00::9',
      'network.peer.port': 53,
      'error.type': 'NO_SOCKET',
    },
  };
  // split mid-line: a chunk boundary must not break a record
  const text = `${JSON.stringify(line)}\n`;
  p.push(text.slice(0, 40));
  p.push(text.slice(40));
  p.end();
  const [head, row] = out.trimEnd().split('\n');
  assert.equal(row!.slice(head!.indexOf('DETAIL')), 'udp 10.0.0.5:41234 -> [fd00::9]:53 NO_SOCKET');
  assert.equal(row!.slice(head!.indexOf('EVENT'), head!.indexOf('TYPE')).trim(), 'packet.drop');
});
