// Peer resolution as the agent runs it: the resolver (node-local view), the cluster view from the
// Kubernetes API when there is one (loaded lazily: kube/source.ts), the opt-in per-peer counters, and
// the `peers` part of /status. Settings come from the `peers:` config section (hot reload restarts the
// cluster view only when its settings changed).
import type { Logger } from '../log/logger.ts';
import type { EntitySource } from '../pods/entity.ts';
import type { PeerCounting, PeerSource } from '../probe/types.ts';
import { PeerCounters } from './counters.ts';
import type { KubeSource } from './kube/source.ts';
import { PeerResolver } from './resolver.ts';
import type { Peer } from './types.ts';

export interface PeerSettings {
  readonly enabled: boolean;
  readonly kubernetes: {
    readonly mode: 'auto' | 'on' | 'off';
    readonly api_server?: string | undefined;
    readonly token_file?: string | undefined;
    readonly ca_file?: string | undefined;
    readonly max_addresses: number;
  };
}

export class Peers implements PeerSource {
  readonly resolver: PeerResolver;
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  #kube: KubeSource | undefined;
  #kubeKey = '';
  /** Why the Kubernetes API is not used (for /status). */
  #kubeReason: string | undefined;
  #counters: PeerCounters | undefined;
  #limit: number;

  constructor(options: {
    entities: EntitySource;
    nodeName?: string | undefined;
    log: Logger;
    env?: NodeJS.ProcessEnv;
    refreshMs?: number;
    cardinalityLimit?: number;
  }) {
    this.#log = options.log;
    this.#env = options.env ?? process.env;
    this.#limit = options.cardinalityLimit ?? 10_000;
    this.resolver = new PeerResolver({
      entities: options.entities,
      nodeName: options.nodeName,
      log: options.log,
      ...(options.refreshMs !== undefined ? { refreshMs: options.refreshMs } : {}),
    });
  }

  /** Apply the settings: start, restart or stop the cluster view. */
  async configure(s: PeerSettings, cardinalityLimit: number): Promise<void> {
    this.#limit = cardinalityLimit;
    this.#counters?.setLimit(cardinalityLimit);
    const k = s.kubernetes;
    const key = JSON.stringify(s.enabled ? k : null);
    if (key === this.#kubeKey) return;
    this.#kubeKey = key;
    await this.#stopKube();
    const inCluster = Boolean(this.#env['KUBERNETES_SERVICE_HOST']);
    if (!s.enabled || k.mode === 'off') {
      this.#kubeReason = 'off in the config (peers.kubernetes.mode)';
      return;
    }
    if (k.mode === 'auto' && !inCluster && !k.api_server) {
      this.#kubeReason =
        'not in a cluster (KUBERNETES_SERVICE_HOST unset, peers.kubernetes.api_server not set)';
      return;
    }
    try {
      // loaded only here: a node without API access never pays for it
      const { KubeSource } = await import('./kube/source.ts');
      const src = new KubeSource({
        apiServer: k.api_server,
        tokenFile: k.token_file,
        caFile: k.ca_file,
        maxAddresses: k.max_addresses,
        env: this.#env,
        log: this.#log,
      });
      src.start();
      this.#kube = src;
      this.#kubeReason = undefined;
      this.resolver.setKube(src.index);
      this.#log.info({ server: src.server }, 'peer resolution: watching the Kubernetes API');
    } catch (err) {
      this.#kubeReason = err instanceof Error ? err.message : String(err);
      this.#log.warn({ err }, 'peer resolution: Kubernetes API unusable; node-local knowledge only');
    }
  }

  async #stopKube(): Promise<void> {
    const k = this.#kube;
    this.#kube = undefined;
    this.resolver.setKube(undefined);
    await k?.stop();
  }

  resolve(ip: string): Peer {
    return this.resolver.resolve(ip);
  }

  startCounting(): PeerCounting {
    const c = new PeerCounters(this.#limit);
    this.#counters = c;
    this.resolver.setListener((name, netns, peer) => c.add(name, netns, peer));
    return {
      points: () => c.points(),
      overflow: c.overflow,
      prune: (alive: ReadonlySet<number>) => c.prune(alive),
      stop: () => {
        if (this.#counters !== c) return;
        this.#counters = undefined;
        this.resolver.setListener(undefined);
      },
    };
  }

  status(): Record<string, unknown> {
    const k = this.#kube;
    const ks = k?.status();
    return {
      // node-local until every list of the cluster view has completed once
      view: ks?.synced ? 'cluster' : 'node-local',
      local: {
        addresses: this.resolver.localAddresses,
        ...this.resolver.counts,
        hostFallback: this.resolver.hostFallback ?? null,
      },
      kubernetes: ks ?? { used: false, reason: this.#kubeReason ?? 'not configured' },
      counters: this.#counters
        ? { series: this.#counters.size, overflow: Object.fromEntries(this.#counters.overflow) }
        : null,
    };
  }

  async close(): Promise<void> {
    this.resolver.close();
    await this.#stopKube();
  }
}
