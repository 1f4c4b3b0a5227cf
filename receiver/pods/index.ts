// Public surface of pod discovery. The agent builds one EntityRegistry from the `pods:` config section,
// awaits start(), and hands it on as the EntitySource.
import type { RegistryOptions } from './registry-options.ts';

// cri-client.ts (gRPC) is imported by the registry once a CRI socket is found; import it directly for the client.
export type { CriErrorKind } from './cri-client.ts';
export { DEFAULT_CRI_SOCKETS, resolveCriEndpoint, socketPathOf } from './endpoint.ts';
export type { Entity, EntityChange, EntityKind, EntitySource, PodIdentity } from './entity.ts';
export {
  compileLabelPolicy,
  LABEL_CEILINGS,
  LABEL_DEFAULTS,
  LabelPolicyError,
  podLabelAttributes,
} from './labels.ts';
export { listNamedNetns, scanProcNetns } from './netns-discovery.ts';
export { EntityRegistry } from './registry.ts';
export { type RegistryOptions, RegistryOptionsError, type RegistryStatus } from './registry-options.ts';

/** The `pods:` section as receiver/config/load.ts exposes it. */
export interface PodsConfig {
  readonly criEndpoint?: string | undefined;
  readonly labelAllowlist: readonly string[];
}

/** Registry options from the config section; `extra` wins (tests, CLI flags). */
export function registryOptionsFromConfig(pods: PodsConfig, extra: RegistryOptions = {}): RegistryOptions {
  return {
    ...(pods.criEndpoint !== undefined ? { criEndpoint: pods.criEndpoint } : {}),
    labels: { allow: [...pods.labelAllowlist] },
    ...extra,
  };
}
