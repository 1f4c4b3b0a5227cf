// Hook `tc` (the default): the host netns's own DNS — the node and hostNetwork pods, which have no veth of
// their own — seen by TC programs on the host netns's own devices (dns_host_ingress / dns_host_egress in
// dns.bpf.c) instead of the tracepoints, which run for every packet of the node. Devices taken: those
// without a peer or lower device (iflink == ifindex: lo, NICs, bridges, bonds, dummies) that are not a
// bridge or bond port (a port's packets also cross its master: they would be seen twice) and not ifb
// (mirrored copies). Pods' veths carry the pod programs (veth.ts) and are left alone, so a packet between
// two pods of a bridge crosses no device of this list. Attached like veth.ts: TCX links where the kernel
// has them, else dns's own clsact filter; rescanned at every sweep (new and removed devices).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { BpfCollection } from '../../receiver/bpf/object.ts';
import {
  BPF_TCX_EGRESS,
  BPF_TCX_INGRESS,
  type TcFilterId,
  tcApi,
  type VethAttachMode,
} from '../../receiver/kit/ebpf/veth.ts';
import type { Logger } from '../../receiver/log/logger.ts';
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

interface Attached {
  readonly ifindex: number;
  readonly links: number[];
}

const readNum = (path: string): number => {
  try {
    return Number(readFileSync(path, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
};

export class HostDevAttacher {
  /** Device name → why it has no programs (attach failed). */
  readonly failures = new Map<string, string>();
  readonly #o: HostDevOptions;
  readonly #dir: string;
  readonly #attached = new Map<string, Attached>();
  /** Devices looked at and not taken (veths, ports, ...), by name → ifindex: not read again while the name
   * stays (a node's many veths cost one directory listing per sweep); looked at again once it went. */
  readonly #skipped = new Map<string, number>();
  #closed = false;

  constructor(o: HostDevOptions) {
    this.#o = o;
    this.#dir = '/sys/class/net';
    this.scan();
  }

  devices(): string[] {
    return [...this.#attached.keys()].sort();
  }

  /** Attaches to new devices, detaches from removed ones and from those that became pods' veths or ports. */
  scan(): void {
    if (this.#closed) return;
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch (err) {
      this.#o.log.warn({ err }, 'dns: cannot list host devices');
      return;
    }
    const present = new Set(names);
    const pods = this.#o.podVeths();
    for (const [name, a] of this.#attached) {
      const gone = !present.has(name) || readNum(`${this.#dir}/${name}/ifindex`) !== a.ifindex;
      if (gone || pods.has(name) || existsSync(`${this.#dir}/${name}/master`)) this.#detach(name);
    }
    for (const name of this.#skipped.keys()) if (!present.has(name)) this.#skipped.delete(name);
    for (const name of names) {
      if (this.#attached.has(name) || pods.has(name) || this.#skipped.has(name)) continue;
      const d = `${this.#dir}/${name}`;
      const ifindex = readNum(`${d}/ifindex`);
      if (!ifindex) continue;
      const own = readNum(`${d}/iflink`) === ifindex && !existsSync(`${d}/master`) && !name.startsWith('ifb');
      if (!own) {
        this.#skipped.set(name, ifindex);
        continue;
      }
      this.#attach(name, ifindex);
    }
  }

  #attach(name: string, ifindex: number): void {
    const o = this.#o;
    const tc = tcApi();
    const a: Attached = { ifindex, links: [] };
    this.#map(ifindex, o.netns);
    const progs = [
      ['dns_host_ingress' satisfies Program, true],
      ['dns_host_egress' satisfies Program, false],
    ] as const;
    for (const [prog, ingress] of progs) {
      const fd = o.coll.program(prog).fd;
      const r =
        o.mode === 'tc'
          ? tc.tcAttach(fd, ifindex, ingress, o.filter)
          : tc.link(fd, ifindex, ingress ? BPF_TCX_INGRESS : BPF_TCX_EGRESS);
      if (r < 0) {
        this.#release(a);
        this.#unmap(ifindex);
        const what = o.mode === 'tc' ? 'clsact' : 'TCX';
        this.failures.set(name, `${what} attach to ${name} failed: errno ${-r}`);
        // not retried until the device changes: a device that refuses (e.g. no qdisc support) stays refused
        this.#skipped.set(name, ifindex);
        o.log.warn({ dev: name, errno: -r }, `dns: ${what} attach to a host device failed`);
        return;
      }
      if (o.mode === 'tcx') a.links.push(r);
    }
    this.failures.delete(name);
    this.#attached.set(name, a);
  }

  #release(a: Attached): void {
    const tc = tcApi();
    for (const fd of a.links) tc.close(fd);
    if (this.#o.mode === 'tc') {
      tc.tcDetach(a.ifindex, true, this.#o.filter);
      tc.tcDetach(a.ifindex, false, this.#o.filter);
    }
  }

  #detach(name: string): void {
    const a = this.#attached.get(name);
    if (!a) return;
    this.#attached.delete(name);
    this.#release(a);
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
  }
}
