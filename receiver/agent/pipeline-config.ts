// The pipeline side of applying a config: store limits, which metrics and events are enabled (a
// config's `metrics:` / `events:` override each definition's default), and the exporters.
import { CAPTURE_EVENTS } from '../capture/agent-captures.ts';
import type { ResolvedConfig } from '../config/load.ts';
import type { ExportSettings, Pipeline } from '../otel/pipeline.ts';
import { buildResource } from '../otel/resource.ts';

export async function configurePipeline(
  p: Pipeline,
  config: ResolvedConfig,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  p.store.configure({
    labelAllowlist: config.pods.labelAllowlist,
    cardinalityLimit: config.cardinalityLimit,
  });
  p.store.setDefinitions(
    config.probes.flatMap((rp) =>
      rp.spec.metrics.map((def) => ({
        def,
        probe: rp.spec.name,
        enabled: config.metricEnabled.get(def.name) ?? def.enabled,
      })),
    ),
  );
  p.events.configure({
    stacks: config.kernelStacks,
    labelAllowlist: config.pods.labelAllowlist,
    defs: [
      ...config.probes.flatMap((rp) =>
        rp.spec.events.map((def) => ({
          def,
          probe: rp.spec.name,
          enabled: config.eventEnabled.get(def.name) ?? def.enabled,
        })),
      ),
      // the follow-up record of triggered captures (receiver/capture/trigger.ts)
      ...CAPTURE_EVENTS,
    ],
  });
  await p.applyExports(exportSettings(config, env));
}

function exportSettings(c: ResolvedConfig, env: NodeJS.ProcessEnv): ExportSettings {
  const resource = buildResource({
    nodeName: c.nodeName,
    clusterName: c.clusterName,
    disabled: c.resourceAttributesDisabled,
    env,
  });
  return {
    resource,
    prometheus: c.prometheus,
    metrics: c.otlpMetrics,
    logs: c.otlpLogs
      ? {
          ...c.otlpLogs,
          maxQueueSize: c.eventQueue.maxQueueSize,
          maxExportBatchSize: c.eventQueue.maxExportBatchSize,
          scheduledDelayMs: c.eventQueue.scheduledDelayMs,
        }
      : undefined,
  };
}
