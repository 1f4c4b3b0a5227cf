// The real probes (registry, default settings) through the same pipeline: host traffic counters arrive
// over OTLP under their contract names, and a TCP reset provoked on loopback (connect to a closed port)
// arrives as a `podnet.tcp.reset` log record and as a counter increase, on OTLP and on /metrics.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { probeSpecs } from '../../probes/registry.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { HOST_ENTITY } from '../../receiver/pods/entity.ts';
import { type OtlpReceiver, startOtlpReceiver } from '../env/otlp-receiver/receiver.ts';
import { freePort } from '../env/prometheus.ts';

let rx: OtlpReceiver;
let agent: Agent;

before(async () => {
  rx = await startOtlpReceiver();
  agent = await Agent.start({
    configText: `
collection_interval: 500ms
server: { address: "127.0.0.1:0" }
exporters: { otlp: { endpoint: "${rx.grpcEndpoint}", protocol: grpc, interval: 500ms } }
event_queue: { schedule_delay: 100ms }
`,
    entitySource: new StaticEntitySource([HOST_ENTITY]),
    env: {},
  });
});

after(async () => {
  await agent?.stop();
  await rx?.down();
});

function probeState(name: string): string | undefined {
  const st = agent.status() as { probes: Array<{ name: string; state: string }> };
  return st.probes.find((p) => p.name === name)?.state;
}

test('netdev: k8s.node.network.io for the host entity over OTLP (lo excluded by default)', async () => {
  assert.ok(
    probeSpecs.some((s) => s.name === 'netdev'),
    'netdev is registered',
  );
  assert.equal(probeState('netdev'), 'running');
  await rx.waitFor(
    () => rx.points.some((p) => p.name === 'k8s.node.network.io'),
    20_000,
    'k8s.node.network.io',
  );
  const p = rx.points.find((x) => x.name === 'k8s.node.network.io')!;
  assert.equal(
    rx.points.filter((x) => x.name === 'k8s.pod.network.io' && x.resource['podnet.entity.kind'] === 'host')
      .length,
    0,
  );
  assert.notEqual(p.attributes['network.interface.name'], 'lo');
  assert.equal(typeof p.attributes['network.interface.name'], 'string');
  assert.equal(p.type, 'sum');
  assert.equal(p.isMonotonic, true);
  assert.equal(p.temporality, 'cumulative');
  assert.equal(p.unit, 'By');
  assert.equal(p.resource['podnet.entity.kind'], 'host');
  assert.equal(p.attributes['podnet.entity.kind'], undefined);
  assert.ok(['transmit', 'receive'].includes(String(p.attributes['network.io.direction'])));
});

test('tcpreset: a reset on loopback becomes a podnet.tcp.reset event and a counter increase', async () => {
  const st = agent.status() as { probes: Array<{ name: string; state: string; reason: string | null }> };
  const tr = st.probes.find((p) => p.name === 'tcpreset');
  assert.equal(tr?.state, 'running', `tcpreset: ${JSON.stringify(tr)}`);
  const port = await freePort(); // nothing listens there: the kernel answers the SYN with a RST
  const resets = () =>
    rx.points
      .filter(
        (p) =>
          p.name === 'podnet.tcp.reset.count' &&
          p.attributes['podnet.tcp.reset.kind'] === 'nosock' &&
          p.resource['podnet.entity.kind'] === 'host',
      )
      .reduce((m, p) => Math.max(m, p.value), 0);
  // The counter series exists only once the host has sent a reset (none may have on a quiet machine):
  // wait for a metrics export with the collections of the probe, then take what it says (0 if absent).
  await rx.waitFor(() => rx.points.length > 0, 20_000, 'a metrics export');
  await new Promise((r) => setTimeout(r, 1500));
  const before = resets();
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => resolve());
      s.on('connect', () => {
        s.destroy();
        resolve();
      });
    });
  }
  await rx.waitFor(
    () =>
      rx.logs.some((l) => l.eventName === 'podnet.tcp.reset' && l.attributes['network.local.port'] === port),
    20_000,
    'podnet.tcp.reset event for the closed port',
  );
  const ev = rx.logs.find(
    (l) => l.eventName === 'podnet.tcp.reset' && l.attributes['network.local.port'] === port,
  )!;
  assert.equal(ev.severityText, 'WARN');
  assert.equal(ev.attributes['podnet.event.type'], 'TCPRESET_NOSOCK');
  assert.equal(ev.resource['podnet.entity.kind'], 'host');
  assert.match(String(ev.body), new RegExp(`^tcp reset nosock .* local 127\\.0\\.0\\.1:${port} .* in host`));
  assert.equal(ev.attributes['network.transport'], 'tcp');
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  assert.ok(
    ev.timeUnixNano > nowNs - 60_000_000_000n && ev.timeUnixNano <= nowNs + 1_000_000_000n,
    'kernel time → wall clock',
  );
  await rx.waitFor(() => resets() >= before + 3, 20_000, 'the counter counted the 3 resets');
  const text = await (await fetch(`${agent.serverUrl}/metrics`)).text();
  assert.match(
    text,
    /podnet_tcp_reset_count_total\{[^}]*podnet_tcp_reset_kind="nosock"[^}]*podnet_entity_kind="host"/,
  );
});
