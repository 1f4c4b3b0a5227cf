// The registry's options, its status shape and the validation of the options: its own file so that the
// registry (registry.ts) holds only the refresh loop, and so the config side can read the option types
// without the registry's code.
import type { Logger } from '../log/logger.ts';
import type { ResolvedEndpoint } from './endpoint.ts';
import type { LabelPolicyOptions } from './labels.ts';

export interface RegistryOptions {
  /** CRI endpoint from config (`unix:///run/containerd/containerd.sock`); else CONTAINER_RUNTIME_ENDPOINT, else the usual sockets. */
  criEndpoint?: string;
  /** Turn CRI off entirely (host/netns discovery only). */
  disableCri?: boolean;
  /** Environment to read CONTAINER_RUNTIME_ENDPOINT from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Sockets probed when nothing is configured (default DEFAULT_CRI_SOCKETS). */
  criCandidates?: readonly string[];
  /** Per-call CRI deadline (default 10 000 ms). */
  criTimeoutMs?: number;
  /** Refresh interval (default 10 000 ms, at least 100). */
  refreshIntervalMs?: number;
  /**
   * Plain netns entities (named netns, other /proc netns): `auto` (default) = only while no CRI runtime has
   * been reached, `always`, or `never`.
   */
  netnsDiscovery?: 'auto' | 'always' | 'never';
  /** Include netns found only through /proc/<pid>/ns/net (default true). */
  scanProc?: boolean;
  /** Directory of named netns (default /run/netns). */
  namedNetnsDir?: string;
  /** Pod labels copied onto signals. */
  labels?: LabelPolicyOptions;
  /** Parallel PodSandboxStatus calls for new sandboxes (default 8). */
  statusConcurrency?: number;
  /** Where discovery logs (default: component `pods`). */
  log?: Logger;
}

export interface RegistryStatus {
  readonly mode: 'cri' | 'netns';
  readonly cri: {
    readonly enabled: boolean;
    readonly endpoint?: string;
    readonly endpointSource?: ResolvedEndpoint['source'];
    readonly connected: boolean;
    readonly runtime?: string;
    readonly lastError?: string;
  };
  readonly refreshes: number;
  readonly lastRefresh?: { readonly at: number; readonly durationMs: number; readonly error?: string };
  readonly entities: number;
  readonly pods: number;
  readonly labels: { readonly droppedKeys: number; readonly truncatedValues: number };
  /** The node's netns the host entity stands for (docs/pods.md, "The host netns"). */
  readonly hostNetns: { readonly inode: number; readonly path: string; readonly fallback?: string };
}

export class RegistryOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryOptionsError';
  }
}

/** The options with their defaults applied. */
export type ResolvedRegistryOptions = Required<
  Pick<
    RegistryOptions,
    'refreshIntervalMs' | 'netnsDiscovery' | 'scanProc' | 'namedNetnsDir' | 'statusConcurrency'
  >
> &
  RegistryOptions;

/** Defaults applied; a bad value throws RegistryOptionsError naming the key. */
export function resolveRegistryOptions(opts: RegistryOptions): ResolvedRegistryOptions {
  const refreshIntervalMs = opts.refreshIntervalMs ?? 10_000;
  if (!Number.isFinite(refreshIntervalMs) || refreshIntervalMs < 100) {
    throw new RegistryOptionsError(`pods.refreshInterval must be at least 100 ms, got ${refreshIntervalMs}`);
  }
  const netnsDiscovery = opts.netnsDiscovery ?? 'auto';
  if (!['auto', 'always', 'never'].includes(netnsDiscovery)) {
    throw new RegistryOptionsError(
      `pods.netnsDiscovery must be auto, always or never, got "${netnsDiscovery}"`,
    );
  }
  const statusConcurrency = opts.statusConcurrency ?? 8;
  if (!Number.isInteger(statusConcurrency) || statusConcurrency < 1) {
    throw new RegistryOptionsError(
      `pods.statusConcurrency must be a positive integer, got ${statusConcurrency}`,
    );
  }
  return {
    ...opts,
    refreshIntervalMs,
    netnsDiscovery,
    scanProc: opts.scanProc ?? true,
    namedNetnsDir: opts.namedNetnsDir ?? '/run/netns',
    statusConcurrency,
  };
}
