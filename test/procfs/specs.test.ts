// The five procfs ProbeSpecs: available on this machine, declarations consistent with the contract
// (unique names under podnet./semconv, UCUM-style units, kinds, node scope only where host-wide), args
// schemas with defaults, and a probe that reports its state and closes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { netdevPoints, netdevProbe } from '../../probes/netdev/netdev.ts';
import { processProbe } from '../../probes/process/process.ts';
import { snmpProbe } from '../../probes/snmp/snmp.ts';
import { sockstatProbe } from '../../probes/sockstat/sockstat.ts';
import { SoftnetUnwrap, softnetPoints, softnetProbe } from '../../probes/softnet/softnet.ts';
import { hostNetnsInode } from '../../receiver/netns/setns.ts';
import { PointArray } from '../../receiver/probe/sink.ts';
import type { MetricPoint, ProbeSpec } from '../../receiver/probe/types.ts';
import { probeContext } from './env.ts';

const SPECS = [
  netdevProbe,
  snmpProbe,
  sockstatProbe,
  softnetProbe,
  processProbe,
] as unknown as ProbeSpec<unknown>[];

test('every procfs probe is available here and declares its metrics consistently', async () => {
  const names = new Set<string>();
  for (const spec of SPECS) {
    assert.deepEqual(await spec.availability(), { available: true }, spec.name);
    assert.equal(spec.source, 'procfs');
    assert.equal(spec.defaultEnabled, true);
    assert.deepEqual(spec.events, []);
    assert.ok(spec.metrics.length > 0);
    assert.ok(
      spec.metrics.some((m) => m.enabled),
      `${spec.name}: something on by default`,
    );
    for (const m of spec.metrics) {
      assert.ok(!names.has(m.name), `duplicate metric ${m.name}`);
      names.add(m.name);
      assert.match(
        m.name,
        /^(podnet\.[a-z0-9_]+(\.[a-z0-9_]+)+|k8s\.(pod|node)\.network\.(io|errors))$/,
        m.name,
      );
      assert.match(m.unit, /^(By|s|1|\{[a-z_]+\})$/, `${m.name} unit ${m.unit}`);
      assert.ok(['counter', 'gauge'].includes(m.kind), `${m.name} kind`);
      assert.ok(m.description.length > 10, `${m.name} description`);
      if (m.scope === 'node') assert.ok(['softnet', 'sockstat'].includes(spec.name), `${m.name}: node scope`);
    }
    // args: defaults parse from an empty object, unknown keys are refused
    spec.args.parse({});
    assert.throws(() => spec.args.parse({ nope: 1 }));
  }
  const byName = new Map(SPECS.flatMap((s) => s.metrics.map((m) => [m.name, m])));
  assert.equal(byName.get('k8s.pod.network.io')?.unit, 'By');
  assert.equal(byName.get('k8s.pod.network.errors')?.unit, '{error}');
  assert.equal(byName.get('podnet.snmp.tcp.out_rsts')?.kind, 'counter');
  assert.equal(byName.get('podnet.snmp.tcp.curr_estab')?.kind, 'gauge');
  assert.equal(byName.get('podnet.snmp.tcp_ext.listen_drops')?.enabled, true);
  assert.equal(byName.get('podnet.snmp.udp.rcvbuf_errors')?.enabled, true);
  assert.equal(byName.get('podnet.snmp.ip6.in_receives')?.enabled, false);
});

test('a probe reports running with collection details, and stopped after close', async () => {
  for (const spec of SPECS) {
    const probe = await spec.create(probeContext(), spec.args.parse({}));
    await probe.collect([]);
    const st = probe.status();
    assert.equal(st.state, 'running', spec.name);
    assert.equal((st.details as { collections: number }).collections, 1);
    await probe.close();
    await probe.close(); // idempotent
    assert.equal(probe.status().state, 'stopped');
    assert.deepEqual(await probe.collect([]), []);
  }
});

test('reconfigure applies new args without a restart', async () => {
  const host = {
    kind: 'host' as const,
    netnsInode: hostNetnsInode,
    netnsPath: '/proc/self/ns/net',
    displayName: 'host',
  };
  const softnet = await softnetProbe.create(probeContext(), softnetProbe.args.parse({}));
  assert.ok((await softnet.collect([])).every((p) => p.attributes === undefined));
  await softnet.reconfigure!(softnetProbe.args.parse({ perCpu: true }));
  assert.ok(
    (await softnet.collect([])).every((p) => typeof p.attributes?.['cpu.logical_number'] === 'number'),
  );

  const netdev = await netdevProbe.create(probeContext(), netdevProbe.args.parse({}));
  const ifs = async (): Promise<Set<unknown>> =>
    new Set((await netdev.collect([host])).map((p) => p.attributes?.['network.interface.name']));
  assert.ok(!(await ifs()).has('lo'));
  await netdev.reconfigure!(netdevProbe.args.parse({ excludeInterfaces: [] }));
  assert.ok((await ifs()).has('lo'));

  const snmp = await snmpProbe.create(probeContext(), snmpProbe.args.parse({}));
  await snmp.reconfigure!(snmpProbe.args.parse({ metrics: ['podnet.snmp.tcp.out_rsts'] }));
  assert.deepEqual(
    (await snmp.collect([host])).map((p) => p.metric),
    ['podnet.snmp.tcp.out_rsts'],
  );
  const proc = await processProbe.create(probeContext(), processProbe.args.parse({}));
  assert.deepEqual(await proc.collect([host]), []);
  await proc.reconfigure!(processProbe.args.parse({ host: true, metrics: ['podnet.process.instances'] }));
  assert.deepEqual(
    (await proc.collect([host])).map((p) => p.metric),
    ['podnet.process.instances'],
  );
});

test('netdev: each metric and direction maps to its /proc/net/dev column', () => {
  const text =
    'Inter-|   Receive |  Transmit\n face |bytes|bytes\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n    lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n';
  const out = new PointArray();
  netdevPoints(
    text,
    7,
    out,
    (n) => n === 'lo',
    () => true,
  );
  const got: Record<string, number> = {};
  for (const p of out.points) got[`${p.metric} ${p.attributes!['network.io.direction']}`] = p.value as number;
  assert.deepEqual(got, {
    'k8s.pod.network.io receive': 1,
    'podnet.network.packet.count receive': 2,
    'k8s.pod.network.errors receive': 3,
    'podnet.network.packet.dropped receive': 4,
    'podnet.network.fifo_errors receive': 5,
    'podnet.network.frame_errors receive': 6,
    'podnet.network.compressed receive': 7,
    'podnet.network.multicast receive': 8,
    'k8s.pod.network.io transmit': 9,
    'podnet.network.packet.count transmit': 10,
    'k8s.pod.network.errors transmit': 11,
    'podnet.network.packet.dropped transmit': 12,
    'podnet.network.fifo_errors transmit': 13,
    'podnet.network.collisions transmit': 14,
    'podnet.network.carrier_errors transmit': 15,
    'podnet.network.compressed transmit': 16,
  });
  assert.ok(out.points.every((p) => p.netns === 7 && p.attributes!['network.interface.name'] === 'eth0'));
});

test('softnet: u32 per-CPU counters are unwrapped into monotonic values', () => {
  const row = (cpu: number, processed: number, backlog: number): string =>
    `${[processed, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, backlog, cpu, 0, 0].map((v) => v.toString(16).padStart(8, '0')).join(' ')}\n`;
  const unwrap = new SoftnetUnwrap();
  const read = (text: string, perCpu: boolean): MetricPoint[] => {
    const out: MetricPoint[] = [];
    softnetPoints(
      text,
      perCpu,
      (m) => m === 'podnet.softnet.processed' || m === 'podnet.softnet.backlog',
      out,
      unwrap,
    );
    return out;
  };
  const v = (ps: MetricPoint[], m: string): number => ps.find((p) => p.metric === m)!.value as number;
  let ps = read(row(0, 0xfffffff0, 5) + row(1, 7, 0), false);
  assert.equal(v(ps, 'podnet.softnet.processed'), 0xfffffff0 + 7);
  ps = read(row(0, 0x10, 3) + row(1, 9, 0), false); // cpu 0 wrapped
  assert.equal(v(ps, 'podnet.softnet.processed'), 2 ** 32 + 0x10 + 9);
  assert.equal(v(ps, 'podnet.softnet.backlog'), 3, 'levels are not unwrapped');
  ps = read(row(0, 0x20, 0) + row(1, 10, 0), true);
  assert.deepEqual(
    ps.filter((p) => p.metric === 'podnet.softnet.processed').map((p) => p.value),
    [2 ** 32 + 0x20, 10],
  );
});
