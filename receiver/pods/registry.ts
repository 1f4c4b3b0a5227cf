// The entity registry: netns inode → Entity (host, pods from CRI, or plain netns without CRI).
// Refreshed on an interval (default 10 s) and on demand; emits added/removed/updated changes that the
// eBPF side uses for the watched-netns map and the metrics side for dropping series of gone pods.
//
// CRI path: ListPodSandbox(state=READY) → per new sandbox PodSandboxStatus(verbose) → pid + netns path →
// inode of /proc/<pid>/ns/net. Results are cached per sandbox id and re-checked against the kernel on each
// refresh (the pid must still be in the same netns), so a steady state costs one ListPodSandbox plus one
// readlink per pod. A sandbox that stops (not READY any more) or is removed leaves within one refresh;
// a NOT_FOUND between list and status is a removal race and is skipped. When the runtime is unreachable
// (restart) the last known pods are kept as long as their pid still holds their netns.
import { childLogger, type Logger } from '../log/logger.ts';
import { hostNetnsFallback, hostNetnsInode, hostNetnsPath } from '../netns/setns.ts';
import type { CriClient } from './cri-client.ts';
import type { PodSandbox } from './cri-types.ts';
import { DEFAULT_CRI_SOCKETS, type ResolvedEndpoint, resolveCriEndpoint } from './endpoint.ts';
import {
  type Entity,
  type EntityChange,
  type EntitySource,
  HOST_ENTITY,
  type PodIdentity,
} from './entity.ts';
import { diffEntities } from './entity-diff.ts';
import { compileLabelPolicy, type LabelPolicy } from './labels.ts';
import { addNetnsEntities } from './netns-discovery.ts';
import {
  type RegistryOptions,
  type RegistryStatus,
  type ResolvedRegistryOptions,
  resolveRegistryOptions,
} from './registry-options.ts';
import {
  type CachedSandbox,
  mapLimit,
  netnsStillHeld,
  podIdentity,
  resolveSandbox,
} from './sandbox-cache.ts';

interface Snapshot {
  readonly entities: Map<number, Entity>;
  readonly pods: PodIdentity[];
}

export class EntityRegistry implements EntitySource {
  readonly #opts: ResolvedRegistryOptions;
  readonly #labels: LabelPolicy;
  /** Empty until the first refresh, which then feeds every entity (the host too) as 'added'. */
  #snapshot: Snapshot = { entities: new Map(), pods: [] };
  /** `entities()` of the current snapshot, made at the first ask after the snapshot changed. */
  #list: readonly Entity[] | undefined;
  readonly #listeners = new Set<(changes: readonly EntityChange[]) => void>();
  readonly #cache = new Map<string, CachedSandbox>();
  #client: CriClient | undefined;
  /** cri-client.ts, imported once a CRI socket is found: without one gRPC and protobufjs stay unloaded. */
  #cri: typeof import('./cri-client.ts') | undefined;
  #endpoint: ResolvedEndpoint | undefined;
  #criEverConnected = false;
  #runtime: string | undefined;
  #criError: string | undefined;
  #lastLoggedError: string | undefined;
  #inflight: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #stopped = false;
  #refreshes = 0;
  #lastRefresh: RegistryStatus['lastRefresh'];
  /** Label bounds applied in the current view (pods × labels left out / values cut). */
  #labelStats = { droppedKeys: 0, truncatedValues: 0 };
  #pendingLabelStats = { droppedKeys: 0, truncatedValues: 0 };
  readonly #log: Logger;

  constructor(opts: RegistryOptions = {}) {
    this.#log = opts.log ?? childLogger('pods');
    this.#opts = resolveRegistryOptions(opts);
    this.#labels = compileLabelPolicy(opts.labels);
    if (!opts.disableCri) {
      // resolve now so a malformed configured endpoint fails at startup with a clear message
      this.#endpoint = resolveCriEndpoint(
        opts.criEndpoint,
        opts.env ?? process.env,
        opts.criCandidates ?? DEFAULT_CRI_SOCKETS,
      );
    }
  }

  /** First refresh (awaited), then one every refreshIntervalMs. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.refresh();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#client?.close();
    this.#client = undefined;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.refresh().finally(() => this.#schedule());
    }, this.#opts.refreshIntervalMs);
    this.#timer.unref();
  }

  /** Refresh now; concurrent calls share one run (a call during a run gets the next run). */
  refresh(): Promise<void> {
    if (this.#queued) return this.#queued;
    if (this.#inflight) {
      this.#queued = this.#inflight.then(() => {
        this.#queued = undefined;
        return this.#runOnce();
      });
      return this.#queued;
    }
    return this.#runOnce();
  }

  #runOnce(): Promise<void> {
    const p = this.#doRefresh().finally(() => {
      if (this.#inflight === p) this.#inflight = undefined;
    });
    this.#inflight = p;
    return p;
  }

  entities(): readonly Entity[] {
    // One array per snapshot: every probe asks for the list at each collection (and the ebpf kit per
    // collection for its status), and a copy per call was a 1,000-entry array each time at 1,000 netns.
    this.#list ??= [...this.#snapshot.entities.values()];
    return this.#list;
  }
  byNetns(inode: number): Entity | undefined {
    return this.#snapshot.entities.get(inode);
  }
  pods(): readonly PodIdentity[] {
    return this.#snapshot.pods;
  }
  onChange(listener: (changes: readonly EntityChange[]) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  status(): RegistryStatus {
    const connected = this.#client !== undefined && this.#criError === undefined;
    return {
      mode: this.#criEverConnected ? 'cri' : 'netns',
      cri: {
        enabled: !this.#opts.disableCri,
        ...(this.#endpoint ? { endpoint: this.#endpoint.target, endpointSource: this.#endpoint.source } : {}),
        connected,
        ...(this.#runtime ? { runtime: this.#runtime } : {}),
        ...(this.#criError ? { lastError: this.#criError } : {}),
      },
      refreshes: this.#refreshes,
      ...(this.#lastRefresh ? { lastRefresh: this.#lastRefresh } : {}),
      entities: this.#snapshot.entities.size,
      pods: this.#snapshot.pods.length,
      labels: { ...this.#labelStats },
      hostNetns: {
        inode: hostNetnsInode,
        path: hostNetnsPath,
        ...(hostNetnsFallback ? { fallback: hostNetnsFallback } : {}),
      },
    };
  }

  #setCriError(msg: string | undefined): void {
    this.#criError = msg;
    if (msg && msg !== this.#lastLoggedError)
      this.#log.warn({ err: msg }, 'CRI pod discovery unavailable; host/netns discovery continues');
    if (!msg && this.#lastLoggedError)
      this.#log.info({ endpoint: this.#endpoint?.target }, 'CRI pod discovery available again');
    this.#lastLoggedError = msg;
  }

  async #ensureClient(): Promise<CriClient | undefined> {
    if (this.#opts.disableCri) return undefined;
    if (this.#client) return this.#client;
    if (!this.#endpoint && !this.#opts.criEndpoint) {
      // nothing configured: a runtime may have appeared since startup
      this.#endpoint = resolveCriEndpoint(
        undefined,
        this.#opts.env ?? process.env,
        this.#opts.criCandidates ?? DEFAULT_CRI_SOCKETS,
      );
    }
    if (!this.#endpoint) {
      this.#setCriError(
        `no CRI socket found (CONTAINER_RUNTIME_ENDPOINT unset; none of ${(this.#opts.criCandidates ?? DEFAULT_CRI_SOCKETS).join(', ')} exists)`,
      );
      return undefined;
    }
    try {
      this.#cri ??= await import('./cri-client.ts');
      const { client, version } = await this.#cri.CriClient.connect(this.#endpoint, {
        timeoutMs: this.#opts.criTimeoutMs ?? 10_000,
      });
      this.#client = client;
      this.#runtime = `${version.runtime_name} ${version.runtime_version}`;
      if (!this.#criEverConnected)
        this.#log.info({ endpoint: this.#endpoint.target, runtime: this.#runtime }, 'CRI connected');
      this.#criEverConnected = true;
      return client;
    } catch (err) {
      this.#setCriError(err instanceof Error ? err.message : String(err));
      return undefined;
    }
  }

  #sandboxDetail(client: CriClient, sb: PodSandbox): Promise<CachedSandbox | undefined> {
    return resolveSandbox(
      { cache: this.#cache, isNotFound: (err) => this.#cri?.isNotFound(err) === true, log: this.#log },
      client,
      sb,
    );
  }

  #podIdentity(c: CachedSandbox): PodIdentity {
    return podIdentity(c, this.#labels, this.#pendingLabelStats);
  }

  /** Pods from CRI, or undefined when CRI is not usable this round. */
  async #criPods(): Promise<CachedSandbox[] | undefined> {
    const client = await this.#ensureClient();
    if (!client) return undefined;
    let list: PodSandbox[];
    try {
      list = await client.listPodSandbox({ state: { state: 'SANDBOX_READY' } });
    } catch (err) {
      this.#setCriError(err instanceof Error ? err.message : String(err));
      if (this.#cri && err instanceof this.#cri.CriError && err.kind === 'not-cri') {
        this.#client?.close();
        this.#client = undefined;
      }
      return undefined;
    }
    const seen = new Set(list.map((s) => s.id));
    for (const id of this.#cache.keys()) if (!seen.has(id)) this.#cache.delete(id);
    let failed: string | undefined;
    const details = await mapLimit(list, this.#opts.statusConcurrency, async (sb) => {
      try {
        return await this.#sandboxDetail(client, sb);
      } catch (err) {
        failed = err instanceof Error ? err.message : String(err);
        return undefined;
      }
    });
    if (failed) {
      // a status call failed for another reason than NOT_FOUND (runtime going away?): keep last view
      this.#setCriError(failed);
      return undefined;
    }
    this.#setCriError(undefined);
    const out = details.filter((d): d is CachedSandbox => d !== undefined);
    out.sort((a, b) =>
      a.status.created_at < b.status.created_at ? -1 : a.status.created_at > b.status.created_at ? 1 : 0,
    );
    return out;
  }

  async #doRefresh(): Promise<void> {
    const t0 = performance.now();
    let error: string | undefined;
    const entities = new Map<number, Entity>([[HOST_ENTITY.netnsInode, HOST_ENTITY]]);
    let pods: PodIdentity[] = [];
    let criPodsUsed = false;
    this.#pendingLabelStats = { droppedKeys: 0, truncatedValues: 0 };
    try {
      const criPods = this.#opts.disableCri ? undefined : await this.#criPods();
      if (criPods) {
        criPodsUsed = true;
        for (const c of criPods) {
          const pod = this.#podIdentity(c);
          pods.push(pod);
          if (c.hostNetwork || entities.has(c.inode)) continue;
          entities.set(
            c.inode,
            Object.freeze({
              kind: 'pod',
              netnsInode: c.inode,
              netnsPath: c.netnsPath,
              ...(c.pid !== undefined ? { pid: c.pid } : {}),
              pod,
              ...(c.info.hostVeth ? { hostVeth: c.info.hostVeth } : {}),
              displayName: `${pod.namespace}/${pod.name}`,
            }),
          );
        }
      } else if (this.#criEverConnected) {
        // runtime unreachable (restart?): keep last known pods whose netns is still held
        for (const e of this.#snapshot.entities.values()) {
          if (e.kind !== 'pod') continue;
          if (netnsStillHeld(e.pid, e.netnsPath, e.netnsInode)) entities.set(e.netnsInode, e);
        }
        const kept = new Set([...entities.values()].map((e) => e.pod?.sandboxId));
        pods = this.#snapshot.pods.filter((p) => p.hostNetwork || kept.has(p.sandboxId));
      }
      const d = this.#opts.netnsDiscovery;
      if (d === 'always' || (d === 'auto' && !this.#criEverConnected)) addNetnsEntities(entities, this.#opts);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      this.#log.error({ err }, 'pod discovery refresh failed; keeping the previous view');
      this.#lastRefresh = { at: Date.now(), durationMs: performance.now() - t0, error };
      this.#refreshes++;
      return;
    }
    pods.sort((a, b) =>
      a.namespace === b.namespace ? a.name.localeCompare(b.name) : a.namespace.localeCompare(b.namespace),
    );
    const changes = diffEntities(this.#snapshot.entities, entities);
    // unchanged entities keep their previous objects: let pods() share their PodIdentity objects
    const bySandbox = new Map<string, PodIdentity>();
    for (const e of entities.values()) if (e.pod) bySandbox.set(e.pod.sandboxId, e.pod);
    pods = pods.map((p) => bySandbox.get(p.sandboxId) ?? p);
    this.#snapshot = { entities, pods };
    this.#list = undefined;
    if (criPodsUsed) this.#labelStats = this.#pendingLabelStats;
    this.#refreshes++;
    this.#lastRefresh = {
      at: Date.now(),
      durationMs: performance.now() - t0,
      ...(this.#criError && !this.#opts.disableCri ? { error: this.#criError } : {}),
    };
    if (changes.length > 0) this.#emit(changes);
  }

  #emit(changes: readonly EntityChange[]): void {
    for (const l of this.#listeners) {
      try {
        l(changes);
      } catch (err) {
        this.#log.error({ err }, 'entity change listener threw');
      }
    }
  }
}
