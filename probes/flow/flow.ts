// flow (optional, off by default): "who does this pod talk to, and how much" — bytes and packets per
// (pod address, peer address, transport, direction[, ports]) counted by TC programs (flow.bpf.c) on each
// pod's host-side veth (Entity.hostVeth from pod discovery). Attached with TCX links where the kernel
// has them (6.6+; detached when the link fd closes, so nothing stays behind even after kill -9), else as
// cls_bpf direct-action filters on a clsact qdisc (netlink, 4.5+; podnet's own handle and priority,
// replaced on the next start if a killed podnet left one, detached on close). Counters live in an LRU
// per-CPU hash in the kernel (bounded by `maxFlows`; an evicted flow restarts at 0).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { kernelBtfProblem, withVmlinuxBtf } from '../../receiver/bpf/btf.ts';
import { dataView, ipString } from '../../receiver/bpf/events.ts';
import { libbpfCandidates, loadFirst } from '../../receiver/bpf/libbpf.ts';
import type { BpfMap } from '../../receiver/bpf/maps.ts';
import { networkType, transportName } from '../../receiver/kit/ebpf/decode.ts';
import { kernelRequirement } from '../../receiver/kit/ebpf/kernels.ts';
import {
  EbpfRuntime,
  eventArgsSchema,
  hookAvailability,
  SELF_METRIC_DEFS,
} from '../../receiver/kit/ebpf/runtime.ts';
import { PEER_EVENT_ATTRIBUTES } from '../../receiver/peers/types.ts';
import type { Entity, EntityChange } from '../../receiver/pods/entity.ts';
import type { MetricDef, MetricPoint, Probe, ProbeSpec, ProbeStatus } from '../../receiver/probe/types.ts';
import {
  FLOW_KEY,
  FLOW_VAL,
  flowKey,
  type MapName,
  type Program,
  type RodataName,
} from './flow.layout.gen.ts';

export const OBJECT = new URL('./flow.bpf.o', import.meta.url);

const argsSchema = z.object({
  /** Put local/peer ports in the key (high cardinality; KubeSkoop `enablePortInLabel`). */
  ports: z.boolean().default(false),
  /** Flows tracked at once (LRU beyond this). */
  maxFlows: z.number().int().min(1024).default(65536),
  /** `auto`: TCX where the kernel has it (6.6+), else clsact; `tcx` / `tc` force one (tests prove tc on new kernels). */
  attachMode: z.enum(['auto', 'tcx', 'tc']).default('auto'),
});
export type FlowArgs = z.infer<typeof argsSchema>;

export const M = { bytes: 'podnet.flow.io', packets: 'podnet.flow.packet.count' } as const;

const ATTRS = [
  'network.io.direction',
  'network.type',
  'network.transport',
  'network.local.address',
  'network.peer.address',
  'network.local.port',
  'network.peer.port',
  // who the peer address is (receiver/peers), when peer resolution is on
  ...PEER_EVENT_ATTRIBUTES,
];
const metrics: MetricDef[] = [
  {
    name: M.bytes,
    kind: 'counter',
    unit: 'By',
    description:
      "Bytes (skb->len, with the Ethernet header) the pod sent (transmit) or received (receive) per peer address, counted on the pod's host-side veth. Ports only with `ports: true`.",
    attributes: ATTRS,
    enabled: true,
  },
  {
    name: M.packets,
    kind: 'counter',
    unit: '{packet}',
    description: 'Packets of the same flows as podnet.flow.io.',
    attributes: ATTRS,
    enabled: true,
  },
  ...SELF_METRIC_DEFS,
];

export const BPF_TCX_INGRESS = 46;
export const BPF_TCX_EGRESS = 47;

/** libbpf enum bpf_tc_attach_point, and the clsact filter podnet owns on each veth (handle, priority). */
const BPF_TC_INGRESS = 1;
const BPF_TC_EGRESS = 2;
const BPF_TC_F_REPLACE = 1;
const TC_HANDLE = 0x504e;
const TC_PRIORITY = 0x504e;

export interface Tcx {
  link(progFd: number, ifindex: number, type: number): number;
  close(fd: number): number;
  /** clsact: creates the qdisc if needed and attaches (replacing podnet's own filter); 0 or -errno. */
  tcAttach(progFd: number, ifindex: number, point: number): number;
  tcDetach(ifindex: number, point: number): number;
}
let tcx: Tcx | undefined;
export function tcxApi(): Tcx {
  if (!tcx) {
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
    const hook = (ifindex: number, point: number) => {
      const b = Buffer.alloc(24);
      b.writeBigUInt64LE(24n, 0);
      b.writeInt32LE(ifindex, 8);
      b.writeUInt32LE(point, 12);
      return b;
    };
    // struct bpf_tc_opts { size_t sz; int prog_fd; __u32 flags, prog_id, handle, priority; } (32 bytes)
    const opts = (progFd: number, flags: number) => {
      const b = Buffer.alloc(32);
      b.writeBigUInt64LE(32n, 0);
      b.writeInt32LE(progFd, 8);
      b.writeUInt32LE(flags, 12);
      b.writeUInt32LE(TC_HANDLE, 20);
      b.writeUInt32LE(TC_PRIORITY, 24);
      return b;
    };
    const libc = loadFirst(['libc.so.6']).lib;
    const close = libc.func('int close(int fd)') as (fd: number) => number;
    tcx = {
      link: (p, i, t) => link(p, i, t, null),
      close,
      tcAttach: (p, i, point) => {
        const h = hook(i, point);
        const r = hookCreate(h); // -EEXIST when the clsact qdisc is already there: fine
        if (r < 0 && r !== -17) return r;
        return tcAttach(h, opts(p, BPF_TC_F_REPLACE));
      },
      tcDetach: (i, point) => tcDetach(hook(i, point), opts(0, 0)),
    };
  }
  return tcx;
}

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

export type FlowAttach = 'tcx' | 'tc';

export function flowAttachMode(requested: FlowArgs['attachMode']): FlowAttach {
  if (requested !== 'auto') return requested;
  return kernelHasTcx() ? 'tcx' : 'tc';
}

/** ifindex of an interface in this process's netns, or 0. */
export function ifindexOf(name: string): number {
  if (!/^[A-Za-z0-9_.@:-]{1,15}$/.test(name)) return 0;
  try {
    return Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

interface Attached {
  readonly entity: Entity;
  readonly ifindex: number;
  /** TCX link fds; empty in tc mode (the filters are detached by ifindex). */
  readonly links: number[];
}

export const flowProbe: ProbeSpec<FlowArgs> = {
  name: 'flow',
  description:
    "Bytes and packets per pod and peer address (optionally ports), counted by TC programs on the pods' host-side veths in an LRU map.",
  source: 'ebpf',
  defaultEnabled: false,
  metrics,
  events: [],
  args: argsSchema,
  async availability() {
    const a = hookAvailability(OBJECT, [['flow_ingress'], ['flow_egress']]);
    return a.available
      ? { ...a, variant: flowAttachMode('auto') === 'tcx' ? 'TCX links' : 'clsact (cls_bpf)' }
      : a;
  },
  kernel: () =>
    kernelRequirement(OBJECT, [['flow_ingress'], ['flow_egress']], {}, [
      'TCX links from 6.6 (gone with the process); before, clsact qdisc + cls_bpf filters (4.5+), detached on close and replaced on the next start after a kill',
    ]),
  async create(ctx, args) {
    const rt = EbpfRuntime.open({
      probe: 'flow',
      object: OBJECT,
      ctx,
      args: eventArgsSchema.parse({}),
      watchAll: true,
      rodata: { cfg_ports: args.ports ? 1 : 0 } satisfies Partial<Record<RodataName, unknown>>,
      maxEntries: { flow_counts: args.maxFlows },
      programs: { flow_ingress: { autoAttach: false }, flow_egress: { autoAttach: false } },
    });
    const map: BpfMap = rt.coll.map('flow_counts' satisfies MapName);
    const progIn = rt.coll.program('flow_ingress' satisfies Program).fd;
    const progOut = rt.coll.program('flow_egress' satisfies Program).fd;
    const attached = new Map<number, Attached>(); // by netns inode
    const failures = new Map<string, string>(); // display name → reason
    const api = tcxApi();
    const mode = flowAttachMode(args.attachMode);

    const detach = (inode: number) => {
      const a = attached.get(inode);
      if (!a) return;
      for (const fd of a.links) api.close(fd);
      if (mode === 'tc') {
        api.tcDetach(a.ifindex, BPF_TC_INGRESS);
        api.tcDetach(a.ifindex, BPF_TC_EGRESS);
      }
      attached.delete(inode);
      map.deleteWhere((k) => flowKey.ifindex(dataView(k), 0) === a.ifindex);
    };
    const attach = (e: Entity) => {
      if (!e.hostVeth) return;
      const prev = attached.get(e.netnsInode);
      if (prev && prev.entity.hostVeth === e.hostVeth) return;
      detach(e.netnsInode);
      const ifindex = ifindexOf(e.hostVeth);
      if (!ifindex) {
        failures.set(e.displayName, `host veth ${e.hostVeth} not found`);
        return;
      }
      const links: number[] = [];
      if (mode === 'tc') {
        for (const [prog, point] of [
          [progIn, BPF_TC_INGRESS],
          [progOut, BPF_TC_EGRESS],
        ] as const) {
          const r = api.tcAttach(prog, ifindex, point);
          if (r < 0) {
            api.tcDetach(ifindex, BPF_TC_INGRESS);
            failures.set(e.displayName, `clsact attach to ${e.hostVeth} failed: errno ${-r}`);
            ctx.log.warn({ veth: e.hostVeth, errno: -r }, 'flow: clsact attach failed');
            return;
          }
        }
        failures.delete(e.displayName);
        attached.set(e.netnsInode, { entity: e, ifindex, links });
        return;
      }
      for (const [prog, type] of [
        [progIn, BPF_TCX_INGRESS],
        [progOut, BPF_TCX_EGRESS],
      ] as const) {
        const fd = api.link(prog, ifindex, type);
        if (fd < 0) {
          for (const l of links) api.close(l);
          failures.set(e.displayName, `TCX attach to ${e.hostVeth} failed: errno ${-fd}`);
          ctx.log.warn({ veth: e.hostVeth, errno: -fd }, 'flow: TCX attach failed');
          return;
        }
        links.push(fd);
      }
      failures.delete(e.displayName);
      attached.set(e.netnsInode, { entity: e, ifindex, links });
    };
    const onChange = (changes: readonly EntityChange[]) => {
      for (const c of changes) {
        if (c.type === 'removed') detach(c.entity.netnsInode);
        else {
          if (c.type === 'updated' && c.previous.netnsInode !== c.entity.netnsInode)
            detach(c.previous.netnsInode);
          attach(c.entity);
        }
      }
    };
    for (const e of ctx.entities.entities()) attach(e);
    const unsubscribe = ctx.entities.onChange(onChange);
    let closed = false;

    const probe: Probe<FlowArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        const byIfindex = new Map<number, number>();
        for (const [inode, a] of attached) byIfindex.set(a.ifindex, inode);
        for (const e of map.entriesSummed()) {
          const k = dataView(e.key);
          const netns = byIfindex.get(flowKey.ifindex(k, 0));
          if (netns === undefined) continue; // veth of a pod that is gone (entries are being deleted)
          const family = flowKey.family(k, 0);
          const attributes: Record<string, string | number> = {
            'network.io.direction': flowKey.dir(k, 0) === 0 ? 'transmit' : 'receive',
            'network.transport': transportName(flowKey.l4proto(k, 0)),
            'network.local.address': ipString(k, FLOW_KEY.local, family),
            'network.peer.address': ipString(k, FLOW_KEY.peer, family),
          };
          const type = networkType(family);
          if (type) attributes['network.type'] = type;
          if (args.ports) {
            attributes['network.local.port'] = flowKey.lport(k, 0);
            attributes['network.peer.port'] = flowKey.pport(k, 0);
          }
          if (ctx.peers)
            Object.assign(
              attributes,
              ctx.peers.resolve(attributes['network.peer.address'] as string).attributes,
            );
          out.push({ metric: M.packets, netns, attributes, value: e.values[FLOW_VAL.packets / 8] ?? 0 });
          out.push({ metric: M.bytes, netns, attributes, value: e.values[FLOW_VAL.bytes / 8] ?? 0 });
        }
        out.push(...rt.selfPoints());
        return out;
      },
      status(): ProbeStatus {
        if (closed) return { state: 'stopped' };
        const base = rt.status();
        const details = {
          ...(base.details ?? {}),
          attached: [...attached.values()].map((a) => a.entity.hostVeth),
          attachMode: mode,
          failures: Object.fromEntries(failures),
        };
        if (base.state !== 'running') return { ...base, details };
        if (failures.size) {
          return {
            state: 'degraded',
            reason: [...failures].map(([n, r]) => `${n}: ${r}`).join('; '),
            details,
          };
        }
        return { state: 'running', details };
      },
      async close() {
        if (closed) return;
        closed = true;
        unsubscribe();
        for (const inode of [...attached.keys()]) {
          const a = attached.get(inode);
          for (const fd of a?.links ?? []) api.close(fd);
          if (a && mode === 'tc') {
            api.tcDetach(a.ifindex, BPF_TC_INGRESS);
            api.tcDetach(a.ifindex, BPF_TC_EGRESS);
          }
        }
        attached.clear();
        rt.close();
      },
    };
    return probe;
  },
};
