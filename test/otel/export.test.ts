// End to end through the official SDK exporters: the synthetic probe's metrics and events reach a real
// OTLP receiver (gRPC, HTTP/protobuf, HTTP/JSON; decoded with the opentelemetry-proto definitions) with
// the contract's names, units, types, attributes and resource, and the same values are on /metrics.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { HOST_ENTITY } from '../../receiver/pods/entity.ts';
import { type OtlpReceiver, type ReceivedPoint, startOtlpReceiver } from '../env/otlp-receiver/receiver.ts';

process.env['K8S_NODE_NAME'] = 'node-under-test';
process.env['OTEL_RESOURCE_ATTRIBUTES'] = 'deployment.environment.name=test,k8s.cluster.name=pno';

const POD: Entity = {
  kind: 'pod',
  netnsInode: 4026599999,
  netnsPath: '/proc/1/ns/net',
  displayName: 'shop/web-1',
  pod: {
    uid: '0b8f3c2e-1111-2222-3333-444455556666',
    name: 'web-1',
    namespace: 'shop',
    labels: { app: 'web', secret: 'do-not-export' },
    ips: ['10.0.0.2'],
    sandboxId: 'abc',
    hostNetwork: false,
  },
};

/** A named netns (`ip netns add blue`) as plain-host mode discovers it. */
const NETNS: Entity = {
  kind: 'netns',
  netnsInode: 4026599998,
  netnsPath: '/run/netns/blue',
  netnsName: 'blue',
  displayName: 'blue',
};

function config(endpoint: string, protocol: string): string {
  return `
collection_interval: 200ms
kernel_stacks: true
server: { address: "127.0.0.1:0" }
pods: { label_allowlist: [app] }
probes: { synthetic: { enabled: true, args: { event_rate_per_sec: 40, gauge_value: 7.5 } } }
exporters: { otlp: { endpoint: "${endpoint}", protocol: "${protocol}", interval: 300ms } }
event_queue: { schedule_delay: 100ms }
`;
}

function latest(
  points: readonly ReceivedPoint[],
  name: string,
  pred: (p: ReceivedPoint) => boolean = () => true,
) {
  const ps = points.filter((p) => p.name === name && pred(p));
  return ps[ps.length - 1];
}

let rx: OtlpReceiver;
before(async () => {
  rx = await startOtlpReceiver();
});
after(async () => {
  await rx.down();
});

for (const protocol of ['grpc', 'http/protobuf', 'http/json'] as const) {
  describe(`OTLP ${protocol}`, () => {
    test('metrics and events arrive with the contract shape, and /metrics shows the same data', async () => {
      rx.clear();
      const entities = new StaticEntitySource([HOST_ENTITY, POD, NETNS]);
      const agent = await Agent.start({
        configText: config(protocol === 'grpc' ? rx.grpcEndpoint : rx.httpEndpoint, protocol),
        specs: [],
        extraSpecs: [syntheticSpec],
        entitySource: entities,
        env: process.env,
      });
      try {
        const isPod = (p: ReceivedPoint) => p.resource['k8s.pod.uid'] === POD.pod!.uid;
        await rx.waitFor(
          () =>
            rx.points.some((p) => p.name === 'podnet.synthetic.latency.duration' && isPod(p)) &&
            rx.logs.some((l) => l.resource['k8s.pod.name'] === 'web-1'),
          15_000,
          'pod metrics and events',
        );
        assert.deepEqual(rx.decodeErrors, []);
        for (const p of rx.points) assert.equal(p.transport, protocol);

        // The agent's Resource (podnet's own metrics): node identity, env attributes; never entity keys.
        // host.name is the node name; service.instance.id the UUID v5 of it (python3 uuid.uuid5 of
        // 'podnet//node-under-test' in the semconv namespace 4d63009a-8d0f-11ee-aad7-4c796ed8e320).
        const res = latest(rx.points, 'podnet.probe.collection.duration')!.resource;
        assert.equal(res['service.name'], 'podnet');
        assert.match(String(res['service.version']), /^\d+\.\d+\.\d+/);
        assert.equal(res['k8s.node.name'], 'node-under-test');
        assert.equal(res['host.name'], 'node-under-test');
        assert.equal(res['service.instance.id'], '48597574-f5d6-555a-80da-e1ebe6999363');
        assert.equal(res['deployment.environment.name'], 'test');
        assert.equal(res['k8s.cluster.name'], 'pno');
        assert.equal(res['k8s.pod.uid'], undefined);
        assert.equal(res['podnet.entity.kind'], undefined);

        // Counter: cumulative monotonic sum, exact value, per direction, pod keys + allow-listed label only.
        const rxCount = latest(
          rx.points,
          'podnet.synthetic.packet.count',
          (p) => isPod(p) && p.attributes['network.io.direction'] === 'receive',
        )!;
        const txCount = latest(
          rx.points,
          'podnet.synthetic.packet.count',
          (p) =>
            isPod(p) &&
            p.attributes['network.io.direction'] === 'transmit' &&
            p.timeUnixNano === rxCount.timeUnixNano,
        )!;
        assert.equal(rxCount.type, 'sum');
        assert.equal(rxCount.isMonotonic, true);
        assert.equal(rxCount.temporality, 'cumulative');
        assert.equal(rxCount.unit, '{packet}');
        assert.ok(rxCount.value >= 1 && Number.isInteger(rxCount.value));
        assert.equal(txCount.value, 2 * rxCount.value);
        assert.ok(rxCount.startTimeUnixNano > 0n && rxCount.startTimeUnixNano <= rxCount.timeUnixNano);
        // The point keeps its own attributes; the pod is its Resource (the agent's attributes + pod keys).
        assert.deepEqual(rxCount.attributes, { 'network.io.direction': 'receive' });
        assert.deepEqual(rxCount.resource, {
          ...res,
          'podnet.entity.kind': 'pod',
          'podnet.netns.inode': POD.netnsInode,
          'k8s.pod.uid': POD.pod!.uid,
          'k8s.pod.name': 'web-1',
          'k8s.namespace.name': 'shop',
          'k8s.pod.label.app': 'web',
        });

        // Gauge, histogram, host entity, unattributed, node scope, default-off metric.
        const gauge = latest(rx.points, 'podnet.synthetic.queue.length', isPod)!;
        assert.equal(gauge.type, 'gauge');
        assert.equal(gauge.value, 7.5);
        const hist = latest(rx.points, 'podnet.synthetic.latency.duration', isPod)!;
        assert.equal(hist.type, 'histogram');
        assert.equal(hist.temporality, 'cumulative');
        assert.equal(hist.unit, 's');
        assert.deepEqual(hist.histogram!.explicitBounds, [0.001, 0.01, 0.1, 1]);
        const n = hist.histogram!.bucketCounts[0]!;
        assert.deepEqual(hist.histogram!.bucketCounts, [n, n, n, n, n]);
        assert.equal(hist.histogram!.count, 5 * n);
        assert.ok(
          latest(
            rx.points,
            'podnet.synthetic.queue.length',
            (p) =>
              p.resource['podnet.entity.kind'] === 'host' && p.resource['host.name'] === 'node-under-test',
          ),
        );
        // A named netns is a Resource of its own: its kind, inode and name; no pod keys.
        const blue = latest(
          rx.points,
          'podnet.synthetic.queue.length',
          (p) => p.resource['podnet.netns.name'] === 'blue',
        )!;
        assert.equal(blue.resource['podnet.entity.kind'], 'netns');
        assert.equal(blue.resource['podnet.netns.inode'], NETNS.netnsInode);
        assert.equal(blue.resource['k8s.pod.uid'], undefined);
        assert.equal(blue.resource['host.name'], 'node-under-test');
        assert.deepEqual(blue.attributes, {});
        const un = latest(
          rx.points,
          'podnet.synthetic.queue.length',
          (p) => p.resource['podnet.entity.kind'] === 'unattributed',
        )!;
        assert.equal(un.resource['podnet.netns.inode'], undefined);
        // Node-scoped metrics and podnet's own telemetry are on the agent's Resource.
        const node = latest(rx.points, 'podnet.synthetic.collections')!;
        assert.deepEqual(node.attributes, {});
        assert.deepEqual(node.resource, res);
        // One ResourceMetrics per entity: every pod point of one export shares one resource object.
        const podResources = new Set(rx.points.filter(isPod).map((p) => JSON.stringify(p.resource)));
        assert.equal(podResources.size, 1);
        assert.equal(latest(rx.points, 'podnet.synthetic.disabled.count'), undefined);
        // Self-telemetry travels the same way.
        assert.ok(
          latest(
            rx.points,
            'podnet.probe.state',
            (p) =>
              p.attributes['podnet.probe.name'] === 'synthetic' &&
              p.attributes['podnet.probe.state'] === 'running' &&
              p.resource['service.instance.id'] === res['service.instance.id'] &&
              p.resource['podnet.entity.kind'] === undefined,
          ),
        );
        assert.ok(latest(rx.points, 'podnet.probe.collection.duration'));

        // Events: eventName, WARN, contract attributes, entity keys, type, stack as a string array, ns time.
        const ev = rx.logs.find((l) => l.resource['k8s.pod.name'] === 'web-1')!;
        assert.equal(ev.eventName, 'podnet.synthetic.anomaly');
        assert.equal(ev.severityNumber, 13);
        assert.equal(ev.severityText, 'WARN');
        assert.equal(ev.resource['k8s.node.name'], 'node-under-test');
        assert.equal(ev.attributes['podnet.event.type'], 'SYNTHETIC_DROP');
        assert.equal(ev.attributes['error.type'], 'NETFILTER_DROP');
        assert.equal(ev.attributes['network.transport'], 'tcp');
        assert.equal(ev.attributes['destination.port'], 80);
        // The event's Resource is its pod's, as for the pod's metrics.
        assert.deepEqual(ev.resource, rxCount.resource);
        assert.equal(ev.attributes['podnet.entity.kind'], undefined);
        assert.equal(ev.attributes['k8s.pod.name'], undefined);
        // A one-line body a person can read; every record has one. The stack also as code.stacktrace.
        assert.equal(
          ev.body,
          `synthetic anomaly NETFILTER_DROP tcp 10.0.0.1:${ev.attributes['source.port']} -> 10.0.0.2:80 in pod shop/web-1 (kfree_skb_reason)`,
        );
        for (const l of rx.logs) assert.ok(typeof l.body === 'string' && l.body.length > 0, 'non-empty body');
        assert.equal(
          ev.attributes['code.stacktrace'],
          'kfree_skb_reason+0x0\nnf_hook_slow+0x9c\nip_rcv+0x6f\n__netif_receive_skb_one_core+0x84',
        );
        assert.deepEqual(ev.attributes['podnet.kernel.stack'], [
          'kfree_skb_reason+0x0',
          'nf_hook_slow+0x9c',
          'ip_rcv+0x6f',
          '__netif_receive_skb_one_core+0x84',
        ]);
        const nowNs = BigInt(Date.now()) * 1_000_000n;
        assert.ok(
          ev.timeUnixNano > nowNs - 60_000_000_000n && ev.timeUnixNano <= nowNs,
          `time ${ev.timeUnixNano}`,
        );
        // The synthetic probe puts seq % 1e6 into the nanoseconds: sub-ms precision survived (not ms).
        assert.equal(
          Number(ev.timeUnixNano % 1_000_000n),
          Number(ev.attributes['podnet.synthetic.seq']) % 1_000_000,
        );

        // Same data on /metrics (Prometheus naming).
        await agent.collectNow();
        const text = await (await fetch(`${agent.serverUrl}/metrics`)).text();
        const line = text
          .split('\n')
          .find((l) => l.startsWith('podnet_synthetic_queue_length{') && l.includes('k8s_pod_name="web-1"'));
        assert.ok(line, text.slice(0, 2000));
        assert.match(line!, /k8s_namespace_name="shop"/);
        assert.match(line!, /k8s_pod_label_app="web"/);
        assert.match(line!, / 7\.5$/);
        assert.match(text, /# TYPE podnet_synthetic_packet_count_total counter/);
        assert.match(text, /# TYPE podnet_synthetic_latency_duration_seconds histogram/);
        assert.match(text, /podnet_synthetic_latency_duration_seconds_bucket\{[^}]*le="0\.01"/);
        assert.doesNotMatch(text, /do-not-export/);
      } finally {
        await agent.stop();
      }
    });
  });
}

test('a series of an entity that disappears stops being exported within two collection intervals', async () => {
  rx.clear();
  const entities = new StaticEntitySource([HOST_ENTITY, POD]);
  const agent = await Agent.start({
    configText: config(rx.httpEndpoint, 'http/protobuf'),
    specs: [],
    extraSpecs: [syntheticSpec],
    entitySource: entities,
    env: process.env,
  });
  try {
    const promHasPod = async () =>
      (await (await fetch(`${agent.serverUrl}/metrics`)).text()).includes('k8s_pod_name="web-1"');
    await rx.waitFor(
      () => rx.points.some((p) => p.resource['k8s.pod.name'] === 'web-1'),
      15_000,
      'pod series',
    );
    assert.equal(await promHasPod(), true);
    entities.remove(POD.netnsInode);
    const removedAt = Date.now();
    // Wait for two collections after the removal (the loop runs every interval; poll, generous timeout).
    const c0 = agent.collections;
    while (agent.collections < c0 + 2) {
      if (Date.now() - removedAt > 20_000) throw new Error('collections stalled');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await promHasPod(), false, 'Prometheus endpoint still shows the pod');
    // OTLP: every export that started after those two collections has no series of the pod.
    const cut = BigInt(Date.now()) * 1_000_000n;
    await rx.waitFor(() => rx.points.some((p) => p.timeUnixNano > cut), 15_000, 'a later export');
    const later = rx.points.filter((p) => p.timeUnixNano > cut);
    assert.ok(later.length > 0);
    assert.equal(later.filter((p) => p.resource['k8s.pod.name'] === 'web-1').length, 0);
    assert.ok(later.some((p) => p.resource['podnet.entity.kind'] === 'host'));
  } finally {
    await agent.stop();
  }
});

test('identity survives a restart: the same Resources before and after (host.name = node name)', async () => {
  const resources = async (): Promise<{ agent: string; pod: string }> => {
    rx.clear();
    const agent = await Agent.start({
      configText: config(rx.httpEndpoint, 'http/protobuf'),
      specs: [],
      extraSpecs: [syntheticSpec],
      entitySource: new StaticEntitySource([HOST_ENTITY, POD]),
      env: process.env,
    });
    try {
      await rx.waitFor(
        () =>
          rx.points.some((p) => p.name === 'podnet.probe.state') &&
          rx.points.some((p) => p.resource['k8s.pod.uid'] === POD.pod!.uid),
        15_000,
        'agent and pod resources',
      );
      const a = rx.points.find((p) => p.name === 'podnet.probe.state')!.resource;
      const p = rx.points.find((x) => x.resource['k8s.pod.uid'] === POD.pod!.uid)!.resource;
      return { agent: JSON.stringify(a), pod: JSON.stringify(p) };
    } finally {
      await agent.stop();
    }
  };
  const first = await resources();
  const second = await resources();
  assert.deepEqual(second, first);
  assert.equal(JSON.parse(first.agent)['host.name'], 'node-under-test');
});
