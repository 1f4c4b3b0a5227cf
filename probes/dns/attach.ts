// Where the dns programs attach (probes/dns/dns.ts): which programs load for each `hook`, the TC programs
// on pods' host-side veths with the maps they count under, those on the host netns's own devices (hook
// `tc`, hostdev.ts), and the tracepoint pair that runs both or neither.
import type { BpfCollection } from '../../receiver/bpf/object.ts';
import { VethAttacher, vethAttachMode } from '../../receiver/kit/ebpf/veth.ts';
import { hostNetnsInode } from '../../receiver/netns/setns.ts';
import type { ProbeContext } from '../../receiver/probe/types.ts';
import type { MapName, Program } from './dns.layout.gen.ts';
import { HostDevAttacher } from './hostdev.ts';

/** The programs `hook` (the probe's `hook` arg) loads, and which attach by themselves. */
export function programs(hook: 'auto' | 'tracepoint' | 'tc') {
  const tp = hook !== 'tc';
  const tc = hook !== 'tracepoint';
  return {
    dns_dev_queue: { enabled: tp },
    dns_receive: { enabled: tp },
    dns_tc_ingress: { enabled: tc, autoAttach: false },
    dns_tc_egress: { enabled: tc, autoAttach: false },
    // hook `tc`: the host netns on its own devices (with `auto` the tracepoints see it)
    dns_host_ingress: { enabled: hook === 'tc', autoAttach: false },
    dns_host_egress: { enabled: hook === 'tc', autoAttach: false },
  };
}

/** dns's own clsact filter on each veth (flow has another: receiver/kit/ebpf/veth.ts). */
const TC_FILTER = { handle: 0x504f, priority: 0x504f } as const;

/**
 * TC programs on each pod's host-side veth. Before they attach: the veth's ifindex → the pod's netns
 * (`dns_tc_ifindex`, what they count under) and the netns in `dns_tc_netns` (the tracepoints leave it
 * to them, hook `auto`); both removed when the veth goes.
 */
export function vethAttacher(
  coll: BpfCollection,
  ctx: ProbeContext,
  attachMode: 'auto' | 'tcx' | 'tc',
): VethAttacher {
  const key = Buffer.alloc(4);
  const val = Buffer.alloc(4);
  const put = (map: string, k: number, v: number) => {
    key.writeUInt32LE(k >>> 0);
    val.writeUInt32LE(v >>> 0);
    coll.map(map).update(key, val);
  };
  const del = (map: string, k: number) => {
    key.writeUInt32LE(k >>> 0);
    coll.map(map).delete(key);
  };
  return new VethAttacher({
    probe: 'dns',
    coll,
    ingress: 'dns_tc_ingress' satisfies Program,
    egress: 'dns_tc_egress' satisfies Program,
    mode: vethAttachMode(attachMode),
    filter: TC_FILTER,
    source: ctx.entities,
    log: ctx.log,
    onAttach: (a) => {
      put('dns_tc_ifindex' satisfies MapName, a.ifindex, a.entity.netnsInode);
      put('dns_tc_netns' satisfies MapName, a.entity.netnsInode, 1);
    },
    onDetach: (a) => {
      del('dns_tc_netns' satisfies MapName, a.entity.netnsInode);
      del('dns_tc_ifindex' satisfies MapName, a.ifindex);
    },
  });
}

/** Hook `tc`: the host netns's own devices (hostdev.ts), next to the pods' veths of `veths`. */
export function hostDevAttacher(
  coll: BpfCollection,
  ctx: ProbeContext,
  veths: VethAttacher,
): HostDevAttacher {
  return new HostDevAttacher({
    coll,
    mode: veths.mode,
    filter: TC_FILTER,
    netns: hostNetnsInode, // the node's: hostdev.ts lists and attaches there
    podVeths: () => new Set(ctx.entities.entities().flatMap((e) => (e.hostVeth ? [e.hostVeth] : []))),
    log: ctx.log,
  });
}

/**
 * The two tracepoint programs are one hook: queries seen without their responses (or the reverse) would
 * all end as timeouts. When only one of them runs (the kernel refused the other, e.g. its verifier), the
 * other is detached too, with the reason; TC on pods' veths (hook `auto`) keeps running.
 */
export function tracepointPair(
  coll: BpfCollection,
  log: ProbeContext['log'],
  unchain: (program: string) => void = () => {},
): void {
  const q = coll.program('dns_dev_queue' satisfies Program);
  const r = coll.program('dns_receive' satisfies Program);
  // loaded without a link of its own: reached from the hook's chain (dns.ts `chained`)
  const up = (p: typeof q) => p.state === 'attached' || (p.state === 'loaded' && !p.autoAttach);
  if (up(q) === up(r)) return;
  const [ok, bad] = up(q) ? [q, r] : [r, q];
  unchain(ok.name);
  coll.detachProgram(ok.name);
  ok.state = 'unavailable';
  ok.reason = `detached: ${bad.name} does not run (${bad.reason ?? bad.state}), and one side alone would count every query as a timeout`;
  log.warn({ program: ok.name, reason: ok.reason }, 'dns: tracepoint hook disabled');
}
