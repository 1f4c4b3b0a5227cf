// flow (optional, off by default): "who does this pod talk to, and how much" — bytes and packets per
// (pod address, peer address, transport, direction[, ports]) counted by TC programs (flow.bpf.c) on each
// pod's host-side veth (Entity.hostVeth from pod discovery), attached by receiver/kit/ebpf/veth.ts: TCX
// links where the kernel has them (6.6+), else cls_bpf filters on a clsact qdisc (flow's own handle and
// priority). Counters live in an LRU per-CPU hash in the kernel (bounded by `maxFlows`; an evicted flow
// restarts at 0).
import { z } from 'zod';
import { dataView, ipString } from '../../receiver/bpf/events.ts';
import type { BpfMap } from '../../receiver/bpf/maps.ts';
import { networkType, transportName } from '../../receiver/kit/ebpf/decode.ts';
import { kernelRequirement } from '../../receiver/kit/ebpf/kernels.ts';
import {
  EbpfRuntime,
  eventArgsSchema,
  hookAvailability,
  SELF_METRIC_DEFS,
} from '../../receiver/kit/ebpf/runtime.ts';
import { VethAttacher, vethAttachMode, vethModeName } from '../../receiver/kit/ebpf/veth.ts';
import { PEER_EVENT_ATTRIBUTES } from '../../receiver/peers/types.ts';
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

/** flow's own clsact filter on each veth (dns has another: receiver/kit/ebpf/veth.ts). */
const TC_FILTER = { handle: 0x504e, priority: 0x504e } as const;

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
    return a.available ? { ...a, variant: vethModeName(vethAttachMode('auto')) } : a;
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
    let closed = false;
    const attacher = () =>
      new VethAttacher({
        probe: 'flow',
        coll: rt.coll,
        ingress: 'flow_ingress' satisfies Program,
        egress: 'flow_egress' satisfies Program,
        mode: vethAttachMode(args.attachMode),
        filter: TC_FILTER,
        source: ctx.entities,
        log: ctx.log,
        // the counters of a veth that is gone (a new pod may reuse its ifindex)
        onDetach: (a) => {
          if (!closed) map.deleteWhere((k) => flowKey.ifindex(dataView(k), 0) === a.ifindex);
        },
      });
    let veths: VethAttacher;
    try {
      veths = attacher();
    } catch (err) {
      rt.close();
      throw err;
    }

    const probe: Probe<FlowArgs> = {
      async collect() {
        const out: MetricPoint[] = [];
        const byIfindex = new Map<number, number>();
        for (const [inode, a] of veths.attached()) byIfindex.set(a.ifindex, inode);
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
          attached: veths.veths(),
          attachMode: veths.mode,
          failures: Object.fromEntries(veths.failures),
        };
        if (base.state !== 'running') return { ...base, details };
        if (veths.failures.size) {
          return {
            state: 'degraded',
            reason: [...veths.failures].map(([n, r]) => `${n}: ${r}`).join('; '),
            details,
          };
        }
        return { state: 'running', details };
      },
      async close() {
        if (closed) return;
        closed = true;
        veths.close();
        rt.close();
      },
    };
    return probe;
  },
};
