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
import { statSync } from 'node:fs';
import { childLogger, type Logger } from '../log/logger.ts';
import { hostNetnsFallback, hostNetnsInode, hostNetnsPath, hostNetnsPid } from '../netns/setns.ts';
import type { CriClient, PodSandbox, PodSandboxStatus } from './cri-client.ts';
import { DEFAULT_CRI_SOCKETS, type ResolvedEndpoint, resolveCriEndpoint } from './endpoint.ts';
import type { Entity, EntityChange, EntitySource, PodIdentity } from './entity.ts';
import { compileLabelPolicy, type LabelPolicy, type LabelPolicyOptions } from './labels.ts';
import { listNamedNetns, netnsInodeOfPid, scanProcNetns } from './netns-discovery.ts';
import { parseSandboxInfo, type SandboxRuntimeInfo } from './sandbox-info.ts';

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

interface CachedSandbox {
  readonly status: PodSandboxStatus;
  readonly info: SandboxRuntimeInfo;
  readonly pid: number | undefined;
  readonly inode: number;
  readonly netnsPath: string;
  readonly hostNetwork: boolean;
}

interface Snapshot {
  readonly entities: Map<number, Entity>;
  readonly pods: PodIdentity[];
}

const HOST_ENTITY: Entity = Object.freeze({
  kind: 'host',
  netnsInode: hostNetnsInode,
  netnsPath: hostNetnsPath,
  pid: hostNetnsPid,
  displayName: 'host',
});

function entityKey(e: Entity): string {
  return JSON.stringify([
    e.kind,
    e.netnsPath,
    e.netnsName,
    e.pid,
    e.hostVeth,
    e.displayName,
    e.pod && [
      e.pod.uid,
      e.pod.name,
      e.pod.namespace,
      e.pod.ips,
      e.pod.sandboxId,
      e.pod.labels,
      e.pod.cgroupParent,
    ],
  ]);
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

function inodeOfPath(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

export class EntityRegistry implements EntitySource {
  readonly #opts: Required<
    Pick<
      RegistryOptions,
      'refreshIntervalMs' | 'netnsDiscovery' | 'scanProc' | 'namedNetnsDir' | 'statusConcurrency'
    >
  > &
    RegistryOptions;
  readonly #labels: LabelPolicy;
  /** Empty until the first refresh, which then feeds every entity (the host too) as 'added'. */
  #snapshot: Snapshot = { entities: new Map(), pods: [] };
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
    const refreshIntervalMs = opts.refreshIntervalMs ?? 10_000;
    if (!Number.isFinite(refreshIntervalMs) || refreshIntervalMs < 100) {
      throw new RegistryOptionsError(
        `pods.refreshInterval must be at least 100 ms, got ${refreshIntervalMs}`,
      );
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
    this.#opts = {
      ...opts,
      refreshIntervalMs,
      netnsDiscovery,
      scanProc: opts.scanProc ?? true,
      namedNetnsDir: opts.namedNetnsDir ?? '/run/netns',
      statusConcurrency,
    };
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
    return [...this.#snapshot.entities.values()];
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

  async #sandboxDetail(client: CriClient, sb: PodSandbox): Promise<CachedSandbox | undefined> {
    const cached = this.#cache.get(sb.id);
    if (cached) {
      // still the same process in the same netns? (hostNetwork: the pid just has to be alive)
      if (cached.pid !== undefined && netnsInodeOfPid(cached.pid) === cached.inode) return cached;
      if (cached.pid === undefined && inodeOfPath(cached.netnsPath) === cached.inode) return cached;
      this.#cache.delete(sb.id);
    }
    let res: Awaited<ReturnType<CriClient['podSandboxStatus']>>;
    try {
      res = await client.podSandboxStatus(sb.id, true);
    } catch (err) {
      if (this.#cri?.isNotFound(err)) return undefined; // removed between list and status
      throw err;
    }
    const status = res.status;
    if (status?.state !== 'SANDBOX_READY') return undefined;
    const info = parseSandboxInfo(res.info);
    const nodeMode = status.linux?.namespaces?.options?.network === 'NODE';
    let inode: number | undefined;
    let netnsPath: string | undefined;
    if (info.pid !== undefined) {
      inode = netnsInodeOfPid(info.pid);
      netnsPath = `/proc/${info.pid}/ns/net`;
    }
    if (info.netnsPath) {
      const byPath = inodeOfPath(info.netnsPath);
      if (byPath !== undefined && (inode === undefined || byPath === inode)) {
        inode = byPath;
        netnsPath = info.netnsPath;
      }
    }
    if (nodeMode && inode === undefined) {
      inode = hostNetnsInode;
      netnsPath = HOST_ENTITY.netnsPath;
    }
    if (inode === undefined || netnsPath === undefined) {
      this.#log.debug({ sandbox: sb.id }, 'sandbox has no readable netns (stopping?), skipped');
      return undefined;
    }
    const entry: CachedSandbox = {
      status,
      info,
      pid: info.pid,
      inode,
      netnsPath,
      hostNetwork: nodeMode || inode === hostNetnsInode,
    };
    this.#cache.set(sb.id, entry);
    return entry;
  }

  #podIdentity(c: CachedSandbox): PodIdentity {
    const st = c.status;
    const sel = this.#labels.select(st.labels ?? {});
    this.#pendingLabelStats.droppedKeys += sel.droppedKeys;
    this.#pendingLabelStats.truncatedValues += sel.truncatedValues;
    const ips = c.hostNetwork
      ? []
      : [st.network?.ip, ...(st.network?.additional_ips ?? []).map((x) => x.ip)].filter(
          (x): x is string => typeof x === 'string' && x !== '',
        );
    return Object.freeze({
      uid: st.metadata?.uid ?? '',
      name: st.metadata?.name ?? '',
      namespace: st.metadata?.namespace ?? '',
      labels: Object.freeze(sel.labels),
      ips: Object.freeze(ips),
      sandboxId: st.id,
      hostNetwork: c.hostNetwork,
      ...(c.info.cgroupParent ? { cgroupParent: c.info.cgroupParent } : {}),
    });
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
          const alive =
            e.pid !== undefined
              ? netnsInodeOfPid(e.pid) === e.netnsInode
              : inodeOfPath(e.netnsPath) === e.netnsInode;
          if (alive) entities.set(e.netnsInode, e);
        }
        const kept = new Set([...entities.values()].map((e) => e.pod?.sandboxId));
        pods = this.#snapshot.pods.filter((p) => p.hostNetwork || kept.has(p.sandboxId));
      }
      const d = this.#opts.netnsDiscovery;
      if (d === 'always' || (d === 'auto' && !this.#criEverConnected)) this.#discoverNetns(entities);
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
    const changes = this.#diff(this.#snapshot.entities, entities);
    // unchanged entities keep their previous objects: let pods() share their PodIdentity objects
    const bySandbox = new Map<string, PodIdentity>();
    for (const e of entities.values()) if (e.pod) bySandbox.set(e.pod.sandboxId, e.pod);
    pods = pods.map((p) => bySandbox.get(p.sandboxId) ?? p);
    this.#snapshot = { entities, pods };
    if (criPodsUsed) this.#labelStats = this.#pendingLabelStats;
    this.#refreshes++;
    this.#lastRefresh = {
      at: Date.now(),
      durationMs: performance.now() - t0,
      ...(this.#criError && !this.#opts.disableCri ? { error: this.#criError } : {}),
    };
    if (changes.length > 0) this.#emit(changes);
  }

  #discoverNetns(entities: Map<number, Entity>): void {
    const procs = this.#opts.scanProc ? scanProcNetns() : [];
    const pidOf = new Map(procs.map((p) => [p.inode, p]));
    for (const n of listNamedNetns(this.#opts.namedNetnsDir)) {
      if (entities.has(n.inode)) continue;
      const holder = pidOf.get(n.inode);
      entities.set(
        n.inode,
        Object.freeze({
          kind: 'netns',
          netnsInode: n.inode,
          netnsPath: n.path,
          netnsName: n.name,
          ...(holder ? { pid: holder.pid } : {}),
          displayName: n.name,
        }),
      );
    }
    for (const p of procs) {
      if (entities.has(p.inode)) continue;
      entities.set(
        p.inode,
        Object.freeze({
          kind: 'netns',
          netnsInode: p.inode,
          netnsPath: `/proc/${p.pid}/ns/net`,
          pid: p.pid,
          displayName: `pid ${p.pid} (${p.comm})`,
        }),
      );
    }
  }

  #diff(prev: Map<number, Entity>, next: Map<number, Entity>): EntityChange[] {
    const changes: EntityChange[] = [];
    for (const [inode, e] of prev) if (!next.has(inode)) changes.push({ type: 'removed', entity: e });
    for (const [inode, e] of next) {
      const old = prev.get(inode);
      if (!old) changes.push({ type: 'added', entity: e });
      else if (old !== e && entityKey(old) !== entityKey(e))
        changes.push({ type: 'updated', entity: e, previous: old });
      else if (old !== e) next.set(inode, old); // unchanged: keep the previous object (identity stays stable)
    }
    return changes;
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
