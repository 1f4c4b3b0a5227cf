// Hook `tc` (the default): the host netns's own DNS — the node and hostNetwork pods, which have no veth of
// their own — seen by TC programs on the host netns's own devices (dns_host_ingress / dns_host_egress in
// dns.bpf.c) instead of the tracepoints, which run for every packet of the node. Devices taken: those
// without a peer or lower device (iflink == ifindex: lo, NICs, bridges, bonds, dummies) that are not a
// bridge or bond port (a port's packets also cross its master: they would be seen twice) and not ifb
// (mirrored copies). Pods' veths carry the pod programs (veth.ts) and are left alone, so a packet between
// two pods of a bridge crosses no device of this list. Attached like veth.ts: TCX links where the kernel
// has them, else dns's own clsact filter; rescanned at every sweep (new and removed devices).
// The devices are the node's netns's: listed by an rtnetlink link dump from a socket opened there (not
// /sys/class/net, which shows podnet's own netns in the DaemonSet) and attached there (veth.ts, tcApi).
import type { BpfCollection } from '../../receiver/bpf/object.ts';
import {
  attachTcPair,
  releaseTcPair,
  type TcFilterId,
  type TcPair,
  type VethAttachMode,
} from '../../receiver/kit/ebpf/veth.ts';
import type { Logger } from '../../receiver/log/logger.ts';
import { Attrs } from '../../receiver/netlink/codec.ts';
import { forEachLink } from '../../receiver/netlink/rtnetlink.ts';
import { NETLINK_ROUTE, NetlinkSocket } from '../../receiver/netlink/socket.ts';
import { hostNetnsPath } from '../../receiver/netns/setns.ts';
import type { MapName, Program } from './dns.layout.gen.ts';

export interface HostDevOptions {
  readonly coll: BpfCollection;
  readonly mode: VethAttachMode;
  readonly filter: TcFilterId;
  /** The host netns inode: what the programs count under (dns_tc_ifindex). */
  readonly netns: number;
  /** Pods' host-side veth names right now: never taken. */
  readonly podVeths: () => ReadonlySet<string>;
  readonly log: Logger;
}

/** One device of the node's netns, as the link dump gives it. */
export interface HostLink {
  readonly ifindex: number;
  /** IFLA_LINK present: the kernel puts it only when iflink != ifindex (a veth's peer, a vlan's lower). */
  readonly lower: boolean;
  /** IFLA_MASTER present: a bridge or bond port. */
  readonly port: boolean;
}

// Link attributes (linux/if_link.h).
const IFLA_IFNAME = 3;
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const linkAttrs = new Attrs(IFLA_MASTER);

/** Devices by name in the socket's netns (RTM_GETLINK dump). */
export function dumpHostLinks(sock: NetlinkSocket): Map<string, HostLink> {
  const links = new Map<string, HostLink>();
  forEachLink(sock, linkAttrs, (ifindex, a) => {
    if (!a.has(IFLA_IFNAME)) return;
    links.set(a.str(IFLA_IFNAME), { ifindex, lower: a.has(IFLA_LINK), port: a.has(IFLA_MASTER) });
  });
  return links;
}

export class HostDevAttacher {
  /** Device name → why it has no programs (attach failed). */
  readonly failures = new Map<string, string>();
  readonly #o: HostDevOptions;
  /** rtnetlink socket opened in the node's netns (kept: one dump per sweep); reopened after an error. */
  #sock: NetlinkSocket | undefined;
  readonly #attached = new Map<string, TcPair>();
  /** Devices looked at and not taken (veths, ports, ...), by name → ifindex: not read again while the name
   * stays (a node's many veths cost one directory listing per sweep); looked at again once it went. */
  readonly #skipped = new Map<string, number>();
  #closed = false;

  constructor(o: HostDevOptions) {
    this.#o = o;
    this.scan();
  }

  devices(): string[] {
    return [...this.#attached.keys()].sort();
  }

  /** Attaches to new devices, detaches from removed ones and from those that became pods' veths or ports. */
  scan(): void {
    if (this.#closed) return;
    let links: Map<string, HostLink>;
    try {
      this.#sock ??= NetlinkSocket.open(hostNetnsPath, NETLINK_ROUTE);
      links = dumpHostLinks(this.#sock);
    } catch (err) {
      this.#sock?.close();
      this.#sock = undefined;
      this.#o.log.warn({ err }, "dns: cannot list the node's devices");
      return;
    }
    const pods = this.#o.podVeths();
    for (const [name, a] of this.#attached) {
      const l = links.get(name);
      if (l?.ifindex !== a.ifindex || pods.has(name) || l.port) this.#detach(name);
    }
    for (const name of this.#skipped.keys()) if (!links.has(name)) this.#skipped.delete(name);
    for (const [name, l] of links) {
      if (this.#attached.has(name) || pods.has(name) || this.#skipped.has(name)) continue;
      if (l.lower || l.port || name.startsWith('ifb')) {
        this.#skipped.set(name, l.ifindex);
        continue;
      }
      this.#attach(name, l.ifindex);
    }
  }

  #attach(name: string, ifindex: number): void {
    const o = this.#o;
    const a: TcPair = { ifindex, links: [] };
    this.#map(ifindex, o.netns);
    const progFds = {
      ingress: o.coll.program('dns_host_ingress' satisfies Program).fd,
      egress: o.coll.program('dns_host_egress' satisfies Program).fd,
    };
    const r = attachTcPair(o.mode, a, progFds, o.filter);
    if (r < 0) {
      this.#unmap(ifindex);
      const what = o.mode === 'tc' ? 'clsact' : 'TCX';
      this.failures.set(name, `${what} attach to ${name} failed: errno ${-r}`);
      // not retried until the device changes: a device that refuses (e.g. no qdisc support) stays refused
      this.#skipped.set(name, ifindex);
      o.log.warn({ dev: name, errno: -r }, `dns: ${what} attach to a host device failed`);
      return;
    }
    this.failures.delete(name);
    this.#attached.set(name, a);
  }

  #detach(name: string): void {
    const a = this.#attached.get(name);
    if (!a) return;
    this.#attached.delete(name);
    releaseTcPair(this.#o.mode, a, this.#o.filter);
    this.#unmap(a.ifindex);
  }

  #key(ifindex: number): Buffer {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(ifindex >>> 0);
    return k;
  }

  #map(ifindex: number, netns: number): void {
    const v = Buffer.alloc(4);
    v.writeUInt32LE(netns >>> 0);
    this.#o.coll.map('dns_tc_ifindex' satisfies MapName).update(this.#key(ifindex), v);
  }

  /** Removes ifindex → host netns, unless a pod's veth took the ifindex meanwhile (veth.ts maps it to the pod). */
  #unmap(ifindex: number): void {
    const m = this.#o.coll.map('dns_tc_ifindex' satisfies MapName);
    const v = m.lookup(this.#key(ifindex));
    if (v && v.readUInt32LE(0) === this.#o.netns >>> 0) m.delete(this.#key(ifindex));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const name of [...this.#attached.keys()]) this.#detach(name);
    this.#sock?.close();
    this.#sock = undefined;
  }
}
