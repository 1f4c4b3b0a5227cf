// `podnet run` configured only through the standard OTEL_* environment variables (no exporter config):
// endpoint, protocol, headers, export interval, service name and resource attributes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type OtlpReceiver, startOtlpReceiver } from '../env/otlp-receiver/receiver.ts';
import { disableRegistered, PodnetRun } from './podnet-process.ts';

const YAML = `
collection_interval: 200ms
server: { address: "127.0.0.1:0" }
pods: { netns_discovery: never }
probes: { ${disableRegistered()}synthetic: { enabled: true, args: { event_rate_per_sec: 20 } } }
`;

let rx: OtlpReceiver;
before(async () => {
  rx = await startOtlpReceiver();
});
after(async () => {
  await rx.down();
});

for (const protocol of ['http/json', 'grpc'] as const) {
  test(`OTEL_* environment only: ${protocol}`, async () => {
    rx.clear();
    const run = await PodnetRun.start(YAML, {
      OTEL_EXPORTER_OTLP_ENDPOINT: protocol === 'grpc' ? rx.grpcEndpoint : rx.httpEndpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_EXPORTER_OTLP_HEADERS: 'x-podnet-test=secret-1,x-tenant=pno',
      OTEL_METRIC_EXPORT_INTERVAL: '400',
      OTEL_SERVICE_NAME: 'podnet-e2e',
      OTEL_RESOURCE_ATTRIBUTES: 'k8s.cluster.name=pno-cluster',
      NODE_NAME: 'node-from-env',
      K8S_NODE_NAME: '',
    });
    try {
      await rx.waitFor(
        () => rx.points.some((p) => p.name === 'podnet.synthetic.packet.count') && rx.logs.length > 0,
        20_000,
        'metrics and logs',
      );
      const transport = protocol === 'grpc' ? 'grpc' : 'http/json';
      assert.ok(rx.points.every((p) => p.transport === transport));
      for (const signal of ['metrics', 'logs']) {
        const h = rx.headers.get(`${signal} ${transport}`)!;
        assert.equal(h['x-podnet-test'], 'secret-1', `${signal} headers ${JSON.stringify(h)}`);
        assert.equal(h['x-tenant'], 'pno');
      }
      const res = rx.points[0]!.resource;
      assert.equal(res['service.name'], 'podnet-e2e');
      assert.equal(res['k8s.cluster.name'], 'pno-cluster');
      assert.equal(res['k8s.node.name'], 'node-from-env');
      assert.equal(rx.logs[0]!.eventName, 'podnet.synthetic.anomaly');
      // OTEL_METRIC_EXPORT_INTERVAL=400: several metric exports within ~2 s.
      const n0 = rx.requests.get(`metrics ${transport}`) ?? 0;
      await rx.waitFor(
        () => (rx.requests.get(`metrics ${transport}`) ?? 0) >= n0 + 3,
        2500,
        'three more exports',
      );
    } finally {
      const code = await run.stop();
      assert.equal(code, 0, run.stderr.slice(-2000));
    }
  });
}
