// What the node itself knows about addresses: the pods discovered over CRI (PodSandboxStatus network IPs,
// v4 and v6: receiver/pods/registry.ts), the host's own addresses (of init's netns: receiver/netns/setns.ts),
// and in plain-host mode the addresses inside each named netns (/run/netns/NAME), read with getifaddrs
// from inside the netns (receiver/netns/setns.ts).

import { statSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Logger } from '../log/logger.ts';
import { homeNetnsInode, hostNetnsFallback, hostNetnsPath, inNetns } from '../netns/setns.ts';
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

export interface NodeAddresses {
  readonly addresses: string[];
  /** Why these are the addresses of podnet's own netns, not the node's (reported in /status, logged). */
  readonly fallback?: string;
}

/**
 * The node's addresses: those of its netns (`netnsPath`, default init's: receiver/netns/setns.ts), read
 * from inside it, or directly when podnet runs in it. When the node's netns cannot be entered (no
 * CAP_SYS_ADMIN, no hostPID) podnet's own netns stands in, and `fallback` says so: the host peer is then
 * matched on the wrong addresses.
 */
export function nodeAddresses(netnsPath = hostNetnsPath): NodeAddresses {
  const own = () => addresses(networkInterfaces());
  if (netnsPath === hostNetnsPath && hostNetnsFallback !== undefined)
    return { addresses: own(), fallback: hostNetnsFallback };
  try {
    if (statSync(netnsPath).ino === homeNetnsInode) return { addresses: own() };
    return { addresses: inNetns(netnsPath, own) };
  } catch (err) {
    return {
      addresses: own(),
      fallback: `cannot read the node's addresses in ${netnsPath} (${(err as Error).message}): podnet's own netns used`,
    };
  }
}

/** Host addresses and the host peer; named netns addresses are read per call (cheap: a few µs per netns). */
export function localPeers(options: {
  entities: readonly Entity[];
  nodeName?: string | undefined;
  log?: Logger | undefined;
  /** Addresses of the host netns (default: nodeAddresses()). */
  hostAddresses?: () => readonly string[];
  /** The node's netns (default init's); tests give one that cannot be entered. */
  hostNetnsPath?: string | undefined;
}): { map: Map<string, Peer>; netnsErrors: number; hostFallback: string | undefined } {
  const map = new Map<string, Peer>();
  const host = makePeer({ kind: 'host', ...(options.nodeName ? { node: options.nodeName } : {}) });
  let netnsErrors = 0;
  let hostFallback: string | undefined;
  let hostIps: readonly string[];
  if (options.hostAddresses) hostIps = options.hostAddresses();
  else {
    const node = nodeAddresses(options.hostNetnsPath);
    hostIps = node.addresses;
    hostFallback = node.fallback;
  }
  // lowest priority first: a later set() wins
  for (const ip of hostIps) map.set(ip, host);
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
  return { map, netnsErrors, hostFallback };
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
