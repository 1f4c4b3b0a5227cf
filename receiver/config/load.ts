// Config file → validated, resolved config. Every error names the key path, the value found and what was
// expected, e.g. `probes.synthetic.args.gauge_value: got "high", expected number`.
// `${env:NAME}`, `${NAME}` and `${env:NAME:-default}` in string values are replaced from the environment
// (the Collector's syntax). An empty or absent file gives the embedded defaults.
//
// The OTLP exporter settings (exporters.otlp and the OTEL_* variables) are resolved in otlp.ts.
import { readFileSync } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import type { AnyProbeSpec } from '../../probes/registry.ts';
import { AGENT_RESOURCE_ATTRIBUTES } from '../otel/resource.ts';
import { socketPathOf } from '../pods/endpoint.ts';
import { normalizeArgKeys, snakePath } from './arg-keys.ts';
import { ConfigError, type ConfigIssue } from './errors.ts';
import {
  exporterLists,
  type OtlpMetricsResolved,
  type OtlpResolved,
  otlpSettings,
  otlpSignals,
} from './otlp.ts';
import { configSchema, type HostPort, type RawConfig } from './schema.ts';

// Part of this module's API (the CLI, the agent and tests catch ConfigError from here).
export { ConfigError, type ConfigIssue, type OtlpResolved };

export interface ResolvedProbe {
  readonly spec: AnyProbeSpec;
  readonly enabled: boolean;
  readonly args: unknown;
}

export interface ResolvedConfig {
  /** The file it came from, or `(embedded default)`. */
  readonly source: string;
  /** Accepted but deprecated spellings (camelCase probe args), each naming the key and its new spelling. */
  readonly warnings: readonly ConfigIssue[];
  readonly raw: RawConfig;
  readonly collectionIntervalMs: number;
  readonly nodeName?: string | undefined;
  readonly clusterName?: string | undefined;
  /** Resource attributes switched off with `resource_attributes.<name>.enabled: false`. */
  readonly resourceAttributesDisabled: ReadonlySet<string>;
  readonly cardinalityLimit: number;
  readonly kernelStacks: boolean;
  /** One entry per known probe, in registry order. */
  readonly probes: readonly ResolvedProbe[];
  readonly metricEnabled: ReadonlyMap<string, boolean>;
  readonly eventEnabled: ReadonlyMap<string, boolean>;
  readonly pods: {
    readonly criEndpoint?: string | undefined;
    readonly labelAllowlist: readonly string[];
    readonly netnsDiscovery: 'auto' | 'always' | 'never';
  };
  readonly server: {
    readonly enabled: boolean;
    readonly address: HostPort;
    /** Set only when configured. */
    readonly bearerTokenFile?: string;
    readonly tls?: { readonly certFile: string; readonly keyFile: string };
  };
  readonly prometheus: boolean;
  readonly otlpMetrics?: OtlpMetricsResolved | undefined;
  readonly otlpLogs?: OtlpResolved | undefined;
  readonly eventsJsonl: { readonly enabled: boolean; readonly path: string };
  readonly eventQueue: {
    readonly maxQueueSize: number;
    readonly maxExportBatchSize: number;
    readonly scheduledDelayMs: number;
  };
}

export const EMBEDDED_SOURCE = '(embedded default)';

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') {
    // Long values are cut: an error message names the value, it does not echo a 100 kB string into the log.
    const s = JSON.stringify(v.length > 200 ? v.slice(0, 200) : v);
    return v.length > 200 ? `${s.slice(0, -1)}..." (${v.length} characters)` : s;
  }
  try {
    const s = JSON.stringify(v);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(v);
  }
}

function getAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function joinPath(prefix: string, path: readonly PropertyKey[]): string {
  const parts = [prefix, ...path.map(String)].filter((p) => p !== '');
  return parts.length === 0 ? '(root)' : parts.join('.');
}

/**
 * Zod issues → path + "got X, expected Y" messages. `displayPath` turns a schema path into the keys the
 * file uses (probe args: snake_case).
 */
export function zodIssues(
  error: z.ZodError,
  input: unknown,
  prefix = '',
  displayPath: (path: readonly PropertyKey[]) => readonly PropertyKey[] = (p) => p,
): ConfigIssue[] {
  return error.issues.map((issue) => {
    const path = joinPath(prefix, displayPath(issue.path));
    const value = 'input' in issue ? issue.input : getAt(input, issue.path);
    switch (issue.code) {
      case 'invalid_type':
        return { path, message: `got ${show(value)}, expected ${issue.expected}` };
      case 'unrecognized_keys':
        return {
          path,
          message: `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`,
        };
      case 'invalid_value':
        return {
          path,
          message: `got ${show(value)}, expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`,
        };
      case 'too_small':
        return {
          path,
          message: `got ${show(value)}, expected ${issue.origin === 'string' ? 'a length' : 'a value'} >= ${String(issue.minimum)}`,
        };
      case 'too_big':
        return {
          path,
          message: `got ${show(value)}, expected ${issue.origin === 'string' ? 'a length' : 'a value'} <= ${String(issue.maximum)}`,
        };
      default:
        return { path, message: `got ${show(value)}, ${issue.message}` };
    }
  });
}

const ENV_RE = /\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function substituteEnv(v: unknown, env: NodeJS.ProcessEnv, path: string, issues: ConfigIssue[]): unknown {
  if (typeof v === 'string') {
    return v.replace(ENV_RE, (whole, name: string, def: string | undefined) => {
      const val = env[name];
      if (val !== undefined && val !== '') return val;
      if (def !== undefined) return def;
      issues.push({
        path: path || '(root)',
        message: `got ${show(v)}, but ${whole.length > 80 ? `${whole.slice(0, 77)}...` : whole}: ${name.length > 64 ? `${name.slice(0, 61)}...` : name} is not set`,
      });
      return '';
    });
  }
  if (Array.isArray(v)) return v.map((x, i) => substituteEnv(x, env, `${path}.${i}`, issues));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = substituteEnv(x, env, path ? `${path}.${k}` : k, issues);
    return out;
  }
  return v;
}

/** Parse YAML text into plain data; syntax errors and duplicate keys become ConfigErrors with a line. */
export function parseYaml(text: string, source: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { path: '(yaml)', message: `line ${pos.line} column ${pos.col}: ${e.message.split('\n')[0]}` };
      }),
    );
  }
  let js: unknown;
  try {
    // Aliases are resolved here: an unknown alias or an alias bomb (over maxAliasCount) throws.
    js = doc.toJS();
  } catch (err) {
    throw new ConfigError(source, [
      { path: '(yaml)', message: `line 1 column 1: ${(err as Error).message.split('\n')[0]}` },
    ]);
  }
  if (doc.contents !== null && (isSeq(doc.contents) || !isMap(doc.contents))) {
    throw new ConfigError(source, [
      {
        path: '(root)',
        message: `got ${show(js)}, expected a mapping of keys (collection_interval, probes, ...)`,
      },
    ]);
  }
  return js ?? {};
}

export interface LoadOptions {
  readonly specs: readonly AnyProbeSpec[];
  readonly env?: NodeJS.ProcessEnv;
}

/** Validate a config given as text (YAML). Throws ConfigError. */
export function resolveConfigText(text: string, source: string, options: LoadOptions): ResolvedConfig {
  const env = options.env ?? process.env;
  const data = parseYaml(text, source);
  const issues: ConfigIssue[] = [];
  const substituted = substituteEnv(data, env, '', issues);
  if (issues.length > 0) throw new ConfigError(source, issues);
  const parsed = configSchema.safeParse(substituted, { reportInput: true });
  if (!parsed.success) throw new ConfigError(source, zodIssues(parsed.error, substituted));
  return resolve(parsed.data, source, options.specs, env, substituted);
}

export function loadConfigFile(path: string | undefined, options: LoadOptions): ResolvedConfig {
  if (path === undefined) return resolveConfigText('', EMBEDDED_SOURCE, options);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [{ path: '(file)', message: `cannot read: ${(err as Error).message}` }]);
  }
  return resolveConfigText(text, path, options);
}

function resolve(
  raw: RawConfig,
  source: string,
  specs: readonly AnyProbeSpec[],
  env: NodeJS.ProcessEnv,
  input: unknown,
): ResolvedConfig {
  const issues: ConfigIssue[] = [];
  /** Was `path` written in the file (as opposed to filled in by a default)? */
  const explicit = (...path: string[]): boolean => getAt(input, path) !== undefined;
  /** A standard integer env var (ms or count); undefined when unset; an issue when malformed. */
  const envInt = (name: string, min: number): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      issues.push({
        path: `env ${name}`,
        message: `got ${JSON.stringify(v)}, expected an integer >= ${min}`,
      });
      return undefined;
    }
    return n;
  };
  const exporters = exporterLists(env, issues);
  const metricsExporters = exporters.metrics;
  const byName = new Map(specs.map((s) => [s.name, s]));
  for (const name of Object.keys(raw.probes)) {
    if (!byName.has(name)) {
      issues.push({
        path: `probes.${name}`,
        message: `unknown probe ${JSON.stringify(name)}, expected one of ${[...byName.keys()].map((n) => JSON.stringify(n)).join(', ') || '(no probes registered)'}`,
      });
    }
  }
  const probes: ResolvedProbe[] = [];
  const warnings: ConfigIssue[] = [];
  for (const spec of specs) {
    const entry = raw.probes[spec.name];
    const prefix = `probes.${spec.name}.args`;
    const keys = normalizeArgKeys(spec.args, entry?.args ?? {}, prefix);
    warnings.push(...keys.warnings);
    if (keys.issues.length > 0) {
      issues.push(...keys.issues);
      continue;
    }
    const argsIn = keys.value;
    const parsed = spec.args.safeParse(argsIn, { reportInput: true });
    if (!parsed.success) {
      issues.push(...zodIssues(parsed.error, argsIn, prefix, snakePath));
      continue;
    }
    probes.push({ spec, enabled: entry?.enabled ?? spec.defaultEnabled, args: parsed.data });
  }
  const metricNames = new Set(specs.flatMap((s) => s.metrics.map((m) => m.name)));
  const eventNames = new Set(specs.flatMap((s) => s.events.map((e) => e.name)));
  for (const name of Object.keys(raw.metrics))
    if (!metricNames.has(name))
      issues.push({
        path: `metrics.${name}`,
        message: `unknown metric ${JSON.stringify(name)}, expected a metric declared by a probe (see docs/reference.md)`,
      });
  for (const name of Object.keys(raw.events))
    if (!eventNames.has(name))
      issues.push({
        path: `events.${name}`,
        message: `unknown event ${JSON.stringify(name)}, expected an event declared by a probe (see docs/reference.md)`,
      });

  for (const name of Object.keys(raw.resource_attributes))
    if (!(AGENT_RESOURCE_ATTRIBUTES as readonly string[]).includes(name))
      issues.push({
        path: `resource_attributes.${name}`,
        message: `unknown resource attribute ${JSON.stringify(name)}, expected one of ${AGENT_RESOURCE_ATTRIBUTES.map((a) => JSON.stringify(a)).join(', ')}`,
      });

  if (raw.pods.cri_endpoint !== undefined) {
    try {
      socketPathOf(raw.pods.cri_endpoint);
    } catch (err) {
      issues.push({
        path: 'pods.cri_endpoint',
        message: `got ${JSON.stringify(raw.pods.cri_endpoint)}, expected unix:///absolute/path.sock (${(err as Error).message})`,
      });
    }
  }
  const otlpCtx = { raw, env, issues, exporters, explicit, envInt };
  const settings = otlpSettings(otlpCtx);
  const prometheus = explicit('exporters', 'prometheus', 'enabled')
    ? raw.exporters.prometheus.enabled
    : metricsExporters !== undefined
      ? metricsExporters.has('prometheus')
      : raw.exporters.prometheus.enabled;
  const eq = raw.event_queue;
  const eventQueue = {
    maxQueueSize: explicit('event_queue', 'max_queue_size')
      ? eq.max_queue_size
      : (envInt('OTEL_BLRP_MAX_QUEUE_SIZE', 1) ?? eq.max_queue_size),
    maxExportBatchSize: explicit('event_queue', 'max_export_batch_size')
      ? eq.max_export_batch_size
      : (envInt('OTEL_BLRP_MAX_EXPORT_BATCH_SIZE', 1) ?? eq.max_export_batch_size),
    scheduledDelayMs: explicit('event_queue', 'schedule_delay')
      ? eq.schedule_delay
      : (envInt('OTEL_BLRP_SCHEDULE_DELAY', 1) ?? eq.schedule_delay),
  };
  const { otlpMetrics, otlpLogs } = otlpSignals(otlpCtx, settings);
  if (issues.length > 0)
    throw new ConfigError(
      source,
      issues.filter((i, n) => issues.findIndex((j) => j.path === i.path && j.message === i.message) === n),
    );
  return {
    source,
    warnings,
    raw,
    collectionIntervalMs: raw.collection_interval,
    nodeName: raw.node_name === '' ? undefined : raw.node_name,
    clusterName: raw.cluster_name === '' ? undefined : raw.cluster_name,
    resourceAttributesDisabled: new Set(
      Object.entries(raw.resource_attributes)
        .filter(([, v]) => !v.enabled)
        .map(([k]) => k),
    ),
    cardinalityLimit: raw.cardinality_limit,
    kernelStacks: raw.kernel_stacks,
    probes,
    metricEnabled: new Map(Object.entries(raw.metrics).map(([k, v]) => [k, v.enabled])),
    eventEnabled: new Map(Object.entries(raw.events).map(([k, v]) => [k, v.enabled])),
    pods: {
      criEndpoint: raw.pods.cri_endpoint,
      labelAllowlist: raw.pods.label_allowlist,
      netnsDiscovery: raw.pods.netns_discovery,
    },
    server: {
      enabled: raw.server.enabled,
      address: raw.server.address,
      ...(raw.server.bearer_token_file ? { bearerTokenFile: raw.server.bearer_token_file } : {}),
      ...(raw.server.tls
        ? { tls: { certFile: raw.server.tls.cert_file, keyFile: raw.server.tls.key_file } }
        : {}),
    },
    prometheus,
    otlpMetrics,
    otlpLogs,
    eventsJsonl: raw.exporters.events_jsonl,
    eventQueue,
  };
}
