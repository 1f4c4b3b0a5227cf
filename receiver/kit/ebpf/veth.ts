// TC programs on pods' host-side veths (Entity.hostVeth from pod discovery), for every probe that has
// them (flow, dns): one attacher that follows the entity source, attached with TCX links where the kernel
// has them (6.6+; detached when the link fd closes, so nothing stays behind even after kill -9), else as
// cls_bpf direct-action filters on a clsact qdisc (netlink through libbpf's bpf_tc_*, 4.5+). Each probe
// owns its filter by (handle, priority) on the veth: two probes on one veth do not replace each other, a
// filter a killed podnet left behind is replaced on the next start, and close() detaches it.
// Programs must return TCX_NEXT / TC_ACT_UNSPEC (-1): the next program or filter still sees the packet.
// The veths are the node's: in the DaemonSet (hostNetwork false) podnet's own netns is its pod's, so the
// name lookup, bpf_link_create (its ifindex resolves in the calling thread's netns) and the tc netlink
// requests run inside the node's netns (inHostNetns, receiver/netns/setns.ts); a link or filter made
// there stays on the device.
import { kernelBtfProblem, withVmlinuxBtf } from '../../bpf/btf.ts';
import { libbpfCandidates, loadFirst } from '../../bpf/libbpf.ts';
import type { BpfCollection } from '../../bpf/object.ts';
import type { Logger } from '../../log/logger.ts';
import { inHostNetns, NetnsError } from '../../netns/setns.ts';
import type { Entity, EntityChange, EntitySource } from '../../pods/entity.ts';

/** enum bpf_attach_type (uapi bpf.h). */
export const BPF_TCX_INGRESS = 46;
export const BPF_TCX_EGRESS = 47;
/** libbpf enum bpf_tc_attach_point. */
const BPF_TC_INGRESS = 1;
const BPF_TC_EGRESS = 2;
const BPF_TC_F_REPLACE = 1;

export type VethAttachMode = 'tcx' | 'tc';

export interface TcFilterId {
  /** cls_bpf filter handle and priority on the clsact hook: one pair per probe. */
  readonly handle: number;
  readonly priority: number;
}

/** All but close() run in the node's netns; a failure to enter it is returned as -errno. */
export interface TcApi {
  link(progFd: number, ifindex: number, type: number): number;
  close(fd: number): number;
  /** clsact: creates the qdisc if needed and attaches (replacing this filter id's own filter); 0 or -errno. */
  tcAttach(progFd: number, ifindex: number, ingress: boolean, id: TcFilterId): number;
  tcDetach(ifindex: number, ingress: boolean, id: TcFilterId): number;
}

let api: TcApi | undefined;
/** libbpf's bpf_link_create / bpf_tc_* (and libc close), bound once. */
export function tcApi(): TcApi {
  if (!api) {
    const { lib } = loadFirst(libbpfCandidates());
    const link = lib.func('int bpf_link_create(int prog_fd, int target_fd, int attach_type, void *opts)') as (
      a: number,
      b: number,
      c: number,
      d: null,
    ) => number;
    type TcFn = (hook: Buffer, opts?: Buffer) => number;
    const hookCreate = lib.func('int bpf_tc_hook_create(void *hook)') as TcFn;
    const tcAttach = lib.func('int bpf_tc_attach(void *hook, void *opts)') as TcFn;
    const tcDetach = lib.func('int bpf_tc_detach(void *hook, void *opts)') as TcFn;
    // struct bpf_tc_hook { size_t sz; int ifindex; enum attach_point; __u32 parent; } (24 bytes, libbpf.h)
    const hook = (ifindex: number, ingress: boolean) => {
      const b = Buffer.alloc(24);
      b.writeBigUInt64LE(24n, 0);
      b.writeInt32LE(ifindex, 8);
      b.writeUInt32LE(ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS, 12);
      return b;
    };
    // struct bpf_tc_opts { size_t sz; int prog_fd; __u32 flags, prog_id, handle, priority; } (32 bytes)
    const opts = (progFd: number, flags: number, id: TcFilterId) => {
      const b = Buffer.alloc(32);
      b.writeBigUInt64LE(32n, 0);
      b.writeInt32LE(progFd, 8);
      b.writeUInt32LE(flags, 12);
      b.writeUInt32LE(id.handle, 20);
      b.writeUInt32LE(id.priority, 24);
      return b;
    };
    const libc = loadFirst(['libc.so.6']).lib;
    const close = libc.func('int close(int fd)') as (fd: number) => number;
    api = {
      link: (p, i, t) => inHost(() => link(p, i, t, null)),
      close,
      tcAttach: (p, i, ingress, id) =>
        inHost(() => {
          const h = hook(i, ingress);
          const r = hookCreate(h); // -EEXIST when the clsact qdisc is already there: fine
          if (r < 0 && r !== -17) return r;
          return tcAttach(h, opts(p, BPF_TC_F_REPLACE, id));
        }),
      tcDetach: (i, ingress, id) => inHost(() => tcDetach(hook(i, ingress), opts(0, 0, id))),
    };
  }
  return api;
}

/** `fn` in the node's netns; NetnsError (setns refused: CAP_SYS_ADMIN) as -errno like libbpf's own. */
function inHost(fn: () => number): number {
  try {
    return inHostNetns(fn);
  } catch (err) {
    if (err instanceof NetnsError) return -(err.errno || 1);
    throw err;
  }
}

let nameToIndex: ((name: string) => number) | undefined;

/** TCX links exist on this kernel (enum bpf_attach_type has BPF_TCX_INGRESS, 6.6+). */
export function kernelHasTcx(): boolean {
  if (kernelBtfProblem()) return false;
  return withVmlinuxBtf((btf) => {
    try {
      return [...btf.enumNames('bpf_attach_type', '').values()].includes('BPF_TCX_INGRESS');
    } catch {
      return false;
    }
  });
}

/** `auto`: TCX where the kernel has it, else clsact; `tcx` / `tc` force one (tests prove tc on new kernels). */
export function vethAttachMode(requested: 'auto' | VethAttachMode): VethAttachMode {
  if (requested !== 'auto') return requested;
  return kernelHasTcx() ? 'tcx' : 'tc';
}

/** How `podnet probes` names a mode. */
export function vethModeName(mode: VethAttachMode): string {
  return mode === 'tcx' ? 'TCX links' : 'clsact (cls_bpf)';
}

/**
 * ifindex of an interface in the node's netns, or 0 when there is none (if_nametoindex(3) there: not
 * /sys/class/net, which shows the netns sysfs was mounted for, podnet's own). Throws NetnsError when the
 * node's netns cannot be entered.
 */
export function ifindexOf(name: string): number {
  if (!/^[A-Za-z0-9_.@:-]{1,15}$/.test(name)) return 0;
  nameToIndex ??= loadFirst(['libc.so.6']).lib.func('unsigned int if_nametoindex(const char *ifname)') as (
    name: string,
  ) => number;
  const f = nameToIndex;
  return inHostNetns(() => f(name));
}

/** The programs on one device: TCX link fds (tcx mode) or, in tc mode, the filter id's clsact filters. */
export interface TcPair {
  readonly ifindex: number;
  /** TCX link fds; empty in tc mode (the filters are detached by ifindex and filter id). */
  readonly links: number[];
}

/**
 * Attaches an ingress and an egress program to one device of the node's netns (veths here, the node's own
 * devices in probes/dns/hostdev.ts); the TCX link fds go to `pair.links`. On a failure what was attached is
 * released and -errno returned, else 0.
 */
export function attachTcPair(
  mode: VethAttachMode,
  pair: TcPair,
  progFds: { readonly ingress: number; readonly egress: number },
  filter: TcFilterId,
): number {
  const tc = tcApi();
  for (const [fd, ingress] of [
    [progFds.ingress, true],
    [progFds.egress, false],
  ] as const) {
    const r =
      mode === 'tc'
        ? tc.tcAttach(fd, pair.ifindex, ingress, filter)
        : tc.link(fd, pair.ifindex, ingress ? BPF_TCX_INGRESS : BPF_TCX_EGRESS);
    if (r < 0) {
      releaseTcPair(mode, pair, filter);
      return r;
    }
    if (mode === 'tcx') pair.links.push(r);
  }
  return 0;
}

/** Closes the TCX links, or detaches the filter id's clsact filters on both hooks. */
export function releaseTcPair(mode: VethAttachMode, pair: TcPair, filter: TcFilterId): void {
  const tc = tcApi();
  for (const fd of pair.links.splice(0)) tc.close(fd);
  if (mode === 'tc') {
    tc.tcDetach(pair.ifindex, true, filter);
    tc.tcDetach(pair.ifindex, false, filter);
  }
}

export interface AttachedVeth extends TcPair {
  readonly entity: Entity;
}

export interface VethAttacherOptions {
  /** For log lines: `flow`, `dns`. */
  readonly probe: string;
  readonly coll: BpfCollection;
  /** Program for the veth's ingress (what the pod sends) and egress (what it receives). */
  readonly ingress: string;
  readonly egress: string;
  readonly mode: VethAttachMode;
  /** This probe's clsact filter (tc mode). */
  readonly filter: TcFilterId;
  readonly source: EntitySource;
  readonly log: Logger;
  /** Before the programs attach (fill the maps they read). */
  readonly onAttach?: (a: AttachedVeth) => void;
  /** After they were detached (or failed to attach). */
  readonly onDetach?: (a: AttachedVeth) => void;
}

/** Keeps the two programs attached to every entity's host-side veth while the entity exists. */
export class VethAttacher {
  /** Display name → why its veth has no programs. */
  readonly failures = new Map<string, string>();
  readonly mode: VethAttachMode;
  readonly #attached = new Map<number, AttachedVeth>(); // by netns inode
  readonly #o: VethAttacherOptions;
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(o: VethAttacherOptions) {
    this.#o = o;
    this.mode = o.mode;
    for (const e of o.source.entities()) this.#attach(e);
    this.#unsubscribe = o.source.onChange((changes: readonly EntityChange[]) => {
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

  /** Attached veths by netns inode. */
  attached(): ReadonlyMap<number, AttachedVeth> {
    return this.#attached;
  }

  veths(): string[] {
    return [...this.#attached.values()].map((a) => a.entity.hostVeth ?? '');
  }

  #attach(e: Entity): void {
    if (!e.hostVeth || this.#closed) return;
    const prev = this.#attached.get(e.netnsInode);
    if (prev?.entity.hostVeth === e.hostVeth) return;
    this.#detach(e.netnsInode);
    let ifindex: number;
    try {
      ifindex = ifindexOf(e.hostVeth);
    } catch (err) {
      this.failures.set(e.displayName, `host veth ${e.hostVeth}: ${(err as Error).message}`);
      return;
    }
    if (!ifindex) {
      this.failures.set(e.displayName, `host veth ${e.hostVeth} not found in the node's netns`);
      return;
    }
    const o = this.#o;
    const a: AttachedVeth = { entity: e, ifindex, links: [] };
    o.onAttach?.(a);
    const progFds = { ingress: o.coll.program(o.ingress).fd, egress: o.coll.program(o.egress).fd };
    const r = attachTcPair(this.mode, a, progFds, o.filter);
    if (r < 0) {
      o.onDetach?.(a);
      const what = this.mode === 'tc' ? 'clsact' : 'TCX';
      this.failures.set(e.displayName, `${what} attach to ${e.hostVeth} failed: errno ${-r}`);
      o.log.warn({ veth: e.hostVeth, errno: -r }, `${o.probe}: ${what} attach failed`);
      return;
    }
    this.failures.delete(e.displayName);
    this.#attached.set(e.netnsInode, a);
  }

  #detach(inode: number): void {
    const a = this.#attached.get(inode);
    if (!a) return;
    this.#attached.delete(inode);
    releaseTcPair(this.mode, a, this.#o.filter);
    try {
      this.#o.onDetach?.(a);
    } catch (err) {
      this.#o.log.warn({ err }, `${this.#o.probe}: cleanup after detaching ${a.entity.hostVeth} failed`);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    for (const inode of [...this.#attached.keys()]) this.#detach(inode);
  }
}
