// Structural validator for OpenTelemetry Collector configurations (the files in otel-config/).
//
// No Collector binary can be installed here, so this is the Collector's own config model written down for
// the components podnet's configs use: each component's keys come from its documented configuration (the
// component READMEs / config.go of collector and collector-contrib), strict (an unknown key is an error, as
// the Collector's own unmarshalling rejects unknown fields), and the service section is checked the way the
// Collector checks it at start-up (every component a pipeline names is defined, used with a signal it
// supports, extensions exist). Component types unknown to this table are errors: add them here with their
// documented keys before using them in a config.
import { z } from 'zod';

export type Signal = 'metrics' | 'logs' | 'traces';
export type Kind = 'receivers' | 'processors' | 'exporters' | 'extensions';

/** Go duration (`time.ParseDuration`) or an env reference. */
const duration = z
  .string()
  .regex(/^(\$\{env:[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$/, 'a Go duration');
const endpoint = z.string().min(1);
const anyScalar = z.union([z.string(), z.number(), z.boolean()]);

const tlsClient = z.strictObject({
  insecure: z.boolean().optional(),
  insecure_skip_verify: z.boolean().optional(),
  ca_file: z.string().optional(),
  cert_file: z.string().optional(),
  key_file: z.string().optional(),
  min_version: z.string().optional(),
  max_version: z.string().optional(),
  server_name_override: z.string().optional(),
});
const tlsServer = z.strictObject({
  ca_file: z.string().optional(),
  cert_file: z.string().optional(),
  key_file: z.string().optional(),
  client_ca_file: z.string().optional(),
  min_version: z.string().optional(),
  max_version: z.string().optional(),
});
const retryOnFailure = z.strictObject({
  enabled: z.boolean().optional(),
  initial_interval: duration.optional(),
  randomization_factor: z.number().optional(),
  multiplier: z.number().optional(),
  max_interval: duration.optional(),
  max_elapsed_time: duration.optional(),
});
const sendingQueue = z.strictObject({
  enabled: z.boolean().optional(),
  num_consumers: z.number().int().positive().optional(),
  queue_size: z.number().int().positive().optional(),
  sizer: z.enum(['requests', 'items', 'bytes']).optional(),
  block_on_overflow: z.boolean().optional(),
  wait_for_result: z.boolean().optional(),
  storage: z.string().optional(),
  /** exporterhelper batching after the queue (replaces the batch processor). */
  batch: z
    .strictObject({
      flush_timeout: duration.optional(),
      min_size: z.number().int().nonnegative().optional(),
      max_size: z.number().int().nonnegative().optional(),
      sizer: z.enum(['requests', 'items', 'bytes']).optional(),
    })
    .refine((b) => !b.max_size || b.min_size === undefined || b.max_size >= b.min_size, {
      message: 'max_size must be greater or equal to min_size',
    })
    .optional(),
});
const httpClient = {
  endpoint: endpoint.optional(),
  tls: tlsClient.optional(),
  headers: z.record(z.string(), z.string()).optional(),
  timeout: duration.optional(),
  compression: z.enum(['gzip', 'zstd', 'snappy', 'zlib', 'deflate', 'lz4', 'none', '']).optional(),
  auth: z.strictObject({ authenticator: z.string() }).optional(),
  read_buffer_size: z.number().int().optional(),
  write_buffer_size: z.number().int().optional(),
};
const grpcServer = z.strictObject({
  endpoint: endpoint.optional(),
  transport: z.enum(['tcp', 'unix']).optional(),
  tls: tlsServer.optional(),
  max_recv_msg_size_mib: z.number().int().positive().optional(),
  max_concurrent_streams: z.number().int().positive().optional(),
  read_buffer_size: z.number().int().optional(),
  write_buffer_size: z.number().int().optional(),
  include_metadata: z.boolean().optional(),
});
const httpServer = z.strictObject({
  endpoint: endpoint.optional(),
  tls: tlsServer.optional(),
  cors: z
    .strictObject({
      allowed_origins: z.array(z.string()).optional(),
      allowed_headers: z.array(z.string()).optional(),
      max_age: z.number().int().optional(),
    })
    .optional(),
  include_metadata: z.boolean().optional(),
  traces_url_path: z.string().optional(),
  metrics_url_path: z.string().optional(),
  logs_url_path: z.string().optional(),
});

/** OTTL statement sanity: balanced quotes/parens and a known editor or function at its head. */
const OTTL_EDITORS = ['set', 'delete_key', 'delete_matching_keys', 'keep_keys', 'replace_pattern', 'limit'];
export function ottlProblem(statement: string): string | undefined {
  const head = /^([a-z_]+)\(/.exec(statement);
  if (!head || !OTTL_EDITORS.includes(head[1]!)) return `unknown OTTL editor at the start of: ${statement}`;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < statement.length; i++) {
    const c = statement[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '(') depth++;
    else if (c === ')' && --depth < 0) return `unbalanced ')' in: ${statement}`;
  }
  if (inString) return `unterminated string in: ${statement}`;
  if (depth !== 0) return `unbalanced '(' in: ${statement}`;
  return undefined;
}
const ottlStatement = z.string().superRefine((s, ctx) => {
  const p = ottlProblem(s);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
const ottlGroup = z.array(
  z.union([
    ottlStatement,
    z.strictObject({
      context: z.enum(['resource', 'scope', 'metric', 'datapoint', 'log', 'span', 'spanevent']),
      conditions: z.array(z.string()).optional(),
      error_mode: z.enum(['ignore', 'silent', 'propagate']).optional(),
      statements: z.array(ottlStatement).min(1),
    }),
  ]),
);

export interface ComponentSpec {
  readonly kind: Kind;
  readonly signals: readonly Signal[];
  readonly schema: z.ZodType;
  /** Former names still accepted by the Collector as deprecated aliases. */
  readonly aliases?: readonly string[];
}

const ALL: readonly Signal[] = ['metrics', 'logs', 'traces'];

export const COMPONENTS: Readonly<Record<string, ComponentSpec>> = {
  // receiver/otlpreceiver (core)
  otlp: {
    kind: 'receivers',
    signals: ALL,
    schema: z.strictObject({
      protocols: z
        .strictObject({ grpc: grpcServer.nullable().optional(), http: httpServer.nullable().optional() })
        .refine((p) => p.grpc !== undefined || p.http !== undefined, 'enable at least one protocol'),
    }),
  },
  // processor/memorylimiterprocessor (core)
  memory_limiter: {
    kind: 'processors',
    signals: ALL,
    schema: z
      .strictObject({
        check_interval: duration,
        limit_mib: z.number().int().positive().optional(),
        spike_limit_mib: z.number().int().positive().optional(),
        limit_percentage: z.number().int().min(1).max(100).optional(),
        spike_limit_percentage: z.number().int().min(1).max(100).optional(),
      })
      .refine((c) => c.limit_mib !== undefined || c.limit_percentage !== undefined, {
        message: "'limit_mib' or 'limit_percentage' must be greater than zero",
      })
      .refine(
        (c) =>
          c.limit_percentage === undefined ||
          c.spike_limit_percentage === undefined ||
          c.spike_limit_percentage < c.limit_percentage,
        { message: "'spike_limit_percentage' must be smaller than 'limit_percentage'" },
      ),
  },
  // processor/batchprocessor (core)
  batch: {
    kind: 'processors',
    signals: ALL,
    schema: z
      .strictObject({
        timeout: duration.optional(),
        send_batch_size: z.number().int().nonnegative().optional(),
        send_batch_max_size: z.number().int().nonnegative().optional(),
        metadata_keys: z.array(z.string()).optional(),
        metadata_cardinality_limit: z.number().int().optional(),
      })
      .refine(
        (c) =>
          !c.send_batch_max_size ||
          c.send_batch_size === undefined ||
          c.send_batch_max_size >= c.send_batch_size,
        { message: 'send_batch_max_size must be greater or equal to send_batch_size' },
      ),
  },
  // processor/groupbyattrsprocessor (contrib)
  groupbyattrs: {
    kind: 'processors',
    signals: ALL,
    schema: z.strictObject({ keys: z.array(z.string().min(1)).optional() }),
  },
  // processor/k8sattributesprocessor (contrib)
  k8s_attributes: {
    kind: 'processors',
    signals: ALL,
    aliases: ['k8sattributes'],
    schema: z.strictObject({
      auth_type: z.enum(['none', 'serviceAccount', 'kubeConfig', 'tls']).optional(),
      passthrough: z.boolean().optional(),
      wait_for_metadata: z.boolean().optional(),
      wait_for_metadata_timeout: duration.optional(),
      filter: z
        .strictObject({
          node: z.string().optional(),
          node_from_env_var: z.string().optional(),
          namespace: z.string().optional(),
          fields: z
            .array(z.strictObject({ key: z.string(), value: z.string(), op: z.string().optional() }))
            .optional(),
          labels: z
            .array(z.strictObject({ key: z.string(), value: z.string(), op: z.string().optional() }))
            .optional(),
        })
        .optional(),
      extract: z
        .strictObject({
          metadata: z.array(z.string().regex(/^(k8s|container|service)\.[a-z_.]+$/)).optional(),
          labels: z
            .array(
              z.strictObject({
                tag_name: z.string().optional(),
                key: z.string().optional(),
                key_regex: z.string().optional(),
                from: z
                  .enum(['pod', 'namespace', 'node', 'deployment', 'statefulset', 'daemonset', 'job'])
                  .optional(),
              }),
            )
            .optional(),
          annotations: z
            .array(
              z.strictObject({
                tag_name: z.string().optional(),
                key: z.string().optional(),
                key_regex: z.string().optional(),
                from: z
                  .enum(['pod', 'namespace', 'node', 'deployment', 'statefulset', 'daemonset', 'job'])
                  .optional(),
              }),
            )
            .optional(),
          otel_annotations: z.boolean().optional(),
        })
        .optional(),
      pod_association: z
        .array(
          z.strictObject({
            sources: z
              .array(
                z.strictObject({
                  from: z.enum(['resource_attribute', 'connection']),
                  name: z.string().optional(),
                }),
              )
              .min(1),
          }),
        )
        .optional(),
      exclude: z.strictObject({ pods: z.array(z.strictObject({ name: z.string() })).optional() }).optional(),
    }),
  },
  // processor/transformprocessor (contrib)
  transform: {
    kind: 'processors',
    signals: ALL,
    schema: z.strictObject({
      error_mode: z.enum(['ignore', 'silent', 'propagate']).optional(),
      trace_statements: ottlGroup.optional(),
      metric_statements: ottlGroup.optional(),
      log_statements: ottlGroup.optional(),
    }),
  },
  // processor/resourceprocessor (contrib)
  resource: {
    kind: 'processors',
    signals: ALL,
    schema: z.strictObject({
      attributes: z
        .array(
          z.strictObject({
            key: z.string(),
            action: z.enum(['insert', 'update', 'upsert', 'delete', 'hash', 'extract', 'convert']),
            value: anyScalar.optional(),
            from_attribute: z.string().optional(),
            from_context: z.string().optional(),
            pattern: z.string().optional(),
            converted_type: z.string().optional(),
          }),
        )
        .min(1),
    }),
  },
  // exporter/otlphttpexporter (core)
  otlp_http: {
    kind: 'exporters',
    signals: ALL,
    aliases: ['otlphttp'],
    schema: z.strictObject({
      ...httpClient,
      traces_endpoint: z.string().optional(),
      metrics_endpoint: z.string().optional(),
      logs_endpoint: z.string().optional(),
      encoding: z.enum(['proto', 'json']).optional(),
      retry_on_failure: retryOnFailure.optional(),
      sending_queue: sendingQueue.optional(),
    }),
  },
  // exporter/otlpexporter (core)
  otlp_grpc: {
    kind: 'exporters',
    signals: ALL,
    aliases: ['otlp'],
    schema: z.strictObject({
      endpoint,
      tls: tlsClient.optional(),
      headers: z.record(z.string(), z.string()).optional(),
      compression: z.enum(['gzip', 'zstd', 'snappy', 'none', '']).optional(),
      timeout: duration.optional(),
      balancer_name: z.string().optional(),
      auth: z.strictObject({ authenticator: z.string() }).optional(),
      retry_on_failure: retryOnFailure.optional(),
      sending_queue: sendingQueue.optional(),
    }),
  },
  // exporter/prometheusremotewriteexporter (contrib)
  prometheus_remote_write: {
    kind: 'exporters',
    signals: ['metrics'],
    aliases: ['prometheusremotewrite'],
    schema: z.strictObject({
      ...httpClient,
      endpoint,
      namespace: z.string().optional(),
      external_labels: z.record(z.string(), z.string()).optional(),
      resource_to_telemetry_conversion: z.strictObject({ enabled: z.boolean() }).optional(),
      // add_metric_suffixes: deprecated (the translation strategy decides; suffixes are the default), refused.
      send_metadata: z.boolean().optional(),
      max_batch_size_bytes: z.number().int().positive().optional(),
      protobuf_message: z.string().optional(),
      target_info: z.strictObject({ enabled: z.boolean() }).optional(),
      remote_write_queue: z
        .strictObject({
          enabled: z.boolean().optional(),
          queue_size: z.number().int().positive().optional(),
          num_consumers: z.number().int().positive().optional(),
        })
        .optional(),
      retry_on_failure: retryOnFailure.optional(),
      wal: z
        .strictObject({
          directory: z.string(),
          buffer_size: z.number().int().optional(),
          truncate_frequency: duration.optional(),
        })
        .optional(),
    }),
  },
  // exporter/debugexporter (core)
  debug: {
    kind: 'exporters',
    signals: ALL,
    schema: z.strictObject({
      verbosity: z.enum(['basic', 'normal', 'detailed']).optional(),
      sampling_initial: z.number().int().optional(),
      sampling_thereafter: z.number().int().optional(),
    }),
  },
  // extension/healthcheckextension (contrib)
  health_check: {
    kind: 'extensions',
    signals: [],
    schema: z.strictObject({
      endpoint: endpoint.optional(),
      path: z.string().optional(),
      tls: tlsServer.optional(),
    }),
  },
};

/**
 * Type name (before the `/`) → canonical type of that kind, including deprecated aliases (`otlp` is the
 * OTLP receiver and, as an exporter, the former name of `otlp_grpc`).
 */
export function canonicalType(type: string, kind: Kind): string | undefined {
  if (COMPONENTS[type]?.kind === kind) return type;
  for (const [name, spec] of Object.entries(COMPONENTS))
    if (spec.kind === kind && spec.aliases?.includes(type)) return name;
  return undefined;
}

const ID_RE = /^[a-z][a-z0-9_]*(\/[A-Za-z0-9_.-]+)?$/;
const ENV_REF_RE = /\$\{([^}]*)\}/g;
const ENV_OK_RE = /^env:[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?$/;

export interface CollectorProblem {
  readonly path: string;
  readonly message: string;
}

function walkStrings(v: unknown, path: string, out: Array<[string, string]>): void {
  if (typeof v === 'string') out.push([path, v]);
  else if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) walkStrings(x, `${path}[${i}]`, out);
  } else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) walkStrings(x, `${path}.${k}`, out);
}

/** Every `${...}` in the config: must be `${env:NAME}` or `${env:NAME:-default}`. Returns the names. */
export function envReferences(config: unknown, problems: CollectorProblem[] = []): Set<string> {
  const names = new Set<string>();
  const strings: Array<[string, string]> = [];
  walkStrings(config, '', strings);
  for (const [path, s] of strings) {
    for (const m of s.matchAll(ENV_REF_RE)) {
      if (!ENV_OK_RE.test(m[1]!)) problems.push({ path, message: `bad reference ${m[0]}: use \${env:NAME}` });
      else names.add(/^env:([A-Za-z0-9_]+)/.exec(m[1]!)![1]!);
    }
  }
  return names;
}

/** Validate a parsed Collector config; returns every problem found (empty = valid). */
export function validateCollectorConfig(config: unknown): CollectorProblem[] {
  const problems: CollectorProblem[] = [];
  const top = z
    .strictObject({
      receivers: z.record(z.string(), z.unknown()),
      processors: z.record(z.string(), z.unknown()).optional(),
      exporters: z.record(z.string(), z.unknown()),
      extensions: z.record(z.string(), z.unknown()).optional(),
      connectors: z.record(z.string(), z.unknown()).optional(),
      service: z.strictObject({
        extensions: z.array(z.string()).optional(),
        telemetry: z.record(z.string(), z.unknown()).optional(),
        pipelines: z.record(
          z.string(),
          z.strictObject({
            receivers: z.array(z.string()).min(1),
            processors: z.array(z.string()).optional(),
            exporters: z.array(z.string()).min(1),
          }),
        ),
      }),
    })
    .safeParse(config);
  if (!top.success) {
    for (const i of top.error.issues)
      problems.push({ path: i.path.join('.') || '(root)', message: i.message });
    return problems;
  }
  const c = top.data;
  const sections: Record<Kind, Record<string, unknown>> = {
    receivers: c.receivers,
    processors: c.processors ?? {},
    exporters: c.exporters,
    extensions: c.extensions ?? {},
  };
  for (const [kind, entries] of Object.entries(sections) as Array<[Kind, Record<string, unknown>]>) {
    for (const [id, body] of Object.entries(entries)) {
      const path = `${kind}.${id}`;
      if (!ID_RE.test(id)) {
        problems.push({ path, message: 'component id must be type[/name]' });
        continue;
      }
      const type = canonicalType(id.split('/')[0]!, kind);
      const spec = type === undefined ? undefined : COMPONENTS[type];
      if (!spec) {
        problems.push({ path, message: `unknown ${kind} type '${id.split('/')[0]}'` });
        continue;
      }
      const r = spec.schema.safeParse(body ?? {});
      if (!r.success)
        for (const i of r.error.issues)
          problems.push({ path: [path, ...i.path.map(String)].join('.'), message: i.message });
    }
  }
  const used: Record<Kind, Set<string>> = {
    receivers: new Set(),
    processors: new Set(),
    exporters: new Set(),
    extensions: new Set(c.service.extensions ?? []),
  };
  for (const ext of c.service.extensions ?? [])
    if (!(ext in sections.extensions))
      problems.push({ path: 'service.extensions', message: `extension '${ext}' is not defined` });
  for (const [pid, p] of Object.entries(c.service.pipelines)) {
    const signal = pid.split('/')[0] as Signal;
    if (!['metrics', 'logs', 'traces'].includes(signal)) {
      problems.push({
        path: `service.pipelines.${pid}`,
        message: 'pipeline id must be metrics|logs|traces[/name]',
      });
      continue;
    }
    for (const kind of ['receivers', 'processors', 'exporters'] as const) {
      const list = p[kind] ?? [];
      if (new Set(list).size !== list.length)
        problems.push({ path: `service.pipelines.${pid}.${kind}`, message: 'a component is listed twice' });
      for (const id of list) {
        used[kind].add(id);
        if (!(id in sections[kind])) {
          problems.push({
            path: `service.pipelines.${pid}.${kind}`,
            message: `'${id}' is not defined in ${kind}`,
          });
          continue;
        }
        const spec = COMPONENTS[canonicalType(id.split('/')[0]!, kind) ?? ''];
        if (spec && !spec.signals.includes(signal))
          problems.push({
            path: `service.pipelines.${pid}.${kind}`,
            message: `'${id}' does not support ${signal}`,
          });
      }
    }
    // The documented processor order: memory_limiter first, batch last.
    const procs = (p.processors ?? []).map((id) => canonicalType(id.split('/')[0]!, 'processors'));
    const ml = procs.indexOf('memory_limiter');
    if (ml > 0)
      problems.push({ path: `service.pipelines.${pid}.processors`, message: 'memory_limiter must be first' });
    const b = procs.indexOf('batch');
    if (b >= 0 && b !== procs.length - 1)
      problems.push({ path: `service.pipelines.${pid}.processors`, message: 'batch must be last' });
  }
  for (const kind of ['receivers', 'processors', 'exporters', 'extensions'] as const)
    for (const id of Object.keys(sections[kind]))
      if (!used[kind].has(id))
        problems.push({ path: `${kind}.${id}`, message: 'defined but not used by any pipeline' });
  envReferences(config, problems);
  return problems;
}
