/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The 40-byte tuple every anomaly event carries (decoded by receiver/kit/ebpf/decode.ts, readTuple).
 * Addresses in network order (IPv4 in the first 4 bytes), ports in host order.
 * For socket events `s*` is the local side and `d*` the peer; for packet events `s*` is the packet's
 * source. Include after podnet.bpf.h.
 */
#ifndef PN_TUPLE_BPF_H
#define PN_TUPLE_BPF_H

struct pn_tuple {
	__u8 saddr[16]; /* @0 */
	__u8 daddr[16]; /* @16 */
	__u16 sport;    /* @32 host order */
	__u16 dport;    /* @34 host order */
	__u16 family;   /* @36 AF_INET 2 / AF_INET6 10 / 0 unknown */
	__u8 l4proto;   /* @38 IPPROTO_* */
	__u8 state;     /* @39 TCP state of the socket, 0 = none */
};
_Static_assert(sizeof(struct pn_tuple) == 40, "pn_tuple layout is decoded in TypeScript");

#define PN_AF_INET 2
#define PN_AF_INET6 10

/* Packet tuple from an skb's headers (source = the packet's source). 0 = read, -1 = no IP header. */
static __always_inline int pn_tuple_from_skb(const struct sk_buff *skb, struct pn_tuple *t)
{
	struct pn_flow f = {};
	int r = pn_skb_flow(skb, &f);
	__builtin_memcpy(t->saddr, f.saddr, 16);
	__builtin_memcpy(t->daddr, f.daddr, 16);
	t->sport = f.sport;
	t->dport = f.dport;
	t->family = f.family;
	t->l4proto = f.l4proto;
	return r;
}

/* Same, seen from the receiving socket: local = the packet's destination, peer = its source. */
static __always_inline int pn_tuple_from_skb_rx(const struct sk_buff *skb, struct pn_tuple *t)
{
	struct pn_flow f = {};
	int r = pn_skb_flow(skb, &f);
	__builtin_memcpy(t->saddr, f.daddr, 16);
	__builtin_memcpy(t->daddr, f.saddr, 16);
	t->sport = f.dport;
	t->dport = f.sport;
	t->family = f.family;
	t->l4proto = f.l4proto;
	return r;
}

/*
 * Socket tuple (local = s*), from struct sock_common only, so it is valid for full, request and
 * TIME_WAIT sockets alike. The local port comes from inet_sport when `full` (skc_num is 0 after
 * inet_put_port() on close), else from skc_num.
 */
static __always_inline void pn_tuple_from_sock(const struct sock *sk, struct pn_tuple *t, int full)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->family = family;
	t->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (full)
		t->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	else
		t->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (family == PN_AF_INET6) {
		BPF_CORE_READ_INTO(&t->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&t->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		BPF_CORE_READ_INTO((__u32 *)t->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)t->daddr, sk, __sk_common.skc_daddr);
	}
}

#endif /* PN_TUPLE_BPF_H */
