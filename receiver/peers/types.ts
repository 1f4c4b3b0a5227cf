// Peer identity: who is on the other end of an event's tuple. The attribute names are a contract with
// the users' queries and alerts: docs/peers.md explains them, docs/reference.md lists them
// (scripts/gen-docs.ts).
import type { AttributeValue } from '../probe/types.ts';

export type PeerKind = 'pod' | 'service' | 'node' | 'host' | 'netns' | 'external' | 'unknown';

export const ATTR_PEER_KIND = 'podnet.peer.kind';
export const ATTR_PEER_POD_NAME = 'podnet.peer.k8s.pod.name';
export const ATTR_PEER_NAMESPACE_NAME = 'podnet.peer.k8s.namespace.name';
export const ATTR_PEER_SERVICE_NAME = 'podnet.peer.k8s.service.name';
export const ATTR_PEER_NODE_NAME = 'podnet.peer.k8s.node.name';
/** Named netns of the peer (plain-host mode), like the entity key `podnet.netns.name`. */
export const ATTR_PEER_NETNS_NAME = 'podnet.peer.netns.name';
/** Owning workload of a peer pod (ReplicaSet → Deployment name), on the per-peer counters only. */
export const ATTR_PEER_WORKLOAD_NAME = 'podnet.peer.k8s.workload.name';

/** Keys the pipeline adds to every event that has a tuple. */
export const PEER_EVENT_ATTRIBUTES: readonly string[] = [
  ATTR_PEER_KIND,
  ATTR_PEER_POD_NAME,
  ATTR_PEER_NAMESPACE_NAME,
  ATTR_PEER_SERVICE_NAME,
  ATTR_PEER_NODE_NAME,
  ATTR_PEER_NETNS_NAME,
];

export interface PeerInfo {
  readonly kind: PeerKind;
  readonly pod?: string;
  readonly namespace?: string;
  readonly service?: string;
  readonly node?: string;
  readonly netns?: string;
  /** Owner workload (pods from the Kubernetes API); the pod name when unknown. */
  readonly workload?: string;
}

/** A resolved peer: its identity, its frozen attribute set (shared by every event), a display string. */
export interface Peer {
  readonly info: PeerInfo;
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly display: string;
}

export function makePeer(info: PeerInfo): Peer {
  const a: Record<string, AttributeValue> = { [ATTR_PEER_KIND]: info.kind };
  if (info.pod !== undefined) a[ATTR_PEER_POD_NAME] = info.pod;
  if (info.namespace !== undefined) a[ATTR_PEER_NAMESPACE_NAME] = info.namespace;
  if (info.service !== undefined) a[ATTR_PEER_SERVICE_NAME] = info.service;
  if (info.node !== undefined) a[ATTR_PEER_NODE_NAME] = info.node;
  if (info.netns !== undefined) a[ATTR_PEER_NETNS_NAME] = info.netns;
  return Object.freeze({
    info: Object.freeze(info),
    attributes: Object.freeze(a),
    display: displayOf(info),
  });
}

function displayOf(i: PeerInfo): string {
  switch (i.kind) {
    case 'pod':
      return `pod ${i.namespace}/${i.pod}${i.service ? ` (service ${i.namespace}/${i.service})` : ''}`;
    case 'service':
      return `service ${i.namespace}/${i.service}`;
    case 'node':
      return `node ${i.node}`;
    case 'host':
      return i.node ? `host (${i.node})` : 'host';
    case 'netns':
      return `netns ${i.netns}`;
    default:
      return i.kind;
  }
}

export const PEER_EXTERNAL = makePeer({ kind: 'external' });
export const PEER_UNKNOWN = makePeer({ kind: 'unknown' });

/**
 * Addresses that are not routed on the internet (RFC 1918, CGNAT, link-local, ULA, ...): an unknown one
 * may be a cluster address podnet does not know (yet), so it is `unknown`, not `external`.
 */
export function isPrivateAddress(ip: string): boolean {
  if (ip.includes(':')) {
    const l = ip.toLowerCase();
    if (l.startsWith('::ffff:')) return isPrivateAddress(l.slice(7));
    return (
      l === '::' ||
      l === '::1' ||
      l.startsWith('fc') ||
      l.startsWith('fd') ||
      l.startsWith('fe8') ||
      l.startsWith('fe9') ||
      l.startsWith('fea') ||
      l.startsWith('feb')
    );
  }
  const p = ip.split('.');
  if (p.length !== 4) return true;
  const a = Number(p[0]);
  const b = Number(p[1]);
  return (
    a === 10 ||
    a === 127 ||
    a === 0 ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 169 && b === 254) ||
    (a === 100 && b >= 64 && b <= 127) ||
    a >= 224
  );
}

export function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip.startsWith('::ffff:127.');
}
