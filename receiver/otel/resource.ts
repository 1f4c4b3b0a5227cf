// The Resource: node identity. Pod identity never goes here (one Resource per provider); it goes on data
// points and log records (see entity-attributes.ts). OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win
// over podnet's defaults, as the spec requires.
import { hostname } from 'node:os';
import {
  detectResources,
  envDetector,
  type Resource,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import { ATTR_HOST_NAME, ATTR_K8S_NODE_NAME, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from './semconv.ts';
import { PODNET_VERSION } from './version.ts';

export interface ResourceOptions {
  /** `k8s.node.name`; default K8S_NODE_NAME, then NODE_NAME; omitted when none is known. */
  readonly nodeName?: string | undefined;
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

export function buildResource(options: ResourceOptions = {}): Resource {
  const env = options.env ?? process.env;
  const attrs: Record<string, string> = {
    [ATTR_SERVICE_NAME]: 'podnet',
    [ATTR_SERVICE_VERSION]: PODNET_VERSION,
    [ATTR_HOST_NAME]: hostname(),
  };
  const node = nodeNameFrom(options.nodeName, env);
  if (node !== undefined) attrs[ATTR_K8S_NODE_NAME] = node;
  // envDetector reads process.env: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (they take precedence).
  return resourceFromAttributes(attrs).merge(detectResources({ detectors: [envDetector] }));
}
