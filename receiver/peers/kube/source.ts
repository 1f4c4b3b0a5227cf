// The cluster view for peer resolution: four list+watches (pods, services, endpointslices, nodes) feeding
// one KubeIndex. Loaded (dynamic import) only when the Kubernetes API is to be used: in-cluster
// (KUBERNETES_SERVICE_HOST set) or `peers.kubernetes.api_server` configured.
import { readFileSync } from 'node:fs';
import type { Logger } from '../../log/logger.ts';
import { API_PATHS, compact, metaOf } from './compact.ts';
import { KubeIndex, type KubeKind } from './index.ts';
import { type KubeConnection, ListWatch, type ListWatchStatus } from './watch.ts';

export const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeSourceOptions {
  /** API server URL; default in-cluster `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`. */
  readonly apiServer?: string | undefined;
  readonly tokenFile?: string | undefined;
  readonly caFile?: string | undefined;
  readonly maxAddresses?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly log: Logger;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  readonly timeoutSeconds?: number;
}

/** In-cluster connection from the service-account mount and the KUBERNETES_SERVICE_* variables. */
export function connectionOf(o: KubeSourceOptions): KubeConnection {
  const env = o.env ?? process.env;
  let server = o.apiServer;
  if (!server) {
    const host = env['KUBERNETES_SERVICE_HOST'];
    const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
    if (!host)
      throw new Error(
        'no Kubernetes API: KUBERNETES_SERVICE_HOST unset and peers.kubernetes.api_server not set',
      );
    server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  const tokenFile = o.tokenFile ?? (o.apiServer ? undefined : `${SA_DIR}/token`);
  const caFile = o.caFile ?? (o.apiServer ? undefined : `${SA_DIR}/ca.crt`);
  let token: { at: number; value: string | undefined } | undefined;
  return {
    server,
    ca: caFile ? readFileSync(caFile) : undefined,
    token: tokenFile
      ? () => {
          // re-read at most once a minute: kubelet rotates bound service-account tokens
          const now = Date.now();
          if (!token || now - token.at > 60_000) {
            let value: string | undefined;
            try {
              value = readFileSync(tokenFile, 'utf8').trim();
            } catch {
              value = token?.value;
            }
            token = { at: now, value };
          }
          return token.value;
        }
      : undefined,
  };
}

export class KubeSource {
  readonly index: KubeIndex;
  readonly server: string;
  readonly #watches = new Map<KubeKind, ListWatch>();

  constructor(o: KubeSourceOptions) {
    const conn = connectionOf(o);
    this.server = conn.server;
    this.index = new KubeIndex({ ...(o.maxAddresses !== undefined ? { maxAddresses: o.maxAddresses } : {}) });
    for (const kind of Object.keys(API_PATHS) as KubeKind[]) {
      this.#watches.set(
        kind,
        new ListWatch({
          conn,
          path: API_PATHS[kind],
          log: o.log,
          reduce: (item) => [metaOf(item).key, compact(kind, item)],
          onList: (items) => this.index.replace(kind, new Map(items as [string, never][])),
          onEvent: (ev) => {
            const key = metaOf(ev.object).key;
            if (ev.type === 'DELETED') this.index.delete(kind, key);
            else this.index.upsert(kind, key, compact(kind, ev.object) as never);
          },
          ...(o.backoffInitialMs !== undefined ? { backoffInitialMs: o.backoffInitialMs } : {}),
          ...(o.backoffMaxMs !== undefined ? { backoffMaxMs: o.backoffMaxMs } : {}),
          ...(o.timeoutSeconds !== undefined ? { timeoutSeconds: o.timeoutSeconds } : {}),
        }),
      );
    }
  }

  start(): void {
    for (const w of this.#watches.values()) w.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#watches.values()].map((w) => w.stop()));
  }

  /** Every list has completed once. */
  get synced(): boolean {
    return [...this.#watches.values()].every((w) => w.synced);
  }

  status(): {
    server: string;
    synced: boolean;
    addresses: number;
    overflow: number;
    objects: Record<KubeKind, number>;
    watches: ListWatchStatus[];
  } {
    const i = this.index;
    return {
      server: this.server,
      synced: this.synced,
      addresses: i.addresses,
      overflow: i.overflow,
      objects: {
        pods: i.count('pods'),
        services: i.count('services'),
        endpointslices: i.count('endpointslices'),
        nodes: i.count('nodes'),
      },
      watches: [...this.#watches.values()].map((w) => w.status()),
    };
  }
}
