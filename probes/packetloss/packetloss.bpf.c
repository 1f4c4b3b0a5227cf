// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * packetloss: every kernel packet drop (skb:kfree_skb with a drop reason > SKB_CONSUMED).
 *  - counters: PERCPU_HASH `pl_drops` keyed by (netns, reason, IP version, L4 protocol), exact for
 *    every drop (watched netns under their inode, the rest under 0 = unattributed);
 *  - events: ring record per drop (5-tuple, interface, location, reason, optional stack), rate limited
 *    per (netns, PL_EV_DROP); drop sites in the exclusion ranges (noise) produce no event.
 * Prototype variants by BTF argument count: 4 (6.10+, rx_sk), 3 (5.17-6.9, reason); the raw_tp pair is
 * the fallback where tp_btf is unavailable.
 * Location variant (`pl_kfree_skb2_raw`, kernels without drop reasons, < 5.17, or forced): reads only
 * (skb, location), the two arguments every kernel since 4.17 passes, and counts in `pl_loc_drops` keyed
 * by (netns, IP version, L4 protocol, drop location) instead of the reason — userspace turns the location
 * into its function's symbol (KubeSkoop's approach).
 */
#include "podnet.bpf.h"
#include "pn_watch.bpf.h"
#include "pn_tuple.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PL_EV_DROP 1
#define PL_MAX_EXCLUDE 16

/* Drop-site exclusion: [start, end) address ranges of kernel functions (events only; counters count all). */
const volatile __u32 pl_cfg_exclude_count = 0;
const volatile __u64 pl_cfg_exclude_start[PL_MAX_EXCLUDE] = {};
const volatile __u64 pl_cfg_exclude_end[PL_MAX_EXCLUDE] = {};

struct pl_key {
	__u32 netns;
	__u16 reason;
	__u8 family; /* 4, 6, 0 = not IP */
	__u8 l4proto;
};

struct pl_val {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pl_key);
	__type(value, struct pl_val);
} pl_drops SEC(".maps");

/* Location variant: counters by drop location (the kernel address the tracepoint reports). */
struct pl_loc_key {
	__u32 netns;
	__u8 family;
	__u8 l4proto;
	__u16 pad;
	__u64 location;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pl_loc_key);
	__type(value, struct pl_val);
} pl_loc_drops SEC(".maps");

/* pl_event.reason of the location variant: the kernel gave no reason. */
#define PL_NO_REASON 0xffffffff

struct pl_event {
	struct pn_event_hdr hdr; /* @0 */
	__u64 location;          /* @16 */
	__u32 reason;            /* @24 */
	__u32 ifindex;           /* @28 */
	__s32 stack_id;          /* @32 */
	__u32 len;               /* @36 */
	__u32 raw_netns;         /* @40 netns before attribution (0 when unknown) */
	__u16 protocol;          /* @44 ETH_P_* */
	__u16 pad;               /* @46 */
	struct pn_tuple t;       /* @48 */
	char ifname[16];         /* @88 device name when the skb has no socket (device valid), else "" */
};
PN_LAYOUT(pl_event); /* TypeScript layout generated into packetloss.layout.gen.ts */

static __always_inline int excluded(__u64 loc)
{
	__u32 n = pl_cfg_exclude_count;

	for (int i = 0; i < PL_MAX_EXCLUDE; i++) {
		if (i >= n)
			break;
		if (loc >= pl_cfg_exclude_start[i] && loc < pl_cfg_exclude_end[i])
			return 1;
	}
	return 0;
}

/* IP version and L4 protocol only (one 10-byte read): the counter key; the full tuple is read only for
 * events that are sent. */
static __always_inline void pl_l4(int btf, const struct sk_buff *skb, __u8 *family, __u8 *l4)
{
	unsigned char *head = PN_RD(btf, skb, head);
	__u16 nh = PN_RD(btf, skb, network_header);
	__u8 b[10];
	if (!head || nh == (__u16)~0U || bpf_probe_read_kernel(b, sizeof(b), head + nh))
		return;
	if ((b[0] >> 4) == 4) {
		*family = 4;
		*l4 = b[9];
	} else if ((b[0] >> 4) == 6) {
		*family = 6;
		*l4 = b[6];
	}
}

/* `btf` is a literal per program: 1 (tp_btf) = direct BTF loads, 0 (raw_tp) = CO-RE probe reads.
 * reason == PL_NO_REASON: the location variant (counts by location, every kfree_skb is a drop). */
static __always_inline void handle_drop(void *ctx, int btf, struct sk_buff *skb, void *location, __u32 reason,
					struct sock *rx_sk)
{
	if (reason <= 1) /* SKB_NOT_DROPPED_YET, SKB_CONSUMED: not drops */
		return;
	struct sock *sk = rx_sk ? rx_sk : PN_RD(btf, skb, sk);
	__u32 raw = pn_sk_netns_rd(btf, sk);
	struct net_device *dev = NULL;
	if (!raw) {
		dev = PN_RD(btf, skb, dev);
		raw = pn_dev_netns_rd(btf, dev);
	}
	__u32 len = PN_RD(btf, skb, len);

	struct pl_val zero = {};
	struct pl_val *v;
	__u32 netns;
	if (reason == PL_NO_REASON) {
		struct pl_loc_key lkey = { .netns = raw, .location = (__u64)location };
		pl_l4(btf, skb, &lkey.family, &lkey.l4proto);
		v = pn_counter_get_watched(&pl_loc_drops, &lkey, &zero);
		netns = lkey.netns;
	} else {
		struct pl_key key = { .netns = raw, .reason = (__u16)reason };
		pl_l4(btf, skb, &key.family, &key.l4proto);
		v = pn_counter_get_watched(&pl_drops, &key, &zero);
		netns = key.netns;
	}
	if (v) {
		v->packets += 1;
		v->bytes += len;
	}

	if (excluded((__u64)location))
		return;
	if (!pn_rate_allow(netns, PL_EV_DROP))
		return;
	struct pl_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return;
	pn_fill_hdr(&e->hdr, PL_EV_DROP, netns);
	e->location = (__u64)location;
	e->reason = reason;
	e->ifindex = BPF_CORE_READ(skb, skb_iif);
	e->len = len;
	e->raw_netns = raw;
	e->protocol = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	e->pad = 0;
	pn_tuple_from_skb(skb, &e->t);
	e->t.state = 0;
	__builtin_memset(e->ifname, 0, sizeof(e->ifname));
	if (dev) {
		BPF_CORE_READ_STR_INTO(&e->ifname, dev, name);
		if (!e->ifindex)
			e->ifindex = BPF_CORE_READ(dev, ifindex);
	}
	e->stack_id = pn_stack_id(ctx, 3);
	bpf_ringbuf_submit(e, 0);
}

/* Linux >= 6.10: kfree_skb(skb, location, reason, rx_sk). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(pl_kfree_skb4, struct sk_buff *skb, void *location, enum skb_drop_reason reason, struct sock *rx_sk)
{
	handle_drop(ctx, 1, skb, location, (__u32)reason, rx_sk);
	return 0;
}

/* Linux 5.17 - 6.9: kfree_skb(skb, location, reason). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(pl_kfree_skb3, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	handle_drop(ctx, 1, skb, location, (__u32)reason, NULL);
	return 0;
}

/* raw_tp fallbacks (same arities) where tp_btf cannot load. */
SEC("raw_tp/kfree_skb")
int BPF_PROG(pl_kfree_skb4_raw, struct sk_buff *skb, void *location, enum skb_drop_reason reason, struct sock *rx_sk)
{
	handle_drop(ctx, 0, skb, location, (__u32)reason, rx_sk);
	return 0;
}

SEC("raw_tp/kfree_skb")
int BPF_PROG(pl_kfree_skb3_raw, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	handle_drop(ctx, 0, skb, location, (__u32)reason, NULL);
	return 0;
}

/* Location variant: kfree_skb(skb, location, ...) on every kernel since 4.17 (trailing args ignored).
 * Before 5.17 kfree_skb fires only for drops (consume_skb is a tracepoint of its own). */
SEC("raw_tp/kfree_skb")
int BPF_PROG(pl_kfree_skb2_raw, struct sk_buff *skb, void *location)
{
	handle_drop(ctx, 0, skb, location, PL_NO_REASON, NULL);
	return 0;
}
