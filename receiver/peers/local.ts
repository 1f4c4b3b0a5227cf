// What the node itself knows about addresses: the pods discovered over CRI (PodSandboxStatus network IPs,
// v4 and v6: receiver/pods/registry.ts), the host's own addresses (of init's netns: receiver/netns/setns.ts),
// and in plain-host mode the addresses inside each named netns (/run/netns/NAME), read with getifaddrs
// from inside the netns (receiver/netns/setns.ts).
import { networkInterfaces } from 'node:os';
import type { Logger } from '../log/logger.ts';
import { homeNetnsInode, hostNetnsInode, hostNetnsPath, inNetns } from '../netns/setns.ts';
import type { Entity } from '../pods/entity.ts';
import { isLoopback, makePeer, type Peer } from './types.ts';

function addresses(ifaces: ReturnType<typeof networkInterfaces>): string[] {
  const out: string[] = [];
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      // link-local v6 carries a zone; the kernel tuple does not
      if (!isLoopback(a.address)) out.push(a.address.split('%')[0]!);
    }
  }
  return out;
}

/**
 * The node's addresses: of this process's netns, or, when podnet runs in a pod of its own (the DaemonSet
 * has hostPID but not hostNetwork), of init's netns (/proc/1/ns/net), which is the node's
 * (receiver/netns/setns.ts).
 */
export function nodeAddresses(): string[] {
  try {
    if (hostNetnsInode !== homeNetnsInode)
      return inNetns(hostNetnsPath, () => addresses(networkInterfaces()));
  } catch {
    // not enterable (no CAP_SYS_ADMIN): this netns is the best we know
  }
  return addresses(networkInterfaces());
}

/** Host addresses and the host peer; named netns addresses are read per call (cheap: a few µs per netns). */
export function localPeers(options: {
  entities: readonly Entity[];
  nodeName?: string | undefined;
  log?: Logger | undefined;
  /** Addresses of the host netns (default: os.networkInterfaces() of this process). */
  hostAddresses?: () => readonly string[];
}): { map: Map<string, Peer>; netnsErrors: number } {
  const map = new Map<string, Peer>();
  const host = makePeer({ kind: 'host', ...(options.nodeName ? { node: options.nodeName } : {}) });
  let netnsErrors = 0;
  // lowest priority first: a later set() wins
  for (const ip of options.hostAddresses?.() ?? nodeAddresses()) map.set(ip, host);
  for (const e of options.entities) {
    if (e.kind === 'netns' && e.netnsName !== undefined) {
      let ips: string[];
      try {
        ips = inNetns(e.netnsPath, () => addresses(networkInterfaces()));
      } catch (err) {
        netnsErrors++;
        options.log?.debug({ err, netns: e.netnsName }, 'peer addresses of a named netns unreadable');
        continue;
      }
      const p = makePeer({ kind: 'netns', netns: e.netnsName });
      for (const ip of ips) map.set(ip, p);
    }
  }
  for (const e of options.entities) {
    const pod = e.pod;
    if (e.kind !== 'pod' || !pod) continue;
    const p = podPeer(pod.name, pod.namespace, options.nodeName);
    for (const ip of pod.ips) map.set(ip, p);
  }
  return { map, netnsErrors };
}

function podPeer(name: string, namespace: string, node: string | undefined): Peer {
  return makePeer({ kind: 'pod', pod: name, namespace, ...(node ? { node } : {}), workload: name });
}

/** The entity itself as a peer (loopback traffic inside its netns). */
export function selfPeer(e: Entity | undefined, nodeName: string | undefined): Peer {
  if (e?.kind === 'pod' && e.pod) return podPeer(e.pod.name, e.pod.namespace, nodeName);
  if (e?.kind === 'netns') return makePeer({ kind: 'netns', netns: e.netnsName ?? e.displayName });
  return makePeer({ kind: 'host', ...(nodeName ? { node: nodeName } : {}) });
}
