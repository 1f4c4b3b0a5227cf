// Address → peer identity for the event path (receiver/otel/events.ts calls forEvent once per event that
// has a tuple). Node-local knowledge (local.ts) is rebuilt whenever pod discovery reports a change and
// every `refreshMs`; the cluster view (kube/, when the Kubernetes API is used) updates address by address
// as watch events arrive. Resolved peers are cached per address and the cache entry is dropped the moment
// either source changes that address, so an address reused by a new pod resolves to the new pod from the
// next update on, and no identity outlives the update that removed it.
//
// Steady-state cost per event: one property read of the tuple's remote address and one Map lookup
// (benchmarks/peers/).
import type { Logger } from '../log/logger.ts';
import type { Entity, EntitySource } from '../pods/entity.ts';
import type { AttributeValue } from '../probe/types.ts';
import type { KubeIndex } from './kube/index.ts';
import { localPeers, podPeer, selfPeer } from './local.ts';
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
  private readonly _entities: EntitySource;
  private readonly _nodeName: string | undefined;
  private readonly _log: Logger | undefined;
  private readonly _hostAddresses: (() => readonly string[]) | undefined;
  private _kube: KubeIndex | undefined;
  private _local = new Map<string, Peer>();
  private _cache = new Map<string, Peer>();
  private _unknownCached = 0;
  private readonly _self = new WeakMap<Entity, Peer>();
  private _unsubscribe: (() => void) | undefined;
  private _timer: NodeJS.Timeout | undefined;
  private _listener: PeerListener | undefined;
  /** Counts for /status. */
  readonly counts = { resolved: 0, rebuilds: 0, netnsErrors: 0 };

  constructor(options: {
    entities: EntitySource;
    nodeName?: string | undefined;
    log?: Logger;
    kube?: KubeIndex;
    /** Local-view rebuild period, ms (besides every pod-discovery change). Default 10 000. */
    refreshMs?: number;
    hostAddresses?: () => readonly string[];
  }) {
    this._entities = options.entities;
    this._nodeName = options.nodeName;
    this._log = options.log;
    this._hostAddresses = options.hostAddresses;
    if (options.kube) this.setKube(options.kube);
    this.rebuild();
    this._unsubscribe = this._entities.onChange(() => this.rebuild());
    const refreshMs = options.refreshMs ?? 10_000;
    if (refreshMs > 0) {
      this._timer = setInterval(() => this.rebuild(), refreshMs);
      this._timer.unref();
    }
  }

  /** Use (or stop using) a cluster view. */
  setKube(kube: KubeIndex | undefined): void {
    if (this._kube) this._kube.onChange = undefined;
    this._kube = kube;
    if (kube) kube.onChange = (ip) => this._cache.delete(ip);
    this._clearCache();
  }

  /** Called for each event with a resolved peer (the per-peer counters). */
  setListener(fn: PeerListener | undefined): void {
    this._listener = fn;
  }

  /** Re-reads the node-local view (pods, host and named netns addresses). */
  rebuild(): void {
    try {
      const { map, netnsErrors } = localPeers({
        entities: this._entities.entities(),
        nodeName: this._nodeName,
        log: this._log,
        ...(this._hostAddresses ? { hostAddresses: this._hostAddresses } : {}),
      });
      this._local = map;
      this.counts.netnsErrors = netnsErrors;
      this.counts.rebuilds++;
      this._clearCache();
    } catch (err) {
      this._log?.warn({ err }, 'peer resolver: reading local addresses failed; keeping the previous view');
    }
  }

  close(): void {
    this._unsubscribe?.();
    if (this._timer) clearInterval(this._timer);
    this.setKube(undefined);
  }

  get localAddresses(): number {
    return this._local.size;
  }

  private _clearCache(): void {
    this._cache = new Map();
    this._unknownCached = 0;
  }

  /** The peer an address belongs to. */
  resolve(ip: string): Peer {
    const hit = this._cache.get(ip);
    if (hit !== undefined) return hit;
    const p = this._compute(ip);
    if (p === PEER_UNKNOWN || p === PEER_EXTERNAL) {
      if (this._unknownCached >= UNKNOWN_CACHE_MAX) this._clearCache();
      this._unknownCached++;
    }
    this._cache.set(ip, p);
    return p;
  }

  private _compute(ip: string): Peer {
    const local = this._local.get(ip);
    const k = this._kube?.lookup(ip);
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
        if (k.node.name === this._nodeName) return makePeer({ kind: 'host', node: k.node.name });
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
      ip = this._remoteOf(s, d, entity, attrs['network.io.direction']);
    }
    let peer: Peer;
    if (isLoopback(ip)) {
      const key = entity ?? (this as unknown as Entity);
      peer = this._self.get(key) ?? selfPeer(entity, this._nodeName);
      this._self.set(key, peer);
    } else peer = this.resolve(ip);
    this.counts.resolved++;
    this._listener?.(eventName, netns, peer);
    return peer;
  }

  private _remoteOf(
    s: string,
    d: string,
    e: Entity | undefined,
    direction: AttributeValue | undefined,
  ): string {
    const ips = e?.pod?.ips;
    if (ips !== undefined && ips.length > 0) {
      if (ips.includes(s)) return d;
      if (ips.includes(d)) return s;
    } else if (e !== undefined) {
      // host or netns: the side whose address is the entity's own
      const own = (ip: string) => {
        const p = this._local.get(ip);
        return p !== undefined && (e.kind === 'host' ? p.info.kind === 'host' : p.info.netns === e.netnsName);
      };
      if (own(s)) return d;
      if (own(d)) return s;
    }
    if (direction === 'receive') return s;
    return d;
  }
}

export { podPeer };
