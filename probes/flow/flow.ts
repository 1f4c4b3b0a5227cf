// flow (optional, off by default): "who does this pod talk to, and how much" — bytes and packets per
// (pod address, peer address, transport, direction[, ports]) counted by TC programs (flow.bpf.c) on each
// pod's host-side veth (Entity.hostVeth from pod discovery). Attached with TCX links (kernel >= 6.6;
// detached when the link fd closes, so nothing stays behind even after kill -9). Counters live in an LRU
// per-CPU hash in the kernel (bounded by `maxFlows`; an evicted flow restarts at 0).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ipString } from '../../receiver/bpf/events.ts';
import { libbpfCandidates, loadFirst } from '../../receiver/bpf/libbpf.ts';
import type { BpfMap } from '../../receiver/bpf/maps.ts';
import { networkType, transportName } from '../../receiver/kit/ebpf/decode.ts';
import {
  EbpfRuntime,
  eventArgsSchema,
  hookAvailability,
  SELF_METRIC_DEFS,
} from '../../receiver/kit/ebpf/runtime.ts';
import { PEER_EVENT_ATTRIBUTES } from '../../receiver/peers/types.ts';
import type { Entity, EntityChange } from '../../receiver/pods/entity.ts';
import type { MetricDef, MetricPoint, Probe, ProbeSpec, ProbeStatus } from '../../receiver/probe/types.ts';

export const OBJECT = new URL('./flow.bpf.o', import.meta.url);

const argsSchema = z.object({
  /** Put local/peer ports in the key (high cardinality; KubeSkoop `enablePortInLabel`). */
  ports: z.boolean().default(false),
  /** Flows tracked at once (LRU beyond this). */
  maxFlows: z.number().int().min(1024).default(65536),
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

export interface Tcx {
  link(progFd: number, ifindex: number, type: number): number;
  close(fd: number): number;
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
    const libc = loadFirst(['libc.so.6']).lib;
    const close = libc.func('int close(int fd)') as (fd: number) => number;
    tcx = { link: (p, i, t) => link(p, i, t, null), close };
  }
  return tcx;
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

function ip(buf: Buffer, o: number, family: number): string {
  return ipString(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), o, family);
}

interface Attached {
  readonly entity: Entity;
  readonly ifindex: number;
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
    return hookAvailability(OBJECT, [['flow_ingress'], ['flow_egress']]);
  },
  async create(ctx, args) {
    const rt = EbpfRuntime.open({
      probe: 'flow',
      object: OBJECT,
      ctx,
      args: eventArgsSchema.parse({}),
      watchAll: true,
      rodata: { cfg_ports: args.ports ? 1 : 0 },
      maxEntries: { flow_counts: args.maxFlows },
      programs: { flow_ingress: { autoAttach: false }, flow_egress: { autoAttach: false } },
    });
    const map: BpfMap = rt.coll.map('flow_counts');
    const progIn = rt.coll.program('flow_ingress').fd;
    const progOut = rt.coll.program('flow_egress').fd;
    const attached = new Map<number, Attached>(); // by netns inode
    const failures = new Map<string, string>(); // display name → reason
    const api = tcxApi();

    const detach = (inode: number) => {
      const a = attached.get(inode);
      if (!a) return;
      for (const fd of a.links) api.close(fd);
      attached.delete(inode);
      map.deleteWhere((k) => k.readUInt32LE(32) === a.ifindex);
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
          const k = e.key;
          const netns = byIfindex.get(k.readUInt32LE(32));
          if (netns === undefined) continue; // veth of a pod that is gone (entries are being deleted)
          const family = k.readUInt8(40);
          const attributes: Record<string, string | number> = {
            'network.io.direction': k.readUInt8(42) === 0 ? 'transmit' : 'receive',
            'network.transport': transportName(k.readUInt8(41)),
            'network.local.address': ip(k, 0, family),
            'network.peer.address': ip(k, 16, family),
          };
          const type = networkType(family);
          if (type) attributes['network.type'] = type;
          if (args.ports) {
            attributes['network.local.port'] = k.readUInt16LE(36);
            attributes['network.peer.port'] = k.readUInt16LE(38);
          }
          if (ctx.peers)
            Object.assign(
              attributes,
              ctx.peers.resolve(attributes['network.peer.address'] as string).attributes,
            );
          out.push({ metric: M.packets, netns, attributes, value: e.values[0] ?? 0 });
          out.push({ metric: M.bytes, netns, attributes, value: e.values[1] ?? 0 });
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
        }
        attached.clear();
        rt.close();
      },
    };
    return probe;
  },
};
