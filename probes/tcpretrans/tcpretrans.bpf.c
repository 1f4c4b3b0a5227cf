// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * tcpretrans: TCP retransmissions, counted the way the kernel counts Tcp RetransSegs:
 *   tcp:tcp_retransmit_skb     segments of the retransmitted skb (tcp_skb_pcount: tcp_gso_segs)
 *   tcp:tcp_retransmit_synack  one segment per SYN-ACK retransmitted by a listener
 * Counters per netns are exact; events (rate limited) carry the socket tuple, state, segments, the
 * transmit error (6.10+: the tracepoint's err argument) and an optional stack.
 */
#include "podnet.bpf.h"
#include "pn_watch.bpf.h"
#include "pn_tuple.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define RT_EV_SKB 1
#define RT_EV_SYNACK 2

struct rt_key {
	__u32 netns;
};

struct rt_val {
	__u64 segments; /* retransmitted segments (Tcp RetransSegs) */
	__u64 synack;   /* of which SYN-ACKs */
	__u64 failed;   /* attempts that returned an error (err != 0), sent or not (see rt_not_sent) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rt_key);
	__type(value, struct rt_val);
} rt_counts SEC(".maps");

struct rt_event {
	struct pn_event_hdr hdr; /* @0 type = RT_EV_* */
	__s32 err;               /* @16 */
	__s32 stack_id;          /* @20 */
	__u32 segs;              /* @24 */
	__u32 raw_netns;         /* @28 */
	struct pn_tuple t;       /* @32 local = s* */
};
PN_LAYOUT(rt_event); /* TypeScript layout generated into tcpretrans.layout.gen.ts */

/*
 * Since 6.10 tcp_retransmit_skb fires at the end of __tcp_retransmit_skb for every attempt, also for the
 * early exits taken before the kernel counts Tcp RetransSegs and before anything is sent: the original
 * still in a host queue (-EBUSY, frequent on a busy CPU), no send window (-EAGAIN), already acked
 * (-EINVAL), no memory to trim/split/unclone (-ENOMEM), no route (-EHOSTUNREACH). Those are not
 * retransmits: only `failed` counts them, and they send no event. Errors of the transmit itself come
 * after the count (qdisc drop: +1, netfilter: -EPERM, ...) and are retransmits that also failed.
 */
static __always_inline int rt_not_sent(int err)
{
	return err == -16 /* EBUSY */ || err == -11 /* EAGAIN */ || err == -22 /* EINVAL */ ||
	       err == -12 /* ENOMEM */ || err == -113 /* EHOSTUNREACH */;
}

/*
 * Segments are counted as the kernel counts them: the growth of the socket's tp->total_retrans
 * (__tcp_retransmit_skb adds the same `segs` to total_retrans and to Tcp RetransSegs, just before the
 * transmit), not the firing's own tcp_gso_segs and err. Per socket, the value already counted is kept in
 * socket-local storage, created when the socket is born (rt_state: SYN_SENT for an active open, from 0;
 * SYN_RECV -> ESTABLISHED for a passive one, from its SYN-ACK retransmits, which tcp_retransmit_synack
 * counted), in a watched netns, once user space set rt_mode (a tp_btf program of tcp_retransmit_skb is
 * attached):
 *   - at each tcp_retransmit_skb firing (tp_btf): count total_retrans - counted;
 *   - when the socket goes to TCP_CLOSE (every TCP socket is destroyed in CLOSE; tcp_disconnect zeroes
 *     total_retrans only after): count what is left and drop the storage.
 * So a firing whose run this program missed, or whose err looks like an early exit but came from the
 * transmit after the count, is counted at the socket's next firing or at its close. A socket without
 * storage (older than this probe, an unwatched netns, storage failure) counts its first firing's own
 * segments and goes on from there. The raw_tp twins (no socket storage) count each firing's own
 * segments, and rt_state stays idle for them (rt_mode 0).
 */
struct rt_sock {
	__u32 total; /* tp->total_retrans already counted */
	__u32 seen;  /* 1: `total` is set */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rt_sock);
} rt_socks SEC(".maps");

/* [0] = 1 (set by user space) when rt_skb3 or rt_skb2 is attached: rt_state works only then. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rt_mode SEC(".maps");

static __always_inline __u32 rt_total(const struct sock *sk)
{
	__u32 total = 0;
	bpf_probe_read_kernel(&total, sizeof(total),
			      __builtin_preserve_access_index(&((const struct tcp_sock *)sk)->total_retrans));
	return total;
}

/* total - counted; a counter below what was counted (zeroed by tcp_disconnect) started again from 0. */
static __always_inline __u32 rt_growth(__u32 total, __u32 counted)
{
	return total >= counted ? total - counted : total;
}

/* Segments the kernel counted for this socket and this program did not yet (tp_btf only). */
static __always_inline __u32 rt_counted_since(const struct sock *sk, __u32 segs, int sent)
{
	struct rt_sock *s = bpf_sk_storage_get(&rt_socks, (struct sock *)sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	__u32 own = sent ? segs : 0;
	if (!s)
		return own;
	__u32 total = rt_total(sk);
	__u32 n = s->seen ? rt_growth(total, s->total) : own;
	s->total = total;
	s->seen = 1;
	/* an absurd step (not a kernel counter we understand): this retransmit only */
	if (n > 0xffff)
		n = own;
	return n;
}

/* `stack`: 0 for a close catch-up (the close path is not where the retransmits happened). */
static __always_inline void count(void *ctx, __u32 type, const struct sock *sk, struct pn_tuple *t, __u32 segs, int err,
				  int stack)
{
	__u32 raw = pn_sock_netns(sk);
	__u32 netns = pn_watch_key(raw);
	struct rt_key key = { .netns = netns };
	struct rt_val zero = {};
	struct rt_val *v = pn_counter_get(&rt_counts, &key, &zero);
	if (v) {
		v->segments += segs;
		if (type == RT_EV_SYNACK)
			v->synack += segs;
		if (err)
			v->failed += 1;
	}
	if (!segs)
		return;
	if (!pn_rate_allow(netns, type))
		return;
	struct rt_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return;
	pn_fill_hdr(&e->hdr, type, netns);
	e->err = err;
	e->segs = segs;
	e->raw_netns = raw;
	e->t = *t;
	e->stack_id = stack ? pn_stack_id(ctx, 3) : -1;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline __u32 rt_gso_segs(const struct sk_buff *skb)
{
	__u16 segs = 0;
	if (skb) {
		const struct tcp_skb_cb *cb = (const void *)__builtin_preserve_access_index(&skb->cb);
		bpf_probe_read_kernel(&segs, sizeof(segs), __builtin_preserve_access_index(&cb->tcp_gso_segs));
	}
	return segs ? segs : 1;
}

/* `caught_up`: count the growth of total_retrans (tp_btf); else this retransmit's own segments. */
static __always_inline void handle_skb(void *ctx, const struct sock *sk, const struct sk_buff *skb, int err,
				       int caught_up)
{
	if (!sk)
		return;
	int sent = !rt_not_sent(err);
	__u32 segs = rt_gso_segs(skb);
	if (caught_up)
		segs = rt_counted_since(sk, segs, sent);
	else if (!sent)
		segs = 0;
	struct pn_tuple t = {};
	pn_tuple_from_sock(sk, &t, 1);
	t.l4proto = 6;
	count(ctx, RT_EV_SKB, sk, &t, segs, err, 1);
}

/* Linux >= 6.10 (err added): tcp_retransmit_skb(sk, skb, err). */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(rt_skb3, const struct sock *sk, const struct sk_buff *skb, int err)
{
	handle_skb(ctx, sk, skb, err, 1);
	return 0;
}

/* Older kernels: tcp_retransmit_skb(sk, skb), fired for successful retransmits only. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(rt_skb2, const struct sock *sk, const struct sk_buff *skb)
{
	handle_skb(ctx, sk, skb, 0, 1);
	return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(rt_skb3_raw, const struct sock *sk, const struct sk_buff *skb, int err)
{
	handle_skb(ctx, sk, skb, err, 0);
	return 0;
}

/* raw_tp twin of rt_skb2 (kernels with the 2-argument prototype, e.g. 6.1, where tp_btf cannot load or
 * with `attach: raw_tp`). */
SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(rt_skb2_raw, const struct sock *sk, const struct sk_buff *skb)
{
	handle_skb(ctx, sk, skb, 0, 0);
	return 0;
}

static __always_inline void handle_synack(void *ctx, const struct sock *sk, const struct request_sock *req)
{
	if (!sk || !req)
		return;
	struct pn_tuple t = {};
	/* a request sock starts with struct sock_common: local port from skc_num (ir_num) */
	pn_tuple_from_sock((const struct sock *)req, &t, 0);
	t.l4proto = 6;
	count(ctx, RT_EV_SYNACK, sk, &t, 1, 0, 1);
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(rt_synack, const struct sock *sk, const struct request_sock *req)
{
	handle_synack(ctx, sk, req);
	return 0;
}

SEC("raw_tp/tcp_retransmit_synack")
int BPF_PROG(rt_synack_raw, const struct sock *sk, const struct request_sock *req)
{
	handle_synack(ctx, sk, req);
	return 0;
}

/*
 * inet_sock_set_state: a TCP socket born in a watched netns (SYN_SENT; SYN_RECV -> ESTABLISHED) gets its
 * storage with what it counted so far (0, or its SYN-ACK retransmits); a socket going to TCP_CLOSE
 * counts the rest of its total_retrans (one event without a stack, err 0, the socket's tuple) and drops
 * its storage.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(rt_state, const struct sock *sk, int oldstate, int newstate)
{
	if (newstate != TCP_CLOSE && newstate != TCP_SYN_SENT &&
	    !(newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV))
		return 0;
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u32 zero = 0;
	__u32 *mode = bpf_map_lookup_elem(&rt_mode, &zero);
	if (!mode || !*mode)
		return 0;
	__u32 total = rt_total(sk);
	if (newstate != TCP_CLOSE) {
		if (!pn_watch_key(pn_sock_netns(sk)))
			return 0;
		struct rt_sock *s =
			bpf_sk_storage_get(&rt_socks, (struct sock *)sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
		if (s) {
			s->total = total;
			s->seen = 1;
		}
		return 0;
	}
	struct rt_sock *s = bpf_sk_storage_get(&rt_socks, (struct sock *)sk, NULL, 0);
	if (!s)
		return 0;
	__u32 n = s->seen ? rt_growth(total, s->total) : 0;
	bpf_sk_storage_delete(&rt_socks, (struct sock *)sk);
	if (!n || n > 0xffff)
		return 0;
	struct pn_tuple t = {};
	pn_tuple_from_sock(sk, &t, 1);
	t.l4proto = 6;
	count(ctx, RT_EV_SKB, sk, &t, n, 0, 0);
	return 0;
}
