// The agent hands each procfs probe the names of its enabled metrics (`args.metrics`), so the probe reads,
// parses and emits only those (snmp declares 402 metrics and enables 69 by default): the probe's points
// per collection are the enabled set, a metric enabled in the config joins it, one disabled leaves it,
// on reload too, and an explicit `args.metrics` in the config wins.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { netdevProbe } from '../../probes/netdev/netdev.ts';
import { SNMP_METRICS, snmpProbe } from '../../probes/snmp/snmp.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { withEnabledMetrics } from '../../receiver/kit/procfs.ts';

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

test('withEnabledMetrics: fills args.metrics only for probes that take it and were not given one', () => {
  const enabled = (d: { enabled: boolean }) => d.enabled;
  const filled = withEnabledMetrics(snmpProbe, snmpProbe.args.parse({}), enabled);
  assert.deepEqual(
    filled.metrics,
    SNMP_METRICS.filter((m) => m.enabled).map((m) => m.name),
  );
  const given = netdevProbe.args.parse({ metrics: ['k8s.pod.network.io'] });
  assert.equal(withEnabledMetrics(netdevProbe, given, enabled), given);
  const noMetricsArg = { metrics: [], args: { parse: () => ({}) } };
  const a = { x: 1 };
  assert.equal(withEnabledMetrics(noMetricsArg, a, enabled), a);
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
