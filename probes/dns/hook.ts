// Which hook the dns probe runs (probes/dns/dns.ts, arg `hook`) and whether it can run here: the default
// `tc` needs the node's netns (where pods' host-side veths and the node's devices are) and the four TC
// programs; `auto` / `tracepoint` need both tracepoints. What each hook attaches is attach.ts.
import { bpfCapabilityProblem } from '../../receiver/bpf/caps.ts';
import { hookAvailability } from '../../receiver/kit/ebpf/runtime.ts';
import { vethAttachMode, vethModeName } from '../../receiver/kit/ebpf/veth.ts';
import { inHostNetns } from '../../receiver/netns/setns.ts';
import type { Availability } from '../../receiver/probe/types.ts';

export const OBJECT = new URL('./dns.bpf.o', import.meta.url);

/** The probe's `hook` arg (docs/probes-dns.md). */
export const HOOKS = ['auto', 'tracepoint', 'tc'] as const;
export type DnsHook = (typeof HOOKS)[number];

/** Why the node's netns cannot be entered (setns refused: CAP_SYS_ADMIN missing), else undefined. */
function hostNetnsProblem(): string | undefined {
  try {
    inHostNetns(() => undefined);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * The hook that runs. `tc` finds and attaches to pods' host-side veths and the host's devices inside the
 * node's netns (receiver/kit/ebpf/veth.ts, hostdev.ts), also when podnet runs outside it (the DaemonSet:
 * hostNetwork false). Only when that netns cannot be entered does `tc` run as `tracepoint`, which sees
 * every netns from anywhere, with the reason in /status (docs/probes-dns.md).
 */
export function effectiveHook(
  hook: DnsHook,
  problem: string | undefined = hostNetnsProblem(),
): { hook: DnsHook; reason?: string } {
  if (hook !== 'tc' || problem === undefined) return { hook };
  return {
    hook: 'tracepoint',
    reason: `hook tc runs as tracepoint: cannot enter the node's netns, where the veths and devices are (${problem})`,
  };
}

/** The probe's availability (`podnet probes`, the registry): judged for the default hook, tc. */
export async function dnsAvailability(): Promise<Availability> {
  // The TC programs read the headers with packet-pointer arithmetic that the verifier allows only to
  // perfmon_capable() ("pointer arithmetic … prohibited for !root" without CAP_PERFMON or CAP_SYS_ADMIN):
  // judged like tracing programs, so `podnet probes` does not call dns available when its load would fail.
  const caps = bpfCapabilityProblem({ tracing: true });
  if (caps) return { available: false, reason: caps };
  if (effectiveHook('tc').reason) {
    // the node's netns cannot be entered: the default runs the tracepoints (effectiveHook)
    const tp = hookAvailability(OBJECT, [['dns_dev_queue'], ['dns_receive']]);
    return tp.available && tp.reason?.startsWith('partly: ')
      ? {
          available: false,
          reason: `needs both net_dev_queue and netif_receive_skb: ${tp.reason.slice(9)}`,
        }
      : tp;
  }
  // the default hook (tc): TC on pods' veths and the host's own devices
  const tc = hookAvailability(OBJECT, [
    ['dns_tc_ingress'],
    ['dns_tc_egress'],
    ['dns_host_ingress'],
    ['dns_host_egress'],
  ]);
  if (!tc.available) return tc;
  const variant = `dns_tc_ingress + dns_tc_egress + dns_host_ingress + dns_host_egress, ${vethModeName(vethAttachMode('auto'))}`;
  const tp = hookAvailability(OBJECT, [['dns_dev_queue'], ['dns_receive']]);
  if (tp.available && !tp.reason) return { available: true, variant };
  // one of the two tracepoints missing: hooks auto / tracepoint unusable (tracepointPair, attach.ts)
  const missing = tp.reason?.startsWith('partly: ') ? tp.reason.slice('partly: '.length) : tp.reason;
  return {
    available: true,
    reason: `partly: hooks auto / tracepoint unusable (${missing ?? 'tracepoints unavailable'}); the default hook tc runs`,
    variant,
  };
}
