// The body of an event with a resolved peer names the other end the same way everywhere: in the
// exported log record (decoded by the test OTLP receiver with the official proto definitions) and in the
// `/events` record (EventPipeline.recent, the JSON line written once for every follower), whose `peer`
// field is what `podnet events -o wide` shows in its PEER column.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { peerColumn } from '../../receiver/cli/events-view.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { eventJsonLine } from '../../receiver/otel/event-pipeline.ts';
import { Pipeline } from '../../receiver/otel/pipeline.ts';
import { buildResource } from '../../receiver/otel/resource.ts';
import type { PeerResolver } from '../../receiver/peers/resolver.ts';
import { makePeer } from '../../receiver/peers/types.ts';
import { startOtlpReceiver } from '../env/otlp-receiver/receiver.ts';

test('a peer shows in the body of the exported record and of /events alike', async () => {
  const rx = await startOtlpReceiver();
  const p = new Pipeline({ entities: new StaticEntitySource([]), log: childLogger('test') });
  const peer = makePeer({ kind: 'pod', pod: 'api-1', namespace: 'pay', service: 'api' });
  // The resolver's address lookups are tested in test/peers; here only what the pipeline does with a peer.
  const resolver = { forEvent: () => peer } as unknown as PeerResolver;
  p.events.configure({
    peers: resolver,
    defs: [
      {
        def: {
          name: 'podnet.tcp.reset',
          description: '',
          severity: 'WARN',
          attributes: [],
          types: [],
          enabled: true,
        },
        probe: 'test',
        enabled: true,
      },
    ],
  });
  await p.applyExports({
    resource: buildResource({ env: {} }),
    prometheus: false,
    logs: {
      protocol: 'http/protobuf',
      endpoint: rx.httpEndpoint,
      headers: {},
      timeoutMs: 10_000,
      maxQueueSize: 1000,
      maxExportBatchSize: 100,
      scheduledDelayMs: 20,
    },
  });
  try {
    p.events.emit('test', {
      name: 'podnet.tcp.reset',
      type: 'TCPRESET_NOSOCK',
      netns: 0,
      timeUnixNano: 1_796_000_000_000_000_000n,
      attributes: {
        'network.transport': 'tcp',
        'network.local.address': '10.0.0.9',
        'network.local.port': 80,
        'network.peer.address': '10.0.0.5',
        'network.peer.port': 41234,
      },
    });
    await p.forceFlush();
    assert.equal(rx.logs.length, 1);
    const exported = rx.logs[0]!.body;
    assert.match(String(exported), /\(other end: pod pay\/api-1\)/);
    const rec = p.events.recent()[0]!;
    assert.equal(rec.body, exported, '/events body = exported body');
    assert.equal(rec.peer, 'pod pay/api-1 (service pay/api)');
    const line = eventJsonLine(rec);
    assert.equal(line, `${JSON.stringify(rec)}\n`);
    assert.equal(eventJsonLine(rec), line, 'serialized once, the same string for every follower');
    assert.equal(peerColumn(JSON.parse(line)), 'pod pay/api-1 (service pay/api)');
  } finally {
    await p.shutdown();
    await rx.down();
  }
});
