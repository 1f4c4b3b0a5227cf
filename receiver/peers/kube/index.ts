// What podnet keeps from the Kubernetes API for peer resolution: per object only its addresses and the
// few names an event shows (objects are reduced to these records as they arrive, see compact.ts), and an
// address → object index. Bounded: past `maxAddresses` indexed addresses new objects are not indexed and
// are counted (`overflow`), so a huge cluster costs a bounded amount of memory.
//
// An address belongs to the object that claimed it last: when a new pod reuses the address of a deleted
// pod before the deletion arrives, the deletion does not take the address from the new pod.

export interface PodRecord {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly node: string | undefined;
  readonly workload: string;
  readonly ips: readonly string[];
}
export interface ServiceRecord {
  readonly name: string;
  readonly namespace: string;
  readonly ips: readonly string[];
}
export interface SliceRecord {
  /** namespace/slice name */
  readonly key: string;
  readonly namespace: string;
  readonly service: string;
  readonly ips: readonly string[];
}
export interface NodeRecord {
  readonly name: string;
  readonly ips: readonly string[];
}

export type KubeKind = 'pods' | 'services' | 'endpointslices' | 'nodes';
type RecordOf = {
  pods: PodRecord;
  services: ServiceRecord;
  endpointslices: SliceRecord;
  nodes: NodeRecord;
};

/** What an address is known as, from the API. */
export interface KubeAddress {
  readonly pod?: PodRecord;
  readonly service?: ServiceRecord;
  readonly node?: NodeRecord;
  /** Services whose EndpointSlices list the address (headless Services included), by name. */
  readonly endpointOf?: string;
  readonly endpointNamespace?: string;
}

class AddressMap<R> {
  readonly byIp = new Map<string, R>();
  readonly byKey = new Map<string, R & { readonly ips: readonly string[] }>();
}

export class KubeIndex {
  readonly #maxAddresses: number;
  readonly #maps: { [K in KubeKind]: AddressMap<RecordOf[K]> } = {
    pods: new AddressMap(),
    services: new AddressMap(),
    endpointslices: new AddressMap(),
    nodes: new AddressMap(),
  };
  /** Addresses in all maps. */
  #addresses = 0;
  /** Objects not indexed because the index was full. */
  overflow = 0;
  /** Called with each address whose identity may have changed. */
  onChange: ((ip: string) => void) | undefined;

  constructor(options: { maxAddresses?: number } = {}) {
    this.#maxAddresses = options.maxAddresses ?? 200_000;
  }

  get addresses(): number {
    return this.#addresses;
  }

  count(kind: KubeKind): number {
    return this.#maps[kind].byKey.size;
  }

  /**
   * Add or replace the object under `key`. A record equal to the one held (a MODIFIED event that changed
   * only what the record leaves out: status conditions, restarts, annotations) changes nothing and fires
   * nothing, so the resolver keeps its cache.
   */
  upsert<K extends KubeKind>(kind: K, key: string, rec: RecordOf[K]): void {
    const m = this.#maps[kind] as AddressMap<RecordOf[K]>;
    const prev = m.byKey.get(key);
    if (prev && sameRecord(prev, rec)) return;
    if (prev) this.#unindex(m, prev);
    if (this.#addresses + rec.ips.length > this.#maxAddresses) {
      m.byKey.delete(key);
      this.overflow++;
      return;
    }
    m.byKey.set(key, rec as RecordOf[K] & { ips: readonly string[] });
    for (const ip of rec.ips) {
      const had = m.byIp.get(ip);
      if (had === undefined) this.#addresses++;
      m.byIp.set(ip, rec);
      this.onChange?.(ip);
    }
  }

  delete(kind: KubeKind, key: string): void {
    const m = this.#maps[kind] as AddressMap<{ readonly ips: readonly string[] }>;
    const prev = m.byKey.get(key);
    if (!prev) return;
    m.byKey.delete(key);
    this.#unindex(m, prev);
  }

  /** Replace every object of `kind` (a relist): objects not in `records` are deleted. */
  replace<K extends KubeKind>(kind: K, records: ReadonlyMap<string, RecordOf[K]>): void {
    const m = this.#maps[kind];
    for (const key of [...m.byKey.keys()]) if (!records.has(key)) this.delete(kind, key);
    for (const [key, rec] of records) this.upsert(kind, key, rec);
  }

  #unindex<R>(m: AddressMap<R>, rec: R & { readonly ips: readonly string[] }): void {
    for (const ip of rec.ips) {
      if (m.byIp.get(ip) !== rec) continue; // claimed by a newer object meanwhile
      m.byIp.delete(ip);
      this.#addresses--;
      this.onChange?.(ip);
    }
  }

  lookup(ip: string): KubeAddress | undefined {
    const pod = this.#maps.pods.byIp.get(ip);
    const service = this.#maps.services.byIp.get(ip);
    const slice = this.#maps.endpointslices.byIp.get(ip);
    const node = this.#maps.nodes.byIp.get(ip);
    if (!pod && !service && !slice && !node) return undefined;
    return {
      ...(pod ? { pod } : {}),
      ...(service ? { service } : {}),
      ...(node ? { node } : {}),
      ...(slice ? { endpointOf: slice.service, endpointNamespace: slice.namespace } : {}),
    };
  }
}

function sameRecord(a: object, b: object): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
