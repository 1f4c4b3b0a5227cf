// The agent's Resource: node identity. Every entity Resource (entity-resources.ts) starts from it.
// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win over podnet's defaults, as the spec requires.
//
// Identity that survives a DaemonSet rollout: `host.name` is the node name (in the DaemonSet,
// os.hostname() is podnet's own pod name, which changes with every rollout), `service.instance.id` is a
// UUID v5 of the node name (and cluster name), as the service semconv recommends for a stable instance id.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import {
  detectResources,
  envDetector,
  type Resource,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  ATTR_HOST_NAME,
  ATTR_K8S_CLUSTER_NAME,
  ATTR_K8S_NODE_NAME,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from './semconv.ts';
import { PODNET_VERSION } from './version.ts';

/** Resource attributes podnet sets itself, each with a `resource_attributes.<name>.enabled` switch. */
export const AGENT_RESOURCE_ATTRIBUTES = [
  ATTR_SERVICE_VERSION,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_HOST_NAME,
  ATTR_K8S_NODE_NAME,
  ATTR_K8S_CLUSTER_NAME,
] as const;

export interface ResourceOptions {
  /** `k8s.node.name`; default K8S_NODE_NAME, then NODE_NAME; omitted when none is known. */
  readonly nodeName?: string | undefined;
  /** `k8s.cluster.name`; default K8S_CLUSTER_NAME; omitted when none is known. */
  readonly clusterName?: string | undefined;
  /** `resource_attributes.<name>.enabled: false` entries: attributes left out. */
  readonly disabled?: ReadonlySet<string>;
  readonly env?: NodeJS.ProcessEnv;
}

export function nodeNameFrom(
  configured: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  for (const v of [configured, env['K8S_NODE_NAME'], env['NODE_NAME']])
    if (v !== undefined && v !== '') return v;
  return undefined;
}

export function clusterNameFrom(
  configured: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  for (const v of [configured, env['K8S_CLUSTER_NAME']]) if (v !== undefined && v !== '') return v;
  return undefined;
}

/** UUID v5 (RFC 9562) of `name` in the namespace the service semconv gives for service.instance.id. */
export function uuidV5(name: string, namespace = '4d63009a-8d0f-11ee-aad7-4c796ed8e320'): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest().subarray(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function buildResource(options: ResourceOptions = {}): Resource {
  const env = options.env ?? process.env;
  const node = nodeNameFrom(options.nodeName, env);
  const cluster = clusterNameFrom(options.clusterName, env);
  const host = node ?? hostname();
  const attrs: Record<string, string> = {
    [ATTR_SERVICE_NAME]: 'podnet',
    [ATTR_SERVICE_VERSION]: PODNET_VERSION,
    // Stable for one node's agent across restarts and rollouts; distinct per node (and cluster).
    [ATTR_SERVICE_INSTANCE_ID]: uuidV5(`podnet/${cluster ?? ''}/${host}`),
    [ATTR_HOST_NAME]: host,
  };
  if (node !== undefined) attrs[ATTR_K8S_NODE_NAME] = node;
  if (cluster !== undefined) attrs[ATTR_K8S_CLUSTER_NAME] = cluster;
  for (const k of options.disabled ?? []) delete attrs[k];
  // envDetector reads process.env: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (they take precedence).
  return resourceFromAttributes(attrs).merge(detectResources({ detectors: [envDetector] }));
}
