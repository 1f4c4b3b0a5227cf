// podnet's configuration file, shaped like an OTel Collector receiver config (collection_interval,
// per-probe enabled + args, per-metric and per-event `enabled`, exporters). The schema is strict: an unknown
// key is an error, so a typo never silently does nothing.
import { z } from 'zod';
import { captureSchema } from '../capture/config.ts';
import { duration } from './duration.ts';

const ADDRESS_RE = /^(?:\[([0-9a-fA-F:]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export function parseAddress(v: string): HostPort | undefined {
  const m = ADDRESS_RE.exec(v);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

const address = z.string().transform((v, ctx) => {
  const a = parseAddress(v);
  if (!a) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected host:port with a port from 0 to 65535, e.g. 127.0.0.1:9464 or [::1]:9464',
      input: v,
    });
    return z.NEVER;
  }
  return a;
});

const url = z.string().refine(
  (v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  },
  { message: 'expected an http:// or https:// URL, e.g. http://collector:4317' },
);

const enabledOnly = z.strictObject({ enabled: z.boolean() });

export const configSchema = z.strictObject({
  collection_interval: duration(100, 3_600_000).default(10_000),
  node_name: z.string().optional(),
  cluster_name: z.string().optional(),
  /** Per resource attribute podnet sets (host.name, service.instance.id, ...): `enabled`. */
  resource_attributes: z.record(z.string(), enabledOnly).default({}),
  cardinality_limit: z.number().int().min(1).max(10_000_000).default(10_000),
  /** Kernel stacks on event records (podnet.kernel.stack, code.stacktrace); each eBPF probe's `stacks` arg decides capture. */
  kernel_stacks: z.boolean().default(true),
  probes: z
    .record(
      z.string(),
      z.strictObject({
        enabled: z.boolean().optional(),
        args: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .default({}),
  metrics: z.record(z.string(), enabledOnly).default({}),
  events: z.record(z.string(), enabledOnly).default({}),
  pods: z
    .strictObject({
      cri_endpoint: z.string().min(1).optional(),
      label_allowlist: z.array(z.string().min(1)).default([]),
      /** Plain netns (named, other processes') as entities: while no CRI runtime is reached, always, never. */
      netns_discovery: z.enum(['auto', 'always', 'never']).default('auto'),
    })
    .default({ label_allowlist: [], netns_discovery: 'auto' }),
  server: z
    .strictObject({
      enabled: z.boolean().default(true),
      address: address.default({ host: '127.0.0.1', port: 9464 }),
      /**
       * File holding a bearer token every request but /healthz and /readyz must carry (`Authorization:
       * Bearer …`). Empty = none, so a config can say `${env:PODNET_TOKEN_FILE:-}`.
       */
      bearer_token_file: z.string().optional(),
      /** Serve HTTPS with this PEM certificate (chain) and key. */
      tls: z.strictObject({ cert_file: z.string().min(1), key_file: z.string().min(1) }).optional(),
    })
    .default({ enabled: true, address: { host: '127.0.0.1', port: 9464 } }),
  exporters: z
    .strictObject({
      prometheus: z.strictObject({ enabled: z.boolean().default(true) }).default({ enabled: true }),
      otlp: z
        .strictObject({
          enabled: z.boolean().optional(),
          endpoint: url.optional(),
          protocol: z.enum(['grpc', 'http/protobuf', 'http/json']).optional(),
          headers: z.record(z.string(), z.string()).default({}),
          interval: duration(100, 3_600_000).optional(),
          temporality: z.enum(['cumulative', 'delta']).optional(),
          timeout: duration(100, 600_000).default(10_000),
          /** Unset: OTEL_EXPORTER_OTLP_[<SIGNAL>_]COMPRESSION (read by the SDK exporters), else none. */
          compression: z.enum(['gzip', 'none']).optional(),
          /** As the Collector's OTLP exporter `tls`; unset files: the OTEL_EXPORTER_OTLP_*CERTIFICATE variables. */
          tls: z
            .strictObject({
              ca_file: z.string().min(1).optional(),
              cert_file: z.string().min(1).optional(),
              key_file: z.string().min(1).optional(),
              insecure: z.boolean().default(false),
            })
            .optional(),
          metrics: z.boolean().default(true),
          logs: z.boolean().default(true),
        })
        .default({ headers: {}, timeout: 10_000, metrics: true, logs: true }),
      events_jsonl: z
        .strictObject({
          enabled: z.boolean().default(false),
          path: z.string().min(1).default('-'),
        })
        .default({ enabled: false, path: '-' }),
    })
    .default({
      prometheus: { enabled: true },
      otlp: { headers: {}, timeout: 10_000, metrics: true, logs: true },
      events_jsonl: { enabled: false, path: '-' },
    }),
  capture: captureSchema,
  event_queue: z
    .strictObject({
      max_queue_size: z.number().int().min(1).max(1_000_000).default(2048),
      max_export_batch_size: z.number().int().min(1).max(100_000).default(512),
      schedule_delay: duration(10, 60_000).default(1000),
    })
    .default({ max_queue_size: 2048, max_export_batch_size: 512, schedule_delay: 1000 }),
  /** Peer identity on events (receiver/peers): node-local knowledge, plus the Kubernetes API when reachable. */
  peers: z
    .strictObject({
      enabled: z.boolean().default(true),
      kubernetes: z
        .strictObject({
          /** auto: in-cluster when KUBERNETES_SERVICE_HOST is set or api_server is configured; on; off. */
          mode: z.enum(['auto', 'on', 'off']).default('auto'),
          api_server: url.optional(),
          token_file: z.string().min(1).optional(),
          ca_file: z.string().min(1).optional(),
          /** Addresses indexed from the API at most (pods, Services, endpoints, nodes); more are counted. */
          max_addresses: z.number().int().min(1).max(10_000_000).default(200_000),
        })
        .default({ mode: 'auto', max_addresses: 200_000 }),
    })
    .default({ enabled: true, kubernetes: { mode: 'auto', max_addresses: 200_000 } }),
});

export type RawConfig = z.output<typeof configSchema>;
