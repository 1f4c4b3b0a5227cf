// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * sockoverflow: sockets that could not take more data.
 *   udp:udp_fail_queue_rcv_skb  a datagram not queued on a UDP socket: rc -ENOMEM = receive buffer full
 *                               (Udp RcvbufErrors), other rc = protocol memory (Udp MemErrors)
 *   sock:sock_rcvqueue_full     a packet refused by sock_queue_rcv_skb (raw, ICMP, ... sockets):
 *                               sk_rmem_alloc >= sk_rcvbuf
 *   sock:sock_exceed_buf_limit  a socket memory charge refused by the protocol's memory limits
 *                               (tcp_mem / udp_mem), send or receive side
 * Counters per (netns, kind, L4 protocol) are exact; events carry the tuple, buffer size and memory in use.
 */
#include "podnet.bpf.h"
#include "pn_watch.bpf.h"
#include "pn_tuple.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SO_UDP_RCVBUF 1
#define SO_UDP_MEM 2
#define SO_RCVQUEUE_FULL 3
#define SO_MEM_LIMIT_SEND 4
#define SO_MEM_LIMIT_RECV 5

#define PN_ENOMEM 12

struct so_key {
	__u32 netns;
	__u16 kind;
	__u8 family; /* 4 / 6 / 0 */
	__u8 l4proto;
};

struct so_val {
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct so_key);
	__type(value, struct so_val);
} so_counts SEC(".maps");

struct so_event {
	struct pn_event_hdr hdr; /* @0 type = kind */
	__s64 allocated;         /* @16 protocol memory allocated, pages (mem limit), else 0 */
	__s64 mem_limit;         /* @24 protocol memory hard limit sysctl_mem[2], pages (mem limit), else 0 */
	__s32 rc;                /* @32 udp: return code of the enqueue */
	__s32 stack_id;          /* @36 */
	__u32 rcvbuf;            /* @40 sk_rcvbuf */
	__u32 rmem_alloc;        /* @44 sk_rmem_alloc */
	__u32 sndbuf;            /* @48 sk_sndbuf */
	__u32 wmem_queued;       /* @52 sk_wmem_queued */
	__u32 skb_len;           /* @56 */
	__u32 raw_netns;         /* @60 */
	struct pn_tuple t;       /* @64 local = s* */
};
PN_LAYOUT(so_event); /* TypeScript layout generated into sockoverflow.layout.gen.ts */

/*
 * `btf` is a literal per program (tp_btf 1: direct BTF loads; raw_tp 0: CO-RE probe reads). The counter
 * needs only the netns, protocol and family (plain loads); the tuple and the buffer figures are read
 * only for an event that passed the rate limit.
 */
static __always_inline void handle(void *ctx, int btf, __u32 kind, struct sock *sk, struct sk_buff *skb, int rc,
				   struct proto *prot, long allocated)
{
	if (!sk)
		return;
	__u32 raw = pn_sk_netns_rd(btf, sk);
	__u16 family = PN_RD(btf, sk, __sk_common.skc_family);
	__u8 l4proto = PN_RD(btf, sk, sk_protocol);
	struct so_key key = {
		.netns = raw,
		.kind = (__u16)kind,
		.family = family == PN_AF_INET ? 4 : family == PN_AF_INET6 ? 6 : 0,
		.l4proto = l4proto,
	};
	struct so_val zero = {};
	struct so_val *v = pn_counter_get_watched(&so_counts, &key, &zero);
	if (v)
		v->count += 1;
	__u32 netns = key.netns;

	if (!pn_rate_allow(netns, kind))
		return;
	struct so_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return;
	struct pn_tuple t = {};
	int from_skb = skb && pn_tuple_from_skb_rx(skb, &t) == 0;
	if (!from_skb)
		pn_tuple_from_sock(sk, &t, 1);
	t.l4proto = l4proto;
	t.state = 0;
	if (BPF_CORE_READ(sk, sk_type) == 1 /* SOCK_STREAM */)
		t.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	pn_fill_hdr(&e->hdr, kind, netns);
	e->allocated = allocated;
	e->mem_limit = 0;
	if (prot) {
		long *mem = BPF_CORE_READ(prot, sysctl_mem);
		long lim = 0;
		if (mem)
			bpf_probe_read_kernel(&lim, sizeof(lim), &mem[2]);
		e->mem_limit = lim;
	}
	e->rc = rc;
	e->rcvbuf = BPF_CORE_READ(sk, sk_rcvbuf);
	e->rmem_alloc = BPF_CORE_READ(sk, sk_backlog.rmem_alloc.counter);
	e->sndbuf = BPF_CORE_READ(sk, sk_sndbuf);
	e->wmem_queued = BPF_CORE_READ(sk, sk_wmem_queued);
	e->skb_len = skb ? BPF_CORE_READ(skb, len) : 0;
	e->raw_netns = raw;
	e->t = t;
	e->stack_id = pn_stack_id(ctx, 3);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline __u32 udp_kind(int rc)
{
	return rc == -PN_ENOMEM ? SO_UDP_RCVBUF : SO_UDP_MEM;
}

/* Linux >= 6.?: udp_fail_queue_rcv_skb(rc, sk, skb). */
SEC("tp_btf/udp_fail_queue_rcv_skb")
int BPF_PROG(so_udp3, int rc, struct sock *sk, struct sk_buff *skb)
{
	handle(ctx, 1, udp_kind(rc), sk, skb, rc, NULL, 0);
	return 0;
}

/* Older kernels: udp_fail_queue_rcv_skb(rc, sk). */
SEC("tp_btf/udp_fail_queue_rcv_skb")
int BPF_PROG(so_udp2, int rc, struct sock *sk)
{
	handle(ctx, 1, udp_kind(rc), sk, NULL, rc, NULL, 0);
	return 0;
}

SEC("tp_btf/sock_rcvqueue_full")
int BPF_PROG(so_rcvq, struct sock *sk, struct sk_buff *skb)
{
	handle(ctx, 1, SO_RCVQUEUE_FULL, sk, skb, 0, NULL, 0);
	return 0;
}

SEC("tp_btf/sock_exceed_buf_limit")
int BPF_PROG(so_memlimit, struct sock *sk, struct proto *prot, long allocated, int kind)
{
	handle(ctx, 1, kind == 1 /* SK_MEM_RECV */ ? SO_MEM_LIMIT_RECV : SO_MEM_LIMIT_SEND, sk, NULL, 0, prot,
	       allocated);
	return 0;
}

/* raw_tp fallbacks */
SEC("raw_tp/udp_fail_queue_rcv_skb")
int BPF_PROG(so_udp3_raw, int rc, struct sock *sk, struct sk_buff *skb)
{
	handle(ctx, 0, udp_kind(rc), sk, skb, rc, NULL, 0);
	return 0;
}

/* raw_tp twin of so_udp2 (2-argument kernels, e.g. 6.1). */
SEC("raw_tp/udp_fail_queue_rcv_skb")
int BPF_PROG(so_udp2_raw, int rc, struct sock *sk)
{
	handle(ctx, 0, udp_kind(rc), sk, NULL, rc, NULL, 0);
	return 0;
}

SEC("raw_tp/sock_rcvqueue_full")
int BPF_PROG(so_rcvq_raw, struct sock *sk, struct sk_buff *skb)
{
	handle(ctx, 0, SO_RCVQUEUE_FULL, sk, skb, 0, NULL, 0);
	return 0;
}

SEC("raw_tp/sock_exceed_buf_limit")
int BPF_PROG(so_memlimit_raw, struct sock *sk, struct proto *prot, long allocated, int kind)
{
	handle(ctx, 0, kind == 1 ? SO_MEM_LIMIT_RECV : SO_MEM_LIMIT_SEND, sk, NULL, 0, prot, allocated);
	return 0;
}
