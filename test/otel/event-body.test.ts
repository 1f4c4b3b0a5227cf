// The one-line body of event log records (receiver/otel/event-body.ts), from the attributes the probes
// declare (docs/reference.md): the texts a person reads in Grafana/Loki.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { entityText, eventBody, humanSeconds, stackTrace } from '../../receiver/otel/event-body.ts';

const POD = {
  'podnet.entity.kind': 'pod',
  'podnet.netns.inode': 4026532000,
  'k8s.pod.name': 'web-7d9',
  'k8s.namespace.name': 'shop',
};

test('packet drop: reason, transport, tuple, interface, pod, drop location', () => {
  assert.equal(
    eventBody(
      'podnet.packet.drop',
      'PACKETLOSS',
      {
        'error.type': 'NETFILTER_DROP',
        'podnet.drop.location': 'nft_do_chain',
        'network.transport': 'tcp',
        'source.address': '10.0.0.5',
        'source.port': 41234,
        'destination.address': '10.0.0.9',
        'destination.port': 80,
        'network.interface.name': 'eth0',
      },
      POD,
      ['kfree_skb_reason+0x0', 'nft_do_chain+0x1c4'],
    ),
    'packet drop NETFILTER_DROP tcp 10.0.0.5:41234 -> 10.0.0.9:80 on eth0 in pod shop/web-7d9 (nft_do_chain)',
  );
});

test('tcp reset: kind, socket ends (IPv6 in brackets), state, host; innermost frame without offset', () => {
  assert.equal(
    eventBody(
      'podnet.tcp.reset',
      'TCPRESET_NOSOCK',
      {
        'podnet.tcp.reset.kind': 'nosock',
        'network.transport': 'tcp',
        'network.local.address': '::1',
        'network.local.port': 8080,
        'network.peer.address': '::1',
        'network.peer.port': 50000,
        'network.connection.state': 'closed',
      },
      { 'podnet.entity.kind': 'host', 'podnet.netns.inode': 4026531840 },
      ['tcp_v6_send_reset+0x1a/0x4c0', 'tcp_v6_rcv+0x9c'],
    ),
    'tcp reset nosock TCPRESET_NOSOCK tcp local [::1]:8080 peer [::1]:50000 closed in host (tcp_v6_send_reset)',
  );
});

test('socket slow: duration and task; netns by name; unattributed', () => {
  assert.equal(
    eventBody(
      'podnet.socket.slow',
      'SOCKETLAT_READSLOW',
      { 'podnet.latency.duration': 0.153, 'podnet.task.comm': 'nginx', 'process.pid': 4711 },
      { 'podnet.entity.kind': 'netns', 'podnet.netns.name': 'blue', 'podnet.netns.inode': 1 },
      undefined,
    ),
    'socket slow SOCKETLAT_READSLOW 153 ms by nginx[4711] in netns blue',
  );
  assert.equal(entityText({ 'podnet.entity.kind': 'unattributed' }), 'unattributed');
  assert.equal(
    entityText({ 'podnet.entity.kind': 'unattributed', 'podnet.netns.inode': 7 }),
    'unattributed netns 7',
  );
  assert.equal(humanSeconds(2.5), '2.5 s');
  assert.equal(humanSeconds(0.000087), '87 us');
  assert.equal(humanSeconds(4.2e-7), '420 ns');
  assert.equal(stackTrace(['a+0x1', 'b+0x2']), 'a+0x1\nb+0x2');
  // The other end, when the peer keys name it; its kind alone adds nothing.
  assert.equal(
    eventBody(
      'podnet.tcp.reset',
      'T',
      { 'podnet.peer.kind': 'unknown', 'network.transport': 'tcp' },
      POD,
      undefined,
    ),
    'tcp reset T tcp in pod shop/web-7d9',
  );
  assert.equal(
    eventBody(
      'podnet.tcp.reset',
      'T',
      {
        'podnet.peer.kind': 'pod',
        'podnet.peer.k8s.pod.name': 'api-1',
        'podnet.peer.k8s.namespace.name': 'pay',
      },
      POD,
      undefined,
    ),
    'tcp reset T (other end: pod pay/api-1) in pod shop/web-7d9',
  );
});
