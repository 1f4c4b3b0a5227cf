// One checkout's metric pipeline loaded by path (its probe registry, metric store, entity Resources and
// protobuf requests), for the in-process A/Bs that compare two checkouts in ONE process (pipeline-ab.ts,
// export-ab.ts): each tree's modules come from its own paths, so the two keep distinct module state.
// This tree collects as its agent does (receiver/agent/probe-set.ts: `collectInto` into the store's sink
// when a probe has it); the other as its own agent would (`collect`, unless it has `collectInto` too).

/** The default per-netns procfs/netlink probes, as the scale benchmark's agent runs them. */
export const PROBES = ['netdev', 'snmp', 'sockstat', 'softnet', 'process', 'sockets', 'conntrack', 'qdisc'];

// biome-ignore lint/suspicious/noExplicitAny: modules of two checkouts, loaded by path.
export type Any = any;

export interface Tree {
  readonly label: string;
  readonly probes: { name: string; probe: Any }[];
  readonly store: Any;
  readonly resources: Any;
  readonly agent: Any;
  readonly metricRequests: Any;
  /**
   * One collection of every probe into the store, taken at `time`, in one collection cycle; a probe that
   * failed an entity fails it when `strict`.
   */
  readonly collect: (time: number, strict?: boolean) => Promise<unknown>;
  readonly close: () => Promise<void>;
}

/** Loads the checkout at `root` over `entities`; `logName` names its probes' logger. */
export async function loadTree(
  label: string,
  root: string,
  entities: readonly unknown[],
  logName: string,
): Promise<Tree> {
  const reg = await import(`${root}/probes/registry.ts`);
  const { childLogger } = await import(`${root}/receiver/log/logger.ts`);
  const { withCollectionCycle } = await import(`${root}/receiver/kit/cycle.ts`);
  const { MetricStore } = await import(`${root}/receiver/otel/metric-store.ts`);
  const { StaticEntitySource } = await import(`${root}/receiver/agent/static-entities.ts`);
  const { EntityResources } = await import(`${root}/receiver/otel/entity-resources.ts`);
  const { metricRequests } = await import(`${root}/receiver/otel/protobuf/metrics.ts`);
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const source = new StaticEntitySource(entities);
  const store = new MetricStore({ entities: source, cardinalityLimit: 1_000_000 });
  const defs: unknown[] = [];
  const probes: Tree['probes'] = [];
  for (const name of PROBES) {
    const spec = (reg.probeSpecs as Any[]).find((s) => s.name === name);
    if (!spec) throw new Error(`${label}: probe ${name} not in the registry`);
    const enabled = new Set((spec.metrics as Any[]).filter((m) => m.enabled).map((m) => m.name));
    for (const def of spec.metrics) defs.push({ def, probe: name, enabled: def.enabled });
    const ctx = {
      log: childLogger(`${logName}-${label}`),
      entities: source,
      emit: () => {},
      enabledMetrics: () => enabled,
    };
    probes.push({ name, probe: await spec.create(ctx, spec.args.parse({})) });
  }
  store.setDefinitions(defs);
  const collect = (time: number, strict = false) =>
    withCollectionCycle(() =>
      Promise.all(
        probes.map(async ({ name, probe }) => {
          if (probe.collectInto && store.sink) {
            const sink = store.sink(name);
            await probe.collectInto(entities, sink);
            store.update(name, sink, time);
          } else store.update(name, await probe.collect(entities), time);
          const failed =
            (probe.status().details as { failedEntities?: number } | undefined)?.failedEntities ?? 0;
          if (strict && failed > 0) throw new Error(`${label} ${name}: ${failed} entities failed`);
        }),
      ),
    );
  const close = async () => {
    for (const { probe } of probes) await probe.close();
  };
  const agent = resourceFromAttributes({ 'service.name': 'podnet', 'host.name': 'bench' });
  return {
    label,
    probes,
    store,
    resources: new EntityResources(agent),
    agent,
    metricRequests,
    collect,
    close,
  };
}
