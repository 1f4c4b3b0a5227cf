// What the node itself knows about addresses: the pods discovered over CRI (PodSandboxStatus network IPs,
// v4 and v6: receiver/pods/registry.ts), the host's own addresses (of init's netns: receiver/netns/setns.ts),
// and in plain-host mode the addresses inside each named netns (/run/netns/NAME), read with one
// RTM_GETADDR dump through a NETLINK_ROUTE socket kept per netns (NetnsAddresses below).

import { statSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { NetnsSocketPool } from '../kit/netlink.ts';
import type { Logger } from '../log/logger.ts';
import { forEachAddress } from '../netlink/rtnetlink.ts';
import { NETLINK_ROUTE, type NetlinkSocket, withNetlinkSocket } from '../netlink/socket.ts';
import { homeNetnsInode, hostNetnsFallback, hostNetnsPath, inNetns } from '../netns/setns.ts';
import type { Entity, EntitySource } from '../pods/entity.ts';
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

/** Addresses (loopback left out) through a NETLINK_ROUTE socket of the netns. */
function dumpAddresses(sock: NetlinkSocket): string[] {
  const out: string[] = [];
  forEachAddress(sock, (ip) => {
    if (!isLoopback(ip)) out.push(ip);
  });
  return out;
}

/** Reads the addresses of one netns entity (throws when it cannot: netns gone, no permission). */
export type NetnsAddressReader = (e: Entity) => string[];

/** One socket per read (setns + socket + dump + close): the default of `localPeers`. */
export const readNetnsAddresses: NetnsAddressReader = (e) =>
  withNetlinkSocket(e.netnsPath, NETLINK_ROUTE, dumpAddresses);

/**
 * Addresses of named netns through a NETLINK_ROUTE socket kept per netns (receiver/kit/netlink.ts
 * NetnsSocketPool): a read is one RTM_GETADDR dump (a sendto and a recv), with no setns and none of
 * getifaddrs' link dump (with statistics) or os.networkInterfaces' objects (~60 µs per netns, most of a
 * rebuild at 1,000 netns). A socket is closed when its netns leaves the entity source, after any error on
 * it, when `retain` no longer lists it, and on `close`.
 */
export class NetnsAddresses {
  readonly #pool: NetnsSocketPool;
  constructor(source?: EntitySource) {
    this.#pool = new NetnsSocketPool(NETLINK_ROUTE, { timeoutMs: 2000 }, undefined, source);
  }
  readonly read: NetnsAddressReader = (e) => {
    const { sock, kept } = this.#pool.get(e);
    try {
      return dumpAddresses(sock);
    } catch (err) {
      if (kept) this.#pool.drop(e.netnsInode);
      throw err;
    } finally {
      if (!kept) sock.close();
    }
  };
  /** Closes the sockets of netns not in `entities`. */
  retain(entities: readonly Entity[]): void {
    this.#pool.retain(entities);
  }
  get size(): number {
    return this.#pool.size;
  }
  close(): void {
    this.#pool.close();
  }
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

/** Host addresses and the host peer; named netns addresses are read per call (`readNetns`). */
export function localPeers(options: {
  entities: readonly Entity[];
  nodeName?: string | undefined;
  log?: Logger | undefined;
  /** Addresses of the host netns (default: nodeAddresses()). */
  hostAddresses?: () => readonly string[];
  /** The node's netns (default init's); tests give one that cannot be entered. */
  hostNetnsPath?: string | undefined;
  /** Reads a named netns' addresses (default: a socket opened per read, readNetnsAddresses). */
  readNetns?: NetnsAddressReader | undefined;
}): { map: Map<string, Peer>; netnsErrors: number; hostFallback: string | undefined } {
  const map = new Map<string, Peer>();
  const host = makePeer({ kind: 'host', ...(options.nodeName ? { node: options.nodeName } : {}) });
  const readNetns = options.readNetns ?? readNetnsAddresses;
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
        ips = readNetns(e);
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
