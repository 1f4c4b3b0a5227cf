// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * kernellatency: time a packet spends in the kernel's protocol stack, per netns of the socket.
 *
 *   rx = net:netif_receive_skb (the packet enters the protocol stack, __netif_receive_skb_core)
 *        → sock:sk_data_ready (it was queued on a socket). Both run in the same softirq on the same CPU,
 *        so a per-CPU slot carries the start (no per-packet map entry); net:napi_poll clears the slot
 *        at the end of each poll so a later wake-up of a socket outside that poll is never matched.
 *        Limits: with list/GRO receive one packet per batch is measured (the slot holds the last
 *        packet that entered); packets queued to the socket backlog (socket owned by the reader) are
 *        not measured; time in the driver/backlog queue before the stack is the softirq probe's delay.
 *   tx = TCP's departure timestamp (skb->tstamp, set to the transmit time with SKB_CLOCK_MONOTONIC by
 *        __tcp_transmit_skb) → net:net_dev_queue (the packet reaches the device layer): the IP output
 *        path, netfilter, routing and neighbour resolution. No state at all. TCP only (UDP has no
 *        departure timestamp unless SO_TXTIME); paced packets whose departure time lies in the future
 *        are skipped.
 * Slow events RXKERNEL_SLOW / TXKERNEL_SLOW over `cfg_slow_ns` (default 10 ms, as KubeSkoop).
 */
#include "podnet.bpf.h"
#include "pn_watch.bpf.h"
#include "pn_hist.bpf.h"
#include "pn_slot.bpf.h"
#include "pn_tuple.bpf.h"
#include "pn_chain.bpf.h"

#define KL_RX 0
#define KL_TX 1
#define KL_EV_RX 1
#define KL_EV_TX 2
#define KL_TCP 6
#define KL_UDP 17
#define KL_TCP_TIME_WAIT 6
#define KL_TCP_NEW_SYN_RECV 12
#define KL_CLOCK_MONOTONIC 1

const volatile __u64 cfg_slow_ns = 10000000ULL;
const volatile __u64 cfg_t0_ns = 1000000ULL;
const volatile __u64 cfg_t1_ns = 100000000ULL;

struct kl_key {
	__u32 netns;
	__u8 dir; /* KL_RX / KL_TX */
	__u8 l4proto;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct kl_key);
	__type(value, struct pn_hist);
} kl_hist SEC(".maps");

/* The same histograms of netns with a slot (pn_slot.bpf.h), at slot * KL_NVAR + variant: rx TCP,
 * rx UDP, tx TCP (kernellatency.ts SLOT_KEYS builds the kl_key of each); rx of other transports
 * stays in kl_hist. */
#define KL_NVAR 3
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PN_SLOTS * KL_NVAR);
	__type(key, __u32);
	__type(value, struct pn_hist);
} kl_hist_fast SEC(".maps");

struct kl_rx {
	__u64 ts;
	__u64 dev; /* struct net_device *: ifindex is read only for an event */
	__u32 len;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kl_rx);
} kl_rx_slot SEC(".maps");

struct kl_event {
	struct pn_event_hdr hdr; /* @0 */
	__u64 latency_ns;        /* @16 */
	__u32 ifindex;           /* @24 */
	__u32 len;               /* @28 skb->len */
	struct pn_tuple tuple;   /* @32 packet direction: s* = source */
	__u32 raw_netns;         /* @72 netns inode even when not watched (hdr.netns is then 0) */
	__u32 pad;               /* @76 */
};
PN_LAYOUT(kl_event); /* TypeScript layout generated into kernellatency.layout.gen.ts */

static __always_inline int kl_on_rx_enter(int btf, struct sk_buff *skb)
{
	__u32 z = 0;
	struct kl_rx *s = bpf_map_lookup_elem(&kl_rx_slot, &z);
	if (!s)
		return 0;
	struct net_device *dev = PN_RD(btf, skb, dev);
	/* A bridge port's rx_handler (br_handle_frame) consumes every IP packet: it reaches a socket only by
	 * entering the stack again (br0's netif_receive_skb for local delivery, synchronously; a forwarded
	 * packet through the egress veth's peer, in a later poll, after kl_napi_poll has cleared the slot),
	 * so a start taken here is always overwritten or cleared before sk_data_ready. Clearing instead of
	 * timing gives the same histogram (half the clock reads on a bridged pod path: one of its two entries). */
	if (dev && (PN_RD_BITFIELD(btf, dev, priv_flags) & bpf_core_enum_value(enum netdev_priv_flags, IFF_BRIDGE_PORT))) {
		s->ts = 0;
		return 0;
	}
	s->ts = bpf_ktime_get_ns();
	s->dev = (__u64)dev;
	s->len = PN_RD(btf, skb, len);
	return 0;
}

static __always_inline int kl_on_napi_poll(void)
{
	__u32 z = 0;
	struct kl_rx *s = bpf_map_lookup_elem(&kl_rx_slot, &z);
	if (s)
		s->ts = 0;
	return 0;
}

static __always_inline int kl_on_rx_socket(int btf, const struct sock *sk)
{
	__u32 z = 0;
	struct kl_rx *s = bpf_map_lookup_elem(&kl_rx_slot, &z);
	if (!s || !s->ts)
		return 0;
	__u64 start = s->ts;
	s->ts = 0;
	__u16 fam = PN_RD(btf, sk, __sk_common.skc_family);
	if (fam != 2 && fam != 10)
		return 0; /* before the clock read: only inet sockets are measured */
	__u64 lat = bpf_ktime_get_ns() - start;
	__u8 proto = PN_RD(btf, sk, sk_protocol);
	struct kl_key k = { .netns = pn_sk_netns_rd(btf, sk), .dir = KL_RX, .l4proto = proto };
	__u32 var = proto == KL_TCP ? 0 : proto == KL_UDP ? 1 : KL_NVAR; /* KL_NVAR: no fast variant */
	pn_hist_add_slotted(&kl_hist_fast, var, KL_NVAR, &kl_hist, &k, lat, cfg_t0_ns, cfg_t1_ns);
	__u32 netns = k.netns;
	if (lat <= cfg_slow_ns || !pn_rate_allow(netns, KL_EV_RX))
		return 0;
	struct kl_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	pn_fill_hdr(&e->hdr, KL_EV_RX, netns);
	e->latency_ns = lat;
	e->raw_netns = pn_sock_netns(sk);
	struct net_device *rxdev = (struct net_device *)s->dev;
	e->ifindex = BPF_CORE_READ(rxdev, ifindex);
	e->len = s->len;
	/* packet direction: peer → local */
	struct pn_tuple t = {};
	pn_tuple_from_sock(sk, &t, 1);
	__builtin_memcpy(e->tuple.saddr, t.daddr, 16);
	__builtin_memcpy(e->tuple.daddr, t.saddr, 16);
	e->tuple.sport = t.dport;
	e->tuple.dport = t.sport;
	e->tuple.family = t.family;
	e->tuple.state = t.state;
	e->tuple.l4proto = proto;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int kl_on_tx_device(int btf, struct sk_buff *skb)
{
	struct sock *sk = PN_RD(btf, skb, sk);
	if (!sk)
		return 0;
	__u64 ts = PN_RD(btf, skb, tstamp);
	if (!ts)
		return 0;
	if (bpf_core_field_exists(skb->tstamp_type)) {
		if (PN_RD_BITFIELD(btf, skb, tstamp_type) != KL_CLOCK_MONOTONIC)
			return 0;
	}
	__u8 state = PN_RD(btf, sk, __sk_common.skc_state);
	if (state == KL_TCP_TIME_WAIT || state == KL_TCP_NEW_SYN_RECV)
		return 0;
	if (PN_RD(btf, sk, sk_protocol) != KL_TCP)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (ts > now)
		return 0; /* departure time in the future (pacing) */
	__u64 lat = now - ts;
	struct kl_key k = { .netns = pn_sk_netns_rd(btf, sk), .dir = KL_TX, .l4proto = KL_TCP };
	pn_hist_add_slotted(&kl_hist_fast, 2, KL_NVAR, &kl_hist, &k, lat, cfg_t0_ns, cfg_t1_ns);
	__u32 netns = k.netns;
	if (lat <= cfg_slow_ns || !pn_rate_allow(netns, KL_EV_TX))
		return 0;
	struct kl_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	pn_fill_hdr(&e->hdr, KL_EV_TX, netns);
	e->latency_ns = lat;
	e->raw_netns = pn_sock_netns(sk);
	e->ifindex = BPF_CORE_READ(skb, dev, ifindex);
	e->len = BPF_CORE_READ(skb, len);
	pn_tuple_from_skb(skb, &e->tuple);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* tp_btf programs (direct BTF loads) and raw_tp twins (used where tp_btf cannot load or attach) */
SEC("tp_btf/netif_receive_skb")
int BPF_PROG(kl_rx_enter, struct sk_buff *skb)
{
	return kl_on_rx_enter(1, skb);
}

SEC("tp_btf/napi_poll")
int BPF_PROG(kl_napi_poll, struct napi_struct *napi, int work, int budget)
{
	return kl_on_napi_poll();
}

/* sk_data_ready and net_dev_queue are shared with socketlatency (and dns): the tp_btf programs are chained
 * (pn_chain.bpf.h); the raw_tp twins attach on their own (a PROG_ARRAY holds one program type). */
PN_CHAIN(kl_next_rx_socket);
PN_CHAIN(kl_next_tx_device);

SEC("tp_btf/sk_data_ready")
int BPF_PROG(kl_rx_socket, const struct sock *sk)
{
	kl_on_rx_socket(1, sk);
	PN_CHAIN_NEXT(kl_next_rx_socket);
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(kl_tx_device, struct sk_buff *skb)
{
	kl_on_tx_device(1, skb);
	PN_CHAIN_NEXT(kl_next_tx_device);
}

SEC("raw_tp/netif_receive_skb")
int BPF_PROG(kl_rx_enter_raw, struct sk_buff *skb)
{
	return kl_on_rx_enter(0, skb);
}

SEC("raw_tp/napi_poll")
int BPF_PROG(kl_napi_poll_raw, struct napi_struct *napi, int work, int budget)
{
	return kl_on_napi_poll();
}

SEC("raw_tp/sk_data_ready")
int BPF_PROG(kl_rx_socket_raw, const struct sock *sk)
{
	return kl_on_rx_socket(0, sk);
}

SEC("raw_tp/net_dev_queue")
int BPF_PROG(kl_tx_device_raw, struct sk_buff *skb)
{
	return kl_on_tx_device(0, skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
