// The podnet binary: --help, probes, run (bad config, clean SIGTERM), events with filters and --follow.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { probeSpecs } from '../../probes/registry.ts';
import { prometheusName } from '../../scripts/gen-docs.ts';
import { disableRegistered, MAIN, NODE, PodnetRun, podnet } from './podnet-process.ts';

const YAML = `
collection_interval: 300ms
server: { address: "127.0.0.1:0" }
pods: { netns_discovery: never }
probes: { ${disableRegistered()}synthetic: { enabled: true, args: { event_rate_per_sec: 20 } } }
`;

let run: PodnetRun;
before(async () => {
  run = await PodnetRun.start(YAML);
});
after(async () => {
  await run.stop();
});

test('--help everywhere', async () => {
  const top = await podnet(['--help']);
  assert.equal(top.code, 0);
  for (const c of ['run', 'probes', 'events', 'inspect'])
    assert.match(top.stdout, new RegExp(`^  ${c} `, 'm'));
  for (const [cmd, opt] of [
    ['run', '--config <file>'],
    ['probes', '--json'],
    ['events', '--follow'],
    ['inspect', '--url <url>'],
  ] as const) {
    const r = await podnet([cmd, '--help']);
    assert.equal(r.code, 0);
    assert.ok(r.stdout.includes(opt), `${cmd} --help lacks ${opt}:\n${r.stdout}`);
  }
});

test('probes --json lists availability and reason', async () => {
  const r = await podnet(['probes', '--json', '--with-synthetic']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{
    name: string;
    source: string;
    available: boolean;
    defaultEnabled: boolean;
  }>;
  const synth = rows.find((x) => x.name === 'synthetic');
  assert.deepEqual(
    { source: synth?.source, available: synth?.available, defaultEnabled: synth?.defaultEnabled },
    { source: 'synthetic', available: true, defaultEnabled: false },
  );
  const table = await podnet(['probes', '--with-synthetic']);
  assert.match(table.stdout, /^PROBE\s+SOURCE\s+DEFAULT\s+AVAILABLE\s+KERNEL\s+VARIANT\s+REASON$/m);
  assert.match(table.stdout, /^synthetic\s+synthetic\s+off\s+yes\s+-$/m);
  // eBPF probes: minimum kernel and the variant picked on this kernel (docs/kernels.md)
  const pl = rows.find((x) => x.name === 'packetloss') as unknown as { minKernel: string; variant: string };
  assert.equal(pl.minKernel, '5.8');
  assert.match(pl.variant, /^(reason|location) \(pl_kfree_skb\w+\)$/);
  assert.match(
    table.stdout,
    /^packetloss\s+ebpf\s+on\s+yes\s+>=5\.8\s+(reason|location) \(pl_kfree_skb\w+\)$/m,
  );
});

test('run with a bad config exits 2 with the key path, value and expectation', async () => {
  const dir = run.dir; // reuse the temp dir
  const { writeFileSync } = await import('node:fs');
  writeFileSync(`${dir}/bad.yaml`, 'server: { address: "127.0.0.1:99999" }\n');
  const r = await podnet(['run', '--config', `${dir}/bad.yaml`]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /server\.address: got "127\.0\.0\.1:99999", expected host:port with a port from 0 to 65535/,
  );
});

test('validate: ok for a good file, exit 2 with the key path for a bad one', async () => {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    `${run.dir}/good.yaml`,
    'collection_interval: 5s\nprobes: { synthetic: { enabled: true } }\n',
  );
  const good = await podnet(['validate', '--with-synthetic', '--config', `${run.dir}/good.yaml`]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /good\.yaml: ok \(collection every 5000 ms; probes on: .*synthetic/);
  writeFileSync(`${run.dir}/bad2.yaml`, 'exporters: { otlp: { protocol: udp } }\n');
  const bad = await podnet(['validate', '--config', `${run.dir}/bad2.yaml`]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /exporters\.otlp\.protocol: got "udp", expected one of "grpc", "http\/protobuf", "http\/json"/,
  );
});

test('events: recent events, filtered by name and pod', async () => {
  const deadline = Date.now() + 20_000;
  let r = await podnet(['events', '--url', run.url]);
  while (r.stdout.trim().split('\n').length < 3 && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 200));
    r = await podnet(['events', '--url', run.url]);
  }
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { name: string; entity: string; type: string });
  assert.ok(lines.length >= 3);
  assert.ok(lines.every((l) => l.name === 'podnet.synthetic.anomaly' && l.type === 'SYNTHETIC_DROP'));
  // the peer of the tuple (10.0.0.1 → 10.0.0.2: private addresses nobody knows), as text and as keys
  for (const l of lines as unknown as { peer: string; attributes: Record<string, unknown> }[]) {
    assert.equal(l.peer, 'unknown');
    assert.equal(l.attributes['podnet.peer.kind'], 'unknown');
  }
  const byPod = await podnet(['events', '--url', run.url, '--pod', 'host']);
  assert.ok(byPod.stdout.trim().length > 0);
  assert.ok(
    byPod.stdout
      .trim()
      .split('\n')
      .every((l) => (JSON.parse(l) as { entity: string }).entity === 'host'),
  );
  const none = await podnet(['events', '--url', run.url, '--pod', 'shop/nonexistent']);
  assert.equal(none.stdout, '');
  const other = await podnet(['events', '--url', run.url, '--name', 'podnet.packet.drop']);
  assert.equal(other.stdout, '');
  // --peer: by the peer's kind here (the synthetic tuple's peer is unknown); another peer matches nothing
  const byPeer = await podnet(['events', '--url', run.url, '--peer', 'unknown']);
  assert.ok(byPeer.stdout.trim().split('\n').length >= 3);
  const otherPeer = await podnet(['events', '--url', run.url, '--peer', 'shop/api']);
  assert.equal(otherPeer.stdout, '');
  const unreachable = await podnet(['events', '--url', 'http://127.0.0.1:1']);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach http:\/\/127\.0\.0\.1:1/);
});

test('events --follow streams new events as they happen', async () => {
  const child = spawn(
    NODE,
    [MAIN, 'events', '--follow', '--url', run.url, '--name', 'podnet.synthetic.anomaly'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  try {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const started = Date.now();
    // The recent ones come first; wait for an event that happened after we connected.
    const startedNs = BigInt(started) * 1_000_000n;
    const deadline = started + 20_000;
    // Complete lines only: a chunk may end in the middle of one.
    const fresh = () =>
      out
        .split('\n')
        .slice(0, -1)
        .some(
          (l) => BigInt((JSON.parse(l) as { timeUnixNano: string }).timeUnixNano) > startedNs + 300_000_000n,
        );
    while (!fresh()) {
      if (Date.now() > deadline) throw new Error(`no live event streamed: ${out.slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(child.exitCode, null, 'still following');
  } finally {
    child.kill('SIGTERM');
  }
});

test('podnet run with every registered probe at its default: states, reasons and their metrics on /metrics', async () => {
  const all = await PodnetRun.start('collection_interval: 500ms\nserver: { address: "127.0.0.1:0" }\n');
  try {
    type P = {
      name: string;
      source: string;
      state: string;
      reason: string | null;
      lastCollection: { points: number } | null;
    };
    let st: { probes: P[] } = { probes: [] };
    const deadline = Date.now() + 30_000;
    // Wait until every running probe has collected once.
    for (;;) {
      st = (await (await fetch(`${all.url}/status`)).json()) as { probes: P[] };
      if (st.probes.every((p) => p.state !== 'running' || p.lastCollection)) break;
      if (Date.now() > deadline) throw new Error(`probes never collected: ${JSON.stringify(st.probes)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(
      st.probes.map((p) => p.name),
      [...probeSpecs.map((s) => s.name), 'synthetic'],
    );
    for (const p of st.probes) {
      const spec = probeSpecs.find((s) => s.name === p.name);
      if (!spec?.defaultEnabled) assert.equal(p.state, 'stopped', p.name);
      else assert.ok(['running', 'degraded', 'unavailable'].includes(p.state), `${p.name}: ${p.state}`);
      if (p.state === 'unavailable')
        assert.ok(p.reason && p.reason.length > 0, `${p.name} unavailable without a reason`);
    }
    const text = await (await fetch(`${all.url}/metrics`)).text();
    const running = st.probes.filter((p) => p.state === 'running' && (p.lastCollection?.points ?? 0) > 0);
    assert.ok(running.length > 0, 'no probe collected anything');
    for (const p of running) {
      const spec = probeSpecs.find((s) => s.name === p.name)!;
      const names = spec.metrics.map((m) => prometheusName(m).split(' ')[0]!);
      assert.ok(
        names.some((n) => text.includes(`\n${n}{`) || text.includes(`\n${n} `)),
        `${p.name} collected points but none of its metrics is on /metrics`,
      );
    }
  } finally {
    assert.equal(await all.stop(), 0, all.stderr.slice(-2000));
  }
});

test('SIGTERM: clean shutdown, exit code 0', async () => {
  const other = await PodnetRun.start(YAML);
  const code = await other.stop();
  assert.equal(code, 0, other.stderr.slice(-2000));
  assert.match(other.stderr, /"signal":"SIGTERM","msg":"shutting down: flushing exporters"/);
});
