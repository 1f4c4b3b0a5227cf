// The agent hands each probe the names of its enabled metrics (`ProbeContext.enabledMetrics`), so a
// procfs probe reads, parses and emits only those (snmp declares 402 metrics and enables 69 by default):
// the probe's points per collection are the enabled set, a metric enabled in the config joins it, one disabled leaves it,
// on reload too, and an explicit `args.metrics` in the config wins.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { netdevProbe } from '../../probes/netdev/netdev.ts';
import { SNMP_METRICS, snmpProbe } from '../../probes/snmp/snmp.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { metricFilter } from '../../receiver/kit/procfs.ts';
import { enabledMetricsOf } from '../../receiver/probe/enabled-metrics.ts';

const OFF_BY_DEFAULT = SNMP_METRICS.find((m) => !m.enabled && m.name.startsWith('podnet.snmp.tcp_ext.'))!;
const ON_BY_DEFAULT = SNMP_METRICS.find((m) => m.enabled && m.name.startsWith('podnet.snmp.tcp.'))!;

function config(metrics: string, args = ''): string {
  return JSON.stringify({
    collection_interval: '1h',
    server: { address: '127.0.0.1:0' },
    probes: Object.fromEntries(
      ['snmp', 'netdev', 'sockstat', 'softnet', 'process', 'sockets', 'conntrack', 'qdisc'].map((n) => [
        n,
        { enabled: n === 'snmp', ...(n === 'snmp' && args ? { args: JSON.parse(args) } : {}) },
      ]),
    ),
    metrics: JSON.parse(metrics),
  });
}

async function snmpMetricNames(agent: Agent): Promise<Set<string>> {
  await agent.collectNow();
  const probe = agent.probe('snmp');
  assert.ok(probe, 'snmp runs');
  const points = await probe.collect(agent.entities.entities());
  return new Set(points.map((p) => p.metric));
}

test('enabledMetricsOf: defaults, config overrides, the same Set until the config changes', () => {
  const config = new Map<string, boolean>();
  const enabled = enabledMetricsOf(snmpProbe, () => config);
  assert.deepEqual(
    [...enabled()],
    SNMP_METRICS.filter((m) => m.enabled).map((m) => m.name),
  );
  assert.equal(enabled(), enabled(), 'same Set while the config is the same');
  const reloaded = new Map([
    [OFF_BY_DEFAULT.name, true],
    [ON_BY_DEFAULT.name, false],
  ]);
  const enabled2 = enabledMetricsOf(snmpProbe, () => reloaded);
  assert.ok(enabled2().has(OFF_BY_DEFAULT.name));
  assert.ok(!enabled2().has(ON_BY_DEFAULT.name));
});

test('metricFilter: an explicit metrics arg wins over the enabled set; without either, every metric', () => {
  const ctx = { enabledMetrics: () => new Set(['k8s.pod.network.errors']) };
  const given = netdevProbe.args.parse({ metrics: ['k8s.pod.network.io'] });
  const explicit = metricFilter(netdevProbe.metrics, given.metrics, ctx);
  assert.equal(explicit('k8s.pod.network.io'), true);
  assert.equal(explicit('k8s.pod.network.errors'), false);
  const fromCtx = metricFilter(netdevProbe.metrics, undefined, ctx);
  assert.equal(fromCtx('k8s.pod.network.io'), false);
  assert.equal(fromCtx('k8s.pod.network.errors'), true);
  assert.equal(metricFilter(netdevProbe.metrics, undefined)('k8s.pod.network.io'), true);
});

test('agent: the snmp probe emits exactly the enabled metrics; config enables and disables, also on reload', async () => {
  const agent = await Agent.start({
    configText: config(`{ "${OFF_BY_DEFAULT.name}": { "enabled": true } }`),
    entitySource: new StaticEntitySource(),
    watch: false,
  });
  try {
    const names = await snmpMetricNames(agent);
    const enabledNow = new Set(
      SNMP_METRICS.filter((m) => m.enabled || m.name === OFF_BY_DEFAULT.name).map((m) => m.name),
    );
    for (const n of names) assert.ok(enabledNow.has(n), `${n} is not enabled but was produced`);
    assert.ok(names.has(OFF_BY_DEFAULT.name), 'a metric enabled in the config is produced');
    assert.ok(names.has(ON_BY_DEFAULT.name));
    assert.ok(names.size < 100, `${names.size} snmp metrics produced (402 declared)`);

    await agent.reload(config(`{ "${ON_BY_DEFAULT.name}": { "enabled": false } }`));
    const after = await snmpMetricNames(agent);
    assert.equal(after.has(ON_BY_DEFAULT.name), false, 'a metric disabled on reload is no longer read');
    assert.equal(after.has(OFF_BY_DEFAULT.name), false, 'back to its default (off)');

    await agent.reload(config('{}', `{ "metrics": ["${OFF_BY_DEFAULT.name}"] }`));
    assert.deepEqual(
      [...(await snmpMetricNames(agent))],
      [OFF_BY_DEFAULT.name],
      'explicit args.metrics wins',
    );
  } finally {
    await agent.stop();
  }
});
