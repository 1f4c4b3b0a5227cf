// Shared by the eBPF runtime tests and the ring benchmark: where the selftest objects are and how their
// drop events decode (layout: receiver/bpf/selftest/selftest.bpf.c `struct drop_event`).
import { ipString, readEventHeader } from '../../receiver/bpf/events.ts';
import type { LoadOptions } from '../../receiver/bpf/object.ts';

export const SELFTEST_OBJECT = new URL('../../receiver/bpf/selftest/selftest.bpf.o', import.meta.url);
export const REJECT_OBJECT = new URL('../../receiver/bpf/selftest/reject.bpf.o', import.meta.url);

/** Load options that keep only the kfree_skb counter (variant picked by BTF arity). */
export function dropOnly(rodata: LoadOptions['rodata'] = {}, extra: Partial<LoadOptions> = {}): LoadOptions {
  return {
    rodata,
    programs: {
      on_kfree_skb: { tpArgs: 4 },
      on_kfree_skb_v3: { tpArgs: 3 },
      on_tcp_sendmsg_kprobe: { enabled: false },
      on_tcp_sendmsg_fentry: { enabled: false },
      on_missing_tp_btf: { enabled: false },
      on_missing_tracepoint: { enabled: false },
    },
    ...extra,
  };
}

export interface DropEvent {
  tsNs: bigint;
  type: number;
  netns: number;
  location: bigint;
  reason: number;
  ifindex: number;
  stackId: number;
  len: number;
  protocol: number;
  family: number;
  sport: number;
  dport: number;
  l4proto: number;
  saddr: string;
  daddr: string;
}

export function decodeDrop(v: DataView, o: number): DropEvent {
  const h = readEventHeader(v, o);
  const family = v.getUint16(o + 42, true);
  return {
    tsNs: h.tsNs,
    type: h.type,
    netns: h.netns,
    location: v.getBigUint64(o + 16, true),
    reason: v.getUint32(o + 24, true),
    ifindex: v.getUint32(o + 28, true),
    stackId: v.getInt32(o + 32, true),
    len: v.getUint32(o + 36, true),
    protocol: v.getUint16(o + 40, true),
    family,
    sport: v.getUint16(o + 44, true),
    dport: v.getUint16(o + 46, true),
    l4proto: v.getUint8(o + 48),
    saddr: ipString(v, o + 52, family),
    daddr: ipString(v, o + 68, family),
  };
}

/** Polls `cond` every 20 ms until true or `ms` elapse. */
export async function waitFor(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

/** (netns, reason) key of the `drops` map. */
export function dropKey(netns: number, reason: number): Buffer {
  const k = Buffer.alloc(8);
  k.writeUInt32LE(netns, 0);
  k.writeUInt32LE(reason, 4);
  return k;
}
