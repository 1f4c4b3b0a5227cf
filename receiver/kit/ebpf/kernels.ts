// Minimum kernels of the eBPF probes, derived from the hooks each program variant needs: a program runs
// from the newest of (its attach type, its tracepoint, the prototype variant it was written for, the map
// types of its object); a hook group runs from its oldest program; a probe runs (partly) from its oldest
// group and completely from its newest. `podnet probes` and docs/kernels.md show the result.
//
// Versions are upstream releases. Where the introduction was not checked, the entry says what was
// measured instead: `le` = present on that version (Debian 6.1 in the VM test, test/kernel/), `gt` =
// absent there and present on 6.18 (this machine). Everything older than the floor (5.8) is `lt`.

import type { HookKind } from '../../bpf/hooks.ts';
import type { ProgramOptions } from '../../bpf/object.ts';
import type { KernelRequirement } from '../../probe/types.ts';
import { objectSpec } from './runtime.ts';

/** A kernel version bound: `eq` from this version, `le` exists on it (older not checked), `gt` after it, `lt` before it. */
export interface KVersion {
  readonly v: readonly [number, number];
  readonly q: 'eq' | 'le' | 'gt' | 'lt';
}

const eq = (a: number, b: number): KVersion => ({ v: [a, b], q: 'eq' });
/** Present on Debian's 6.1 (measured in the VM), introduction not checked. */
const on61: KVersion = { v: [6, 1], q: 'le' };
/** Absent on Debian's 6.1, present on 6.18 (measured). */
const after61: KVersion = { v: [6, 1], q: 'gt' };
/** Older than podnet's floor (5.8): never the limiting factor. */
const old: KVersion = { v: [5, 8], q: 'lt' };

/** Map type BPF_MAP_TYPE_RINGBUF (27), which every event probe's object holds: Linux 5.8. */
const RINGBUF_MAP = 27;
export const FLOOR = {
  ringbuf: eq(5, 8),
  /** /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF), needed by every CO-RE object. */
  btf: eq(5, 4),
} as const;

const ATTACH: Partial<Record<HookKind, KVersion>> = {
  tp_btf: eq(5, 5),
  raw_tp: eq(4, 17),
  tracepoint: eq(4, 7),
  fentry: eq(5, 5),
  fexit: eq(5, 5),
  kprobe: eq(4, 1),
  /** SEC("tc"): clsact + cls_bpf direct-action (4.5); TCX links need 6.6 (flow falls back to clsact). */
  other: eq(4, 5),
};

interface TracepointFact {
  readonly since: KVersion;
  /** Argument counts (BTF prototype, without __data) and when each appeared. */
  readonly args?: Readonly<Record<number, KVersion>>;
}

/**
 * Tracepoints the probes use. Upstream history: kfree_skb gained the drop reason (3rd argument) in 5.17
 * and rx_sk (4th) in 6.10; tcp_send_reset gained its reset reason (3rd) in 6.10. Argument counts on 6.1
 * and 6.18 are measured from their BTF (test/kernel/).
 */
export const TRACEPOINTS: Readonly<Record<string, TracepointFact>> = {
  kfree_skb: { since: old, args: { 2: old, 3: eq(5, 17), 4: eq(6, 10) } },
  tcp_send_reset: { since: old, args: { 2: old, 3: eq(6, 10) } },
  tcp_receive_reset: { since: old },
  tcp_retransmit_skb: { since: old, args: { 2: old, 3: after61 } },
  tcp_retransmit_synack: { since: old },
  inet_sock_set_state: { since: old },
  udp_fail_queue_rcv_skb: { since: old, args: { 2: old, 3: after61 } },
  sock_rcvqueue_full: { since: old },
  sock_exceed_buf_limit: { since: old },
  softirq_raise: { since: old },
  softirq_entry: { since: old },
  softirq_exit: { since: old },
  netif_receive_skb: { since: old },
  napi_poll: { since: old },
  net_dev_queue: { since: old },
  net_dev_xmit: { since: old },
  net_dev_start_xmit: { since: on61 },
  qdisc_enqueue: { since: on61 },
  sk_data_ready: { since: after61 },
  sock_recv_length: { since: after61 },
  tcp_sendmsg_locked: { since: after61 },
};

/** Orders bounds: lt 5.8 < eq 5.8 < le 6.1 ≈ eq 6.1 < gt 6.1. */
function rank(k: KVersion): number {
  const base = k.v[0] * 1000 + k.v[1];
  return base * 4 + (k.q === 'lt' ? 0 : k.q === 'gt' ? 3 : k.q === 'le' ? 2 : 1);
}
const maxV = (a: KVersion, b: KVersion): KVersion => (rank(a) >= rank(b) ? a : b);
const minV = (a: KVersion, b: KVersion): KVersion => (rank(a) <= rank(b) ? a : b);

export function formatVersion(k: KVersion): string {
  const s = `${k.v[0]}.${k.v[1]}`;
  return k.q === 'eq' ? s : k.q === 'le' ? `≤${s}` : k.q === 'gt' ? `>${s}` : `<${s}`;
}

function argsOf(o: ProgramOptions | undefined): number | undefined {
  const t = o?.tpArgs;
  if (t === undefined) return undefined;
  return typeof t === 'number' ? t : t.min;
}

/** Oldest kernel a program of `object` runs on, with why. */
export function programMinimum(
  object: URL | string,
  program: string,
  options?: ProgramOptions,
): { version: KVersion; why: string } {
  const spec = objectSpec(object);
  const p = spec.program(program);
  let v: KVersion = FLOOR.btf;
  let why = 'kernel BTF';
  const bump = (k: KVersion, reason: string) => {
    if (rank(k) > rank(v)) {
      v = k;
      why = reason;
    }
  };
  if (spec.maps.some((m) => m.type === RINGBUF_MAP)) bump(FLOOR.ringbuf, 'BPF ring buffer');
  const attach = ATTACH[p.hook.kind];
  if (attach) bump(attach, `${p.hook.kind} programs`);
  if (p.hook.kind === 'tp_btf' || p.hook.kind === 'raw_tp') {
    const fact = TRACEPOINTS[p.hook.target];
    if (!fact) throw new Error(`receiver/kit/ebpf/kernels.ts: no entry for tracepoint ${p.hook.target}`);
    bump(fact.since, `tracepoint ${p.hook.target}`);
    const n = argsOf(options);
    const a = n !== undefined ? fact.args?.[n] : undefined;
    if (a) bump(a, `${p.hook.target} with ${n} arguments`);
  }
  return { version: v, why };
}

/**
 * Kernel requirement of a probe from its hook groups (alternatives per hook, as for hookAvailability)
 * and program options (prototype variants); `notes` add what the hooks alone do not show.
 */
export function kernelRequirement(
  object: URL | string,
  groups: readonly (readonly string[])[],
  programs: Readonly<Record<string, ProgramOptions>> = {},
  notes: readonly string[] = [],
): KernelRequirement {
  let min: KVersion | undefined;
  let all: KVersion | undefined;
  const variants: string[] = [];
  for (const group of groups) {
    let g: KVersion | undefined;
    for (const name of group) {
      const m = programMinimum(object, name, programs[name]);
      g = g ? minV(g, m.version) : m.version;
      variants.push(`${name}: ${formatVersion(m.version)} (${m.why})`);
    }
    if (!g) continue;
    min = min ? minV(min, g) : g;
    all = all ? maxV(all, g) : g;
  }
  return {
    min: min ? formatVersion(min) : formatVersion(FLOOR.btf),
    all: all ? formatVersion(all) : formatVersion(FLOOR.btf),
    notes: [...notes, ...variants],
  };
}
