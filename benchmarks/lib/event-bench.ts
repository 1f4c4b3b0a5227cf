// What the user-space event benchmarks share (benchmarks/otel/stack-cost.ts, benchmarks/otel/events.ts): a
// set of pod entities, the one event definition they emit, and the pipeline with podnet's events path and,
// when an endpoint is given, the OTLP http/protobuf logs exporter (its export worker) as `podnet run` sets
// them up (receiver/otel/pipeline.ts).
import { StaticEntitySource } from '../../receiver/agent/static-entities.ts';
import { childLogger } from '../../receiver/log/logger.ts';
import { Pipeline } from '../../receiver/otel/pipeline.ts';
import { buildResource } from '../../receiver/otel/resource.ts';
import type { Entity } from '../../receiver/pods/entity.ts';

export const BENCH_EVENT = 'podnet.bench.drop';

/** `count` pods in namespace `ns`, netns inodes from `firstInode` on. */
export function benchPods(count: number, firstInode: number, labels: Record<string, string> = {}): Entity[] {
  return Array.from({ length: count }, (_, k) => ({
    kind: 'pod',
    netnsInode: firstInode + k,
    netnsPath: '',
    displayName: `ns/pod-${k}`,
    pod: {
      uid: `uid-${k}`,
      name: `pod-${k}`,
      namespace: 'ns',
      labels,
      ips: [],
      sandboxId: '',
      hostNetwork: false,
    },
  }));
}

export interface BenchPipelineOptions {
  readonly entities: readonly Entity[];
  /** OTLP/HTTP logs endpoint; none = no exporter (events stop at the pipeline). */
  readonly logsEndpoint?: string;
  readonly timeoutMs?: number;
  readonly labelAllowlist?: readonly string[];
}

/** A Pipeline emitting BENCH_EVENT with stacks allowed, exporting to `logsEndpoint` when given. */
export async function benchPipeline(o: BenchPipelineOptions): Promise<Pipeline> {
  const p = new Pipeline({
    entities: new StaticEntitySource([...o.entities]),
    log: childLogger('bench'),
    ...(o.labelAllowlist ? { labelAllowlist: [...o.labelAllowlist] } : {}),
  });
  p.events.configure({
    stacks: true,
    defs: [
      {
        def: {
          name: BENCH_EVENT,
          description: '',
          severity: 'WARN',
          attributes: [],
          types: [],
          enabled: true,
        },
        probe: 'bench',
        enabled: true,
      },
    ],
  });
  await p.applyExports({
    resource: buildResource({ env: {} }),
    prometheus: false,
    ...(o.logsEndpoint
      ? {
          logs: {
            protocol: 'http/protobuf' as const,
            endpoint: o.logsEndpoint,
            headers: {},
            timeoutMs: o.timeoutMs ?? 30_000,
            maxQueueSize: 1_000_000,
            maxExportBatchSize: 2048,
            scheduledDelayMs: 200,
          },
        }
      : {}),
  });
  return p;
}
