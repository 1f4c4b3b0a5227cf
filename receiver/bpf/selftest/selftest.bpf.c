// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * selftest: the small real program the eBPF runtime's tests load (test/bpf/).
 *  - on_kfree_skb / on_kfree_skb_v3: tp_btf/kfree_skb, two prototype variants (4 args from 6.10 with
 *    rx_sk, 3 args before); the loader keeps the one matching the running kernel's BTF arity.
 *    Counts every drop in a PERCPU_HASH keyed by (netns, drop reason) and sends a ring event
 *    (rate limited per netns, optional stack).
 *  - programs whose hook is missing here, to exercise degradation: a kprobe (no CONFIG_KPROBES), a
 *    tp_btf and a classic tracepoint that do not exist, an fentry (TRACING prog type blocked).
 */
#include "podnet.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SELFTEST_EV_DROP 1

/* Only count drops whose reason is above this (1 = SKB_CONSUMED). */
const volatile __u32 cfg_min_reason = 1;
/* When non-zero, only this netns produces ring events (counts are kept for all). */
const volatile __u32 cfg_event_netns = 0;

struct drop_key {
	__u32 netns;
	__u32 reason;
};

struct drop_val {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct drop_key);
	__type(value, struct drop_val);
} drops SEC(".maps");

struct drop_event {
	struct pn_event_hdr hdr; /* @0 */
	__u64 location;          /* @16 */
	__u32 reason;            /* @24 */
	__u32 ifindex;           /* @28 */
	__s32 stack_id;          /* @32 */
	__u32 len;               /* @36 */
	__u16 protocol;          /* @40 */
	__u16 family;            /* @42 */
	__u16 sport;             /* @44 */
	__u16 dport;             /* @46 */
	__u8 l4proto;            /* @48 */
	__u8 pad[3];
	__u8 saddr[16];          /* @52 */
	__u8 daddr[16];          /* @68 */
	__u32 pad2;              /* @84 */
};
_Static_assert(sizeof(struct drop_event) == 88, "drop_event layout is decoded in TypeScript");

static __always_inline void handle_drop(void *ctx, struct sk_buff *skb, void *location, __u32 reason,
					struct sock *rx_sk)
{
	if (reason <= cfg_min_reason)
		return;
	__u32 netns = pn_skb_netns(skb, rx_sk);
	__u32 len = BPF_CORE_READ(skb, len);

	struct drop_key key = { .netns = netns, .reason = reason };
	struct drop_val *v = bpf_map_lookup_elem(&drops, &key);
	if (!v) {
		struct drop_val zero = {};
		bpf_map_update_elem(&drops, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&drops, &key);
		if (!v)
			return;
	}
	v->packets += 1; /* per-CPU value: plain adds are exact */
	v->bytes += len;

	if (cfg_event_netns && netns != cfg_event_netns)
		return;
	if (!pn_rate_allow(netns, SELFTEST_EV_DROP))
		return;
	struct drop_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return;
	pn_fill_hdr(&e->hdr, SELFTEST_EV_DROP, netns);
	e->location = (__u64)location;
	e->reason = reason;
	e->ifindex = BPF_CORE_READ(skb, skb_iif);
	e->len = len;
	e->stack_id = pn_stack_id(ctx, 3);
	struct pn_flow f = {};
	pn_skb_flow(skb, &f);
	e->protocol = f.protocol;
	e->family = f.family;
	e->sport = f.sport;
	e->dport = f.dport;
	e->l4proto = f.l4proto;
	e->pad[0] = e->pad[1] = e->pad[2] = 0;
	e->pad2 = 0;
	__builtin_memcpy(e->saddr, f.saddr, 16);
	__builtin_memcpy(e->daddr, f.daddr, 16);
	bpf_ringbuf_submit(e, 0);
}

/* Linux >= 6.10: kfree_skb(skb, location, reason, rx_sk). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason,
	     struct sock *rx_sk)
{
	handle_drop(ctx, skb, location, (__u32)reason, rx_sk);
	return 0;
}

/* Linux 5.17 - 6.9: kfree_skb(skb, location, reason). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(on_kfree_skb_v3, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	handle_drop(ctx, skb, location, (__u32)reason, NULL);
	return 0;
}

/* ---- degradation fixtures: hooks this kernel does not offer ---- */

__u64 degrade_hits = 0;

SEC("kprobe/tcp_sendmsg")
int on_tcp_sendmsg_kprobe(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&degrade_hits, 1);
	return 0;
}

SEC("fentry/tcp_sendmsg")
int BPF_PROG(on_tcp_sendmsg_fentry, struct sock *sk)
{
	__sync_fetch_and_add(&degrade_hits, 1);
	return 0;
}

SEC("tp_btf/podnet_no_such_tracepoint")
int BPF_PROG(on_missing_tp_btf)
{
	__sync_fetch_and_add(&degrade_hits, 1);
	return 0;
}

SEC("tracepoint/podnet_no_such/event")
int on_missing_tracepoint(void *ctx)
{
	__sync_fetch_and_add(&degrade_hits, 1);
	return 0;
}
