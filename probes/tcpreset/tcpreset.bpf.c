// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tcpreset: TCP resets sent and received, classified as KubeSkoop does:
 *   NOSOCK   tcp:tcp_send_reset with sk == NULL (a segment for which no socket exists)
 *   PROCESS  tcp:tcp_send_reset with sk and skb (a socket answered a segment with a reset)
 *   ACTIVE   tcp:tcp_send_reset with skb == NULL (tcp_send_active_reset: close with unread data,
 *            SO_LINGER 0, abort)
 *   RECEIVE  tcp:tcp_receive_reset (a reset arrived on a socket)
 * Counters per (netns, kind) are exact; events carry the tuple (local/peer, ports in host order), the
 * socket state and the kernel's reset reason (enum sk_rst_reason, 6.10+).
 * Prototype variants by BTF arity: tcp_send_reset has 3 args from 6.10 (reason), 2 before.
 */
#include "podnet.bpf.h"
#include "pn_watch.bpf.h"
#include "pn_tuple.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define RST_NOSOCK 1
#define RST_PROCESS 2
#define RST_ACTIVE 3
#define RST_RECEIVE 4
#define RST_NO_REASON 0xffffffff

struct rst_key {
	__u32 netns;
	__u32 kind;
};

struct rst_val {
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rst_key);
	__type(value, struct rst_val);
} rst_counts SEC(".maps");

struct rst_event {
	struct pn_event_hdr hdr; /* @0 type = kind */
	__u32 reason;            /* @16 enum sk_rst_reason, RST_NO_REASON when the kernel gives none */
	__s32 stack_id;          /* @20 */
	__u32 raw_netns;         /* @24 */
	__u32 pad;               /* @28 */
	struct pn_tuple t;       /* @32 local = s*, peer = d* */
};
PN_LAYOUT(rst_event); /* TypeScript layout generated into tcpreset.layout.gen.ts */

static __always_inline void emit(void *ctx, __u32 kind, __u32 raw, struct pn_tuple *t, __u32 reason)
{
	__u32 netns = pn_watch_key(raw);
	struct rst_key key = { .netns = netns, .kind = kind };
	struct rst_val zero = {};
	struct rst_val *v = pn_counter_get(&rst_counts, &key, &zero);
	if (v)
		v->count += 1;
	if (!pn_rate_allow(netns, kind))
		return;
	struct rst_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return;
	pn_fill_hdr(&e->hdr, kind, netns);
	e->reason = reason;
	e->raw_netns = raw;
	e->pad = 0;
	e->t = *t;
	e->stack_id = pn_stack_id(ctx, 3);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void handle_send(void *ctx, const struct sock *sk, const struct sk_buff *skb, __u32 reason)
{
	struct pn_tuple t = {};
	__u32 kind;
	__u32 raw;
	if (!skb) {
		/* tcp_send_active_reset: the local side aborts a full socket */
		if (!sk)
			return;
		kind = RST_ACTIVE;
		pn_tuple_from_sock(sk, &t, 1);
		raw = pn_sock_netns(sk);
	} else {
		/* a reset answering the segment `skb` (received): local = its destination */
		pn_tuple_from_skb_rx(skb, &t);
		if (sk) {
			kind = RST_PROCESS;
			/* sk may be a full, request or TIME_WAIT socket: sock_common fields only */
			t.state = BPF_CORE_READ(sk, __sk_common.skc_state);
			raw = pn_sock_netns(sk);
		} else {
			kind = RST_NOSOCK;
			raw = pn_skb_netns(skb, NULL);
		}
	}
	t.l4proto = 6;
	emit(ctx, kind, raw, &t, reason);
}

/* Linux >= 6.10: tcp_send_reset(sk, skb, reason). */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(rst_send3, const struct sock *sk, const struct sk_buff *skb, enum sk_rst_reason reason)
{
	handle_send(ctx, sk, skb, (__u32)reason);
	return 0;
}

/* Linux < 6.10: tcp_send_reset(sk, skb); sk is never NULL there (only tcp_v4_send_reset with a socket
 * fired it), so NOSOCK is not visible on those kernels. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(rst_send2, const struct sock *sk, const struct sk_buff *skb)
{
	handle_send(ctx, sk, skb, RST_NO_REASON);
	return 0;
}

SEC("raw_tp/tcp_send_reset")
int BPF_PROG(rst_send3_raw, const struct sock *sk, const struct sk_buff *skb, enum sk_rst_reason reason)
{
	handle_send(ctx, sk, skb, (__u32)reason);
	return 0;
}

/* raw_tp twin of rst_send2 (kernels < 6.10 where tp_btf cannot load, or `attach: raw_tp`). */
SEC("raw_tp/tcp_send_reset")
int BPF_PROG(rst_send2_raw, const struct sock *sk, const struct sk_buff *skb)
{
	handle_send(ctx, sk, skb, RST_NO_REASON);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(rst_receive, struct sock *sk)
{
	if (!sk)
		return 0;
	struct pn_tuple t = {};
	pn_tuple_from_sock(sk, &t, 1);
	t.l4proto = 6;
	emit(ctx, RST_RECEIVE, pn_sock_netns(sk), &t, RST_NO_REASON);
	return 0;
}

SEC("raw_tp/tcp_receive_reset")
int BPF_PROG(rst_receive_raw, struct sock *sk)
{
	if (!sk)
		return 0;
	struct pn_tuple t = {};
	pn_tuple_from_sock(sk, &t, 1);
	t.l4proto = 6;
	emit(ctx, RST_RECEIVE, pn_sock_netns(sk), &t, RST_NO_REASON);
	return 0;
}
