// Opt-in per-peer counters (probe `peers`, off by default): resets, retransmits and drops per (pod, peer
// Service or workload), counted from the events as they reach the pipeline. Bounded: at most `limit`
// keys per metric (the configured cardinality_limit); what falls outside is counted per metric in
// `overflow` and exported as the `podnet.peer.overflow` series of the probe.
import type { MetricPoint } from '../probe/types.ts';
import {
  ATTR_PEER_KIND,
  ATTR_PEER_NAMESPACE_NAME,
  ATTR_PEER_NETNS_NAME,
  ATTR_PEER_NODE_NAME,
  ATTR_PEER_SERVICE_NAME,
  ATTR_PEER_WORKLOAD_NAME,
  type Peer,
} from './types.ts';

/** Event name → per-peer metric name. */
export const PEER_COUNTED: Readonly<Record<string, string>> = {
  'podnet.tcp.reset': 'podnet.peer.tcp.reset.events',
  'podnet.tcp.retransmit': 'podnet.peer.tcp.retransmit.events',
  'podnet.packet.drop': 'podnet.peer.packet.drop.events',
};

/** Every attribute peerCounterAttributes sets (the probe's metric definitions declare these). */
export const PEER_COUNTER_ATTRIBUTES: readonly string[] = [
  ATTR_PEER_KIND,
  ATTR_PEER_NAMESPACE_NAME,
  ATTR_PEER_SERVICE_NAME,
  ATTR_PEER_WORKLOAD_NAME,
  ATTR_PEER_NODE_NAME,
  ATTR_PEER_NETNS_NAME,
];

interface Cell {
  readonly netns: number;
  readonly metric: string;
  readonly attributes: Readonly<Record<string, string>>;
  value: number;
}

/** The counter attributes of a peer: its Service if it has one, else its workload (pods), node or netns. */
export function peerCounterAttributes(p: Peer): Record<string, string> {
  const i = p.info;
  const a: Record<string, string> = { [ATTR_PEER_KIND]: i.kind };
  if (i.namespace !== undefined) a[ATTR_PEER_NAMESPACE_NAME] = i.namespace;
  if (i.service !== undefined) a[ATTR_PEER_SERVICE_NAME] = i.service;
  else if (i.kind === 'pod' && i.workload !== undefined) a[ATTR_PEER_WORKLOAD_NAME] = i.workload;
  if (i.kind === 'node' && i.node !== undefined) a[ATTR_PEER_NODE_NAME] = i.node;
  if (i.netns !== undefined) a[ATTR_PEER_NETNS_NAME] = i.netns;
  return a;
}

export class PeerCounters {
  #limit: number;
  readonly #cells = new Map<string, Cell>();
  readonly #perMetric = new Map<string, number>();
  /** Per-peer keys not counted because the metric had `limit` keys already, per metric. */
  readonly overflow = new Map<string, number>();
  /** Counter attributes per peer object (peers are shared frozen objects). */
  readonly #attrs = new WeakMap<Peer, { key: string; attributes: Readonly<Record<string, string>> }>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  setLimit(limit: number): void {
    this.#limit = limit;
  }

  add(eventName: string, netns: number, peer: Peer): void {
    const metric = PEER_COUNTED[eventName];
    if (metric === undefined) return;
    let pa = this.#attrs.get(peer);
    if (!pa) {
      const attributes = Object.freeze(peerCounterAttributes(peer));
      pa = { key: JSON.stringify(attributes), attributes };
      this.#attrs.set(peer, pa);
    }
    const key = `${metric}\0${netns}\0${pa.key}`;
    const c = this.#cells.get(key);
    if (c) {
      c.value++;
      return;
    }
    const n = this.#perMetric.get(metric) ?? 0;
    if (n >= this.#limit) {
      this.overflow.set(metric, (this.overflow.get(metric) ?? 0) + 1);
      return;
    }
    this.#perMetric.set(metric, n + 1);
    this.#cells.set(key, { netns, metric, attributes: pa.attributes, value: 1 });
  }

  /** Drops the counters of netns that are gone. */
  prune(alive: ReadonlySet<number>): void {
    for (const [k, c] of this.#cells) {
      if (c.netns === 0 || alive.has(c.netns)) continue;
      this.#cells.delete(k);
      this.#perMetric.set(c.metric, (this.#perMetric.get(c.metric) ?? 1) - 1);
    }
  }

  get size(): number {
    return this.#cells.size;
  }

  points(): MetricPoint[] {
    const out: MetricPoint[] = [];
    for (const c of this.#cells.values())
      out.push({ metric: c.metric, netns: c.netns, attributes: c.attributes, value: c.value });
    return out;
  }
}
