// Address → peer identity for the event path (receiver/otel/event-pipeline.ts calls forEvent once per
// event that has a tuple). Node-local knowledge (local.ts) is rebuilt lazily: when a peer is needed (an
// event, resolve()) and pod discovery has reported a change since the last build, or `refreshMs` has
// passed (host and named-netns addresses change without a discovery change). An agent whose events carry
// no tuple, or that has no event at all, never pays for it: a build reads the addresses of the host
// (setns + getifaddrs) and of every named netns (./local.ts NetnsAddresses: a socket kept per netns,
// re-dumped only after an address notification; getifaddrs from inside each netns was ~80–100 ms per
// build at 1,000 netns). The cluster view (kube/, when the Kubernetes API is used) updates address by
// address as watch events arrive. Resolved peers are cached per address and the cache entry is dropped
// the moment either source changes that address, so an address reused by a new pod resolves to the new pod from the
// next update on, and no identity outlives the update that removed it.
//
// Steady-state cost per event: one property read of the tuple's remote address and one Map lookup
// (benchmarks/peers/).
import type { Logger } from '../log/logger.ts';
import type { Entity, EntitySource } from '../pods/entity.ts';
import type { AttributeValue } from '../probe/types.ts';
import type { KubeIndex } from './kube/index.ts';
import { localPeers, NetnsAddresses, selfPeer } from './local.ts';
import {
  isLoopback,
  isPrivateAddress,
  makePeer,
  PEER_EXTERNAL,
  PEER_UNKNOWN,
  type Peer,
  type PeerInfo,
} from './types.ts';

/** Cached resolutions of addresses no source knows, before the cache is started over. */
const UNKNOWN_CACHE_MAX = 65_536;

type Attrs = Readonly<Record<string, AttributeValue>>;
export type PeerListener = (eventName: string, netns: number, peer: Peer) => void;

export class PeerResolver {
  readonly #entities: EntitySource;
  readonly #nodeName: string | undefined;
  readonly #log: Logger | undefined;
  readonly #hostAddresses: (() => readonly string[]) | undefined;
  #kube: KubeIndex | undefined;
  #local = new Map<string, Peer>();
  #cache = new Map<string, Peer>();
  #unknownCached = 0;
  readonly #self = new WeakMap<Entity, Peer>();
  /** The peer of loopback traffic of an event without an entity (the host's). */
  #selfUnattributed: Peer | undefined;
  #unsubscribe: (() => void) | undefined;
  /** The node-local view is out of date (never built, a discovery change, or refreshMs passed). */
  #stale = true;
  /** Marks the view stale every refreshMs (a flag: the build waits for a use). */
  #timer: NodeJS.Timeout | undefined;
  #listener: PeerListener | undefined;
  readonly #hostNetnsPath: string | undefined;
  /** Named netns' addresses through a socket kept per netns (./local.ts). */
  readonly #netnsAddresses: NetnsAddresses;
  /** Counts for /status. */
  readonly counts = { resolved: 0, rebuilds: 0, netnsErrors: 0 };
  /** Why the host peer's addresses are podnet's own netns' (for /status); undefined when they are the node's. */
  hostFallback: string | undefined;

  constructor(options: {
    entities: EntitySource;
    nodeName?: string | undefined;
    log?: Logger;
    kube?: KubeIndex;
    /**
     * Age, ms, after which the local view is rebuilt at its next use (besides after every pod-discovery
     * change); 0 = only after discovery changes. Default 10 000.
     */
    refreshMs?: number;
    hostAddresses?: () => readonly string[];
    /** The node's netns (default init's, receiver/netns/setns.ts). */
    hostNetnsPath?: string;
  }) {
    this.#hostNetnsPath = options.hostNetnsPath;
    this.#entities = options.entities;
    this.#netnsAddresses = new NetnsAddresses(options.entities);
    this.#nodeName = options.nodeName;
    this.#log = options.log;
    this.#hostAddresses = options.hostAddresses;
    if (options.kube) this.setKube(options.kube);
    this.#unsubscribe = this.#entities.onChange(() => {
      this.#stale = true;
    });
    const refreshMs = options.refreshMs ?? 10_000;
    if (refreshMs > 0) {
      this.#timer = setInterval(() => {
        this.#stale = true;
      }, refreshMs);
      this.#timer.unref();
    }
  }

  /** Rebuilds the local view when it is stale (before any lookup in it): one flag test per event. */
  #fresh(): void {
    if (this.#stale) this.rebuild();
  }

  /** Use (or stop using) a cluster view. */
  setKube(kube: KubeIndex | undefined): void {
    if (this.#kube) this.#kube.onChange = undefined;
    this.#kube = kube;
    if (kube) kube.onChange = (ip) => this.#cache.delete(ip);
    this.#clearCache();
  }

  /** Called for each event with a resolved peer (the per-peer counters). */
  setListener(fn: PeerListener | undefined): void {
    this.#listener = fn;
  }

  /** Re-reads the node-local view (pods, host and named netns addresses). */
  rebuild(): void {
    // A failed read is not retried before the next change or refreshMs (it would be at every event).
    this.#stale = false;
    try {
      const entities = this.#entities.entities();
      this.#netnsAddresses.retain(entities);
      this.#netnsAddresses.beginPass(); // one poll(2) for every kept netns socket (./local.ts)
      let built: ReturnType<typeof localPeers>;
      try {
        built = localPeers({
          entities,
          readNetns: this.#netnsAddresses.read,
          nodeName: this.#nodeName,
          log: this.#log,
          hostNetnsPath: this.#hostNetnsPath,
          ...(this.#hostAddresses ? { hostAddresses: this.#hostAddresses } : {}),
        });
      } finally {
        this.#netnsAddresses.endPass();
      }
      const { map, netnsErrors, hostFallback } = built;
      if (hostFallback !== undefined && hostFallback !== this.hostFallback)
        this.#log?.warn({ reason: hostFallback }, "peer resolver: host addresses from podnet's own netns");
      this.hostFallback = hostFallback;
      this.#local = map;
      this.counts.netnsErrors = netnsErrors;
      this.counts.rebuilds++;
      this.#clearCache();
    } catch (err) {
      this.#log?.warn({ err }, 'peer resolver: reading local addresses failed; keeping the previous view');
    }
  }

  close(): void {
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
    this.#netnsAddresses.close();
    this.setKube(undefined);
  }

  /** Addresses of the node-local view as last built (0 before the first event that needed a peer). */
  get localAddresses(): number {
    return this.#local.size;
  }

  #clearCache(): void {
    this.#cache = new Map();
    this.#unknownCached = 0;
  }

  /** The peer an address belongs to. */
  resolve(ip: string): Peer {
    this.#fresh();
    const hit = this.#cache.get(ip);
    if (hit !== undefined) return hit;
    const p = this.#compute(ip);
    if (p === PEER_UNKNOWN || p === PEER_EXTERNAL) {
      if (this.#unknownCached >= UNKNOWN_CACHE_MAX) this.#clearCache();
      this.#unknownCached++;
    }
    this.#cache.set(ip, p);
    return p;
  }

  #compute(ip: string): Peer {
    const local = this.#local.get(ip);
    const k = this.#kube?.lookup(ip);
    if (local !== undefined) {
      if (local.info.kind !== 'pod' || !k) return local;
      // a local pod: the API adds its Service (EndpointSlices) and its workload
      const i = local.info;
      const svc = k.endpointNamespace === i.namespace ? k.endpointOf : undefined;
      const kp = k.pod && k.pod.name === i.pod && k.pod.namespace === i.namespace ? k.pod : undefined;
      if (!svc && !kp) return local;
      return makePeer({ ...i, ...(svc ? { service: svc } : {}), ...(kp ? { workload: kp.workload } : {}) });
    }
    if (k) {
      if (k.service)
        return makePeer({ kind: 'service', service: k.service.name, namespace: k.service.namespace });
      if (k.pod) {
        const p = k.pod;
        const info: PeerInfo = {
          kind: 'pod',
          pod: p.name,
          namespace: p.namespace,
          workload: p.workload,
          ...(p.node ? { node: p.node } : {}),
          ...(k.endpointOf && k.endpointNamespace === p.namespace ? { service: k.endpointOf } : {}),
        };
        return makePeer(info);
      }
      if (k.endpointOf && k.endpointNamespace !== undefined)
        return makePeer({ kind: 'service', service: k.endpointOf, namespace: k.endpointNamespace });
      if (k.node) {
        if (k.node.name === this.#nodeName) return makePeer({ kind: 'host', node: k.node.name });
        return makePeer({ kind: 'node', node: k.node.name });
      }
    }
    return isPrivateAddress(ip) ? PEER_UNKNOWN : PEER_EXTERNAL;
  }

  /**
   * The peer of an event: the tuple's remote side. Socket events name it (`network.peer.address`);
   * packet events (`source.*`/`destination.*`, conntrack's original tuple, i.e. before DNAT) have it on
   * the side that is not the entity's own address. Undefined for events without a tuple.
   */
  forEvent(attrs: Attrs, entity: Entity | undefined, netns: number, eventName: string): Peer | undefined {
    let ip = attrs['network.peer.address'];
    if (typeof ip !== 'string') {
      const s = attrs['source.address'];
      const d = attrs['destination.address'];
      if (typeof s !== 'string' || typeof d !== 'string') return undefined;
      this.#fresh(); // #remoteOf reads the local view (resolve() refreshes it itself)
      ip = this.#remoteOf(s, d, entity, attrs['network.io.direction']);
    }
    let peer: Peer;
    if (isLoopback(ip)) {
      if (entity === undefined) peer = this.#selfUnattributed ??= selfPeer(undefined, this.#nodeName);
      else {
        peer = this.#self.get(entity) ?? selfPeer(entity, this.#nodeName);
        this.#self.set(entity, peer);
      }
    } else peer = this.resolve(ip);
    this.counts.resolved++;
    this.#listener?.(eventName, netns, peer);
    return peer;
  }

  #remoteOf(s: string, d: string, e: Entity | undefined, direction: AttributeValue | undefined): string {
    const ips = e?.pod?.ips;
    if (ips !== undefined && ips.length > 0) {
      if (ips.includes(s)) return d;
      if (ips.includes(d)) return s;
    } else if (e !== undefined) {
      // host or netns: the side whose address is the entity's own
      const own = (ip: string) => {
        const p = this.#local.get(ip);
        return p !== undefined && (e.kind === 'host' ? p.info.kind === 'host' : p.info.netns === e.netnsName);
      };
      if (own(s)) return d;
      if (own(d)) return s;
    }
    if (direction === 'receive') return s;
    return d;
  }
}
