// dns, `hook: tc`: the same BPF body as TC programs on each pod's host-side veth (Entity.hostVeth from pod
// discovery), attached with TCX links like probes/flow (kernel >= 6.6; detached when the link fd closes).
// Reads payload in page frags too (bpf_skb_load_bytes), so TCP DNS is complete; sees pods with a veth only.
import type { BpfCollection } from '../../receiver/bpf/object.ts';
import type { Logger } from '../../receiver/log/logger.ts';
import type { Entity, EntityChange, EntitySource } from '../../receiver/pods/entity.ts';
import { BPF_TCX_EGRESS, BPF_TCX_INGRESS, ifindexOf, tcxApi } from '../flow/flow.ts';

interface Attached {
  readonly veth: string;
  readonly ifindex: number;
  readonly links: number[];
}

export class VethAttacher {
  readonly failures = new Map<string, string>();
  readonly #attached = new Map<number, Attached>(); // by netns inode
  readonly #coll: BpfCollection;
  readonly #log: Logger;
  readonly #unsubscribe: () => void;
  readonly #key = Buffer.alloc(4);
  readonly #val = Buffer.alloc(4);

  constructor(coll: BpfCollection, source: EntitySource, log: Logger) {
    this.#coll = coll;
    this.#log = log;
    for (const e of source.entities()) this.#attach(e);
    this.#unsubscribe = source.onChange((changes: readonly EntityChange[]) => {
      for (const c of changes) {
        if (c.type === 'removed') this.#detach(c.entity.netnsInode);
        else {
          if (c.type === 'updated' && c.previous.netnsInode !== c.entity.netnsInode)
            this.#detach(c.previous.netnsInode);
          this.#attach(c.entity);
        }
      }
    });
  }

  veths(): string[] {
    return [...this.#attached.values()].map((a) => a.veth);
  }

  #attach(e: Entity): void {
    if (!e.hostVeth) return;
    const prev = this.#attached.get(e.netnsInode);
    if (prev?.veth === e.hostVeth) return;
    this.#detach(e.netnsInode);
    const ifindex = ifindexOf(e.hostVeth);
    if (!ifindex) {
      this.failures.set(e.displayName, `host veth ${e.hostVeth} not found`);
      return;
    }
    this.#key.writeUInt32LE(ifindex);
    this.#val.writeUInt32LE(e.netnsInode >>> 0);
    this.#coll.map('dns_tc_ifindex').update(this.#key, this.#val);
    const api = tcxApi();
    const links: number[] = [];
    for (const [prog, type] of [
      ['dns_tc_ingress', BPF_TCX_INGRESS],
      ['dns_tc_egress', BPF_TCX_EGRESS],
    ] as const) {
      const fd = api.link(this.#coll.program(prog).fd, ifindex, type);
      if (fd < 0) {
        for (const l of links) api.close(l);
        this.failures.set(e.displayName, `TCX attach to ${e.hostVeth} failed: errno ${-fd}`);
        this.#log.warn({ veth: e.hostVeth, errno: -fd }, 'dns: TCX attach failed');
        return;
      }
      links.push(fd);
    }
    this.failures.delete(e.displayName);
    this.#attached.set(e.netnsInode, { veth: e.hostVeth, ifindex, links });
    // hook auto: the tracepoint programs leave this netns to the TC ones
    this.#key.writeUInt32LE(e.netnsInode >>> 0);
    this.#val.writeUInt32LE(1);
    this.#coll.map('dns_tc_netns').update(this.#key, this.#val);
  }

  #detach(inode: number): void {
    const a = this.#attached.get(inode);
    if (!a) return;
    const api = tcxApi();
    for (const fd of a.links) api.close(fd);
    this.#attached.delete(inode);
    try {
      this.#key.writeUInt32LE(inode >>> 0);
      this.#coll.map('dns_tc_netns').delete(this.#key);
      this.#key.writeUInt32LE(a.ifindex);
      this.#coll.map('dns_tc_ifindex').delete(this.#key);
    } catch {}
  }

  close(): void {
    this.#unsubscribe();
    for (const inode of [...this.#attached.keys()]) this.#detach(inode);
  }
}
