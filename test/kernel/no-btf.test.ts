// Without kernel BTF (/sys/kernel/btf/vmlinux hidden by a tmpfs in a private mount namespace, so libbpf
// finds none): `podnet probes` marks every eBPF probe unavailable with a reason that says what to do,
// and `podnet run` still runs the procfs and netlink probes (their metrics are served) while /status
// gives the eBPF probes that reason.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { probeSpecs } from '../../probes/registry.ts';
import { MAIN, NODE } from '../cli/podnet-process.ts';

/** A shell command run with BTF hidden: a private mount namespace with a tmpfs over /sys/kernel/btf. */
const hidden = (cmd: string) => [
  '-m',
  '--propagation',
  'private',
  'sh',
  '-c',
  `mount -t tmpfs podnet-no-btf /sys/kernel/btf && test ! -e /sys/kernel/btf/vmlinux && exec ${cmd}`,
];

const dir = mkdtempSync(join(tmpdir(), `pnkr${process.pid}-nobtf-`));
let child: ChildProcess | undefined;
after(() => {
  if (child?.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const BTF_REASON =
  /^kernel BTF missing: \/sys\/kernel\/btf\/vmlinux does not exist\. eBPF probes need a kernel built with CONFIG_DEBUG_INFO_BTF=y/;

test('podnet probes without BTF: eBPF probes unavailable with what to do, procfs/netlink available', async () => {
  assert.ok(existsSync('/sys/kernel/btf/vmlinux'), 'this machine has BTF outside the namespace');
  const out = await new Promise<string>((res, rej) =>
    execFile(
      'unshare',
      hidden(`${NODE} ${MAIN} probes --json`),
      { timeout: 60_000 },
      (err, stdout, stderr) => (err ? rej(new Error(`${err.message}: ${stderr}`)) : res(stdout)),
    ),
  );
  const rows = JSON.parse(out) as {
    name: string;
    source: string;
    available: boolean;
    reason: string | null;
  }[];
  const ebpf = rows.filter((r) => r.source === 'ebpf');
  // every eBPF probe of the registry is listed (and each one is unavailable below)
  assert.deepEqual(
    ebpf.map((r) => r.name).sort(),
    probeSpecs
      .filter((s) => s.source === 'ebpf')
      .map((s) => s.name)
      .sort(),
  );
  for (const r of ebpf) {
    assert.equal(r.available, false, r.name);
    assert.match(String(r.reason), BTF_REASON, r.name);
  }
  for (const r of rows.filter((x) => x.source === 'procfs' || x.source === 'netlink'))
    assert.equal(r.available, true, `${r.name}: ${r.reason}`);
});

test('podnet run without BTF: procfs and netlink metrics are served, eBPF probes report the BTF reason', async () => {
  const config = join(dir, 'podnet.yaml');
  writeFileSync(
    config,
    'collection_interval: 1s\nserver: { address: "127.0.0.1:0" }\npods: { netns_discovery: never }\n',
  );
  child = spawn('unshare', hidden(`${NODE} ${MAIN} run --config ${config}`), {
    env: { ...process.env, PODNET_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let url = '';
  for (const end = Date.now() + 60_000; !url && Date.now() < end; ) {
    url = /"url":"(http:\/\/[^"]+)","msg":"local server listening"/.exec(stderr)?.[1] ?? '';
    assert.equal(child.exitCode, null, `podnet run exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(url, `podnet run did not start: ${stderr}`);
  let metrics = '';
  for (const end = Date.now() + 30_000; Date.now() < end; ) {
    metrics = await (await fetch(`${url}/metrics`)).text();
    if (/^podnet_snmp_ip_in_receives_total\{/m.test(metrics)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.match(metrics, /^podnet_snmp_ip_in_receives_total\{/m, 'snmp (procfs) metrics served');
  assert.match(metrics, /^podnet_sockstat_\w+\{/m, 'sockstat (procfs) metrics served');
  const status = (await (await fetch(`${url}/status`)).json()) as {
    probes: { name: string; state: string; reason?: string }[];
  };
  const pl = status.probes.find((p) => p.name === 'packetloss');
  assert.equal(pl?.state, 'unavailable');
  assert.match(String(pl?.reason), BTF_REASON);
  const snmp = status.probes.find((p) => p.name === 'snmp');
  assert.equal(snmp?.state, 'running');
  if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
});
