// What the node itself knows about addresses: the pods discovered over CRI (PodSandboxStatus network IPs,
// v4 and v6: receiver/pods/registry.ts), the host's own addresses (of init's netns: receiver/netns/setns.ts),
// and in plain-host mode the addresses inside each named netns (/run/netns/NAME), read with one
// RTM_GETADDR dump through a NETLINK_ROUTE socket kept per netns (NetnsAddresses below).

import { statSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Logger } from '../log/logger.ts';
import { forEachAddress } from '../netlink/rtnetlink.ts';
import { NETLINK_ROUTE, NetlinkSocket, withNetlinkSocket } from '../netlink/socket.ts';
import { RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR } from '../netlink/subscription.ts';
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
export type NetnsAddressReader = (e: Entity) => readonly string[];

/** One socket per read (setns + socket + dump + close): the default of `localPeers`. */
export const readNetnsAddresses: NetnsAddressReader = (e) =>
  withNetlinkSocket(e.netnsPath, NETLINK_ROUTE, dumpAddresses);

/** Sockets NetnsAddresses keeps at most; netns beyond get a socket per read (as receiver/kit/netlink.ts). */
const KEPT_LIMIT = 2048;

interface Kept {
  readonly sock: NetlinkSocket;
  /** The last dump's addresses; undefined when the next read must dump (never read, or a change seen). */
  ips: readonly string[] | undefined;
}

/**
 * Addresses of named netns through a NETLINK_ROUTE socket kept per netns, joined to the address
 * notification groups (RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR): a read of a netns whose addresses did
 * not change is one non-blocking recv(2) that finds nothing queued, and the last addresses are reused;
 * after a notification (or ENOBUFS: some were dropped) it is one RTM_GETADDR dump. No setns, none of
 * getifaddrs' link dump (with statistics) nor os.networkInterfaces' objects (~60 µs per netns, most of a
 * rebuild at 1,000 netns: benchmarks/peers/netns-ab.ts). A socket is closed when its netns leaves the
 * entity source, after any error on it, when `retain` no longer lists it, and on `close`.
 */
export class NetnsAddresses {
  readonly #kept = new Map<number, Kept>();
  /** During a pass (`beginPass`): kept sockets its poll found nothing pending on. */
  #quiet: Set<NetlinkSocket> | undefined;
  #unsubscribe: (() => void) | undefined;
  constructor(source?: EntitySource) {
    // `source` may be a test stub without a change feed.
    if (typeof source?.onChange === 'function') {
      this.#unsubscribe = source.onChange((changes) => {
        for (const c of changes) {
          if (c.type === 'removed') this.#drop(c.entity.netnsInode);
          else if (c.type === 'updated' && c.previous.netnsInode !== c.entity.netnsInode)
            this.#drop(c.previous.netnsInode);
        }
      });
    }
  }

  readonly read: NetnsAddressReader = (e) => {
    let k = this.#kept.get(e.netnsInode);
    if (k === undefined) {
      const sock = NetlinkSocket.open(e.netnsPath, NETLINK_ROUTE, { timeoutMs: 2000 });
      try {
        sock.join(RTNLGRP_IPV4_IFADDR);
        sock.join(RTNLGRP_IPV6_IFADDR);
      } catch (err) {
        sock.close();
        throw err;
      }
      k = { sock, ips: undefined };
      if (this.#kept.size >= KEPT_LIMIT) {
        try {
          return dumpAddresses(sock);
        } finally {
          sock.close();
        }
      }
      this.#kept.set(e.netnsInode, k);
    }
    try {
      // Nothing pending at this pass's poll (`beginPass`): no recv(2). Else drain first: a change queued
      // before the dump is then in it.
      const quiet = this.#quiet?.delete(k.sock) === true; // once per pass
      if (k.ips === undefined || (!quiet && k.sock.drainPending())) {
        const skipped = k.sock.stats.skipped;
        const ips = dumpAddresses(k.sock);
        // a notification read during the dump (skipped) may be of a change the dump missed: dump again next time
        k.ips = k.sock.stats.skipped === skipped ? ips : undefined;
        return ips;
      }
      return k.ips;
    } catch (err) {
      this.#drop(e.netnsInode);
      throw err;
    }
  };

  /**
   * Starts a pass over many netns (a rebuild): one poll(2) over every kept socket
   * (`NetlinkSocket.quiet`) instead of a recv(2) per socket at its read; a socket with nothing
   * pending then reuses its last addresses without a system call. A change announced after the poll is
   * seen at the next pass, as one announced right after a socket's drain was. `endPass` ends it.
   */
  beginPass(): void {
    const list: NetlinkSocket[] = [];
    for (const k of this.#kept.values()) if (k.ips !== undefined) list.push(k.sock);
    this.#quiet = NetlinkSocket.quiet(list);
  }

  endPass(): void {
    this.#quiet = undefined;
  }

  #drop(inode: number): void {
    this.#kept.get(inode)?.sock.close();
    this.#kept.delete(inode);
  }

  /** Closes the sockets of netns not in `entities`. */
  retain(entities: readonly Entity[]): void {
    if (this.#kept.size === 0) return;
    const live = new Set<number>();
    for (const e of entities) live.add(e.netnsInode);
    for (const inode of [...this.#kept.keys()]) if (!live.has(inode)) this.#drop(inode);
  }

  /** Kept sockets (one per netns read). */
  get size(): number {
    return this.#kept.size;
  }

  /** Closes every socket and stops following the entity changes. Idempotent. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const inode of [...this.#kept.keys()]) this.#drop(inode);
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
      let ips: readonly string[];
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
