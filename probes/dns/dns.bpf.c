// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * dns: every DNS query a netns sends and the response it gets, matched in the kernel by
 * (netns, transport, client, server, DNS id) in an LRU hash (`dns_pending`).
 *  - hooks: tp_btf/net_dev_queue (a packet leaves a device: a query when it was sent by a local socket
 *    to a DNS port) and tp_btf/netif_receive_skb (a packet enters a device's stack: a response when it
 *    comes from a DNS port) see every netns with no per-pod attach, at the cost of an early exit on every
 *    other packet; `dns_tc_ingress` / `dns_tc_egress` are the same body for TCX on a pod's host-side veth
 *    (netns from `dns_tc_ifindex`, looked up once the port says DNS), which also reads TCP payload in
 *    page frags. With both loaded (hook
 *    `auto`), the tracepoints skip the netns listed in `dns_tc_netns`. Hook `tc` (the default) runs no
 *    tracepoint: the host netns is seen by `dns_host_ingress` / `dns_host_egress` on its own devices
 *    (not on pods' veths or bridge ports), so a packet between two pods costs the two veth runs only,
 *    each leaving after a direct read of the headers (dns_tc_maybe). See docs/probes-dns.md.
 *  - counters: `dns_hists` per (netns, qtype, rcode, transport): log2 latency histogram + truncated
 *    responses; `dns_counts` per (netns, qtype, transport): queries sent, timeouts decided here.
 *  - timeouts: a query with no response within `dns_cfg_timeout_ns`. Decided here when the response
 *    finally comes (DNS_F_LATE) or the same (tuple, id) is sent again after the window (DNS_F_REQUERY,
 *    what a resolver's retry on the same socket looks like); otherwise by the receiver's sweep of
 *    `dns_pending` (dns.ts). Whoever deletes the pending entry decides, so nothing counts twice.
 *  - events (rate limited per (netns, type), pn_stats counts the rest): slow (latency over
 *    `dns_cfg_slow_ns`), failed (SERVFAIL / REFUSED) and timed out, with the question name.
 * UDP: one message per datagram. TCP: the first message of a segment (2-byte length prefix) only.
 * IPv6: no extension-header walk.
 */
#include "podnet.bpf.h"
#include "pn_watch.bpf.h"
#include "pn_hist.bpf.h"
#include "dns.h"
#include "pn_chain.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

PN_LAYOUT(dns_event); /* TypeScript layout generated into dns.layout.gen.ts */

const volatile __u16 dns_cfg_ports[DNS_MAX_PORTS] = { 53, 0, 0, 0 };
const volatile __u64 dns_cfg_timeout_ns = 5000000000ULL;
const volatile __u64 dns_cfg_slow_ns = 100000000ULL;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dns_key);
	__type(value, struct dns_pending);
} dns_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dns_stat_key);
	__type(value, struct dns_hist);
} dns_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dns_stat_key);
	__type(value, struct dns_count);
} dns_counts SEC(".maps");

/* TC variant only: host-side veth ifindex → the pod's netns inode (filled by the receiver). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} dns_tc_ifindex SEC(".maps");

/* hook `auto`: netns whose pod veth carries the TC programs; the tracepoints leave them alone. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} dns_tc_netns SEC(".maps");

/* Scratch for building a pending entry (too large for the stack next to the rest). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_pending);
} dns_scratch SEC(".maps");

static struct dns_hist dns_hist_zero;

/* Question types kept as metric attribute values; the rest count as 0 ("other"): the wire value is
 * chosen by the sender, the series count must not be. */
static __always_inline __u16 dns_qtype_clamp(__u16 t)
{
	switch (t) {
	case 1: case 2: case 5: case 6: case 12: case 15: case 16: case 28: case 33: case 35:
	case 43: case 46: case 48: case 64: case 65: case 255: case 257:
		return t;
	default:
		return 0;
	}
}

static __always_inline int dns_port(__u16 p)
{
	if (!p)
		return 0;
	for (int i = 0; i < DNS_MAX_PORTS; i++)
		if (dns_cfg_ports[i] == p)
			return 1;
	return 0;
}

/* Where a packet's bytes are: kernel memory (tracepoints) or the TC context (bpf_skb_load_bytes). */
struct dns_pkt {
	struct __sk_buff *tc_ctx;  /* TC: the context; NULL for tracepoints */
	struct net_device *dev;    /* tracepoints: the device (its netns is read only for DNS packets) */
	unsigned char *l3;         /* tracepoints: the network header */
	__u32 lin;                 /* tracepoints: bytes from l3 in the linear area (the rest is in page frags) */
	__u32 l3off;               /* TC: offset of the network header from skb->data */
};

/* 0 when `len` bytes at `off` from the network header were read. A tracepoint reads the linear area
 * only: payload in page frags (TCP, zero-copy) is out of reach there (TC reads it with bpf_skb_load_bytes). */
static __always_inline int dns_rd(const struct dns_pkt *p, __u32 off, void *dst, __u32 len)
{
	if (p->tc_ctx)
		return bpf_skb_load_bytes(p->tc_ctx, p->l3off + off, dst, len);
	if (off + len > p->lin)
		return -1;
	return bpf_probe_read_kernel(dst, len, p->l3 + off);
}

struct dns_hdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

static __always_inline void dns_count_add(struct dns_stat_key *sk, int timeouts, int queries)
{
	struct dns_count zero = {};
	struct dns_count *c = pn_counter_get(&dns_counts, sk, &zero);
	if (!c)
		return;
	c->queries += queries;
	c->timeouts += timeouts;
}

static __always_inline void dns_event_fill(struct dns_event *e, __u32 type, const struct dns_key *k,
					   const struct dns_pending *pd, __u64 latency, __u8 rcode, __u8 flags)
{
	pn_fill_hdr(&e->hdr, type, pd->netns);
	e->latency_ns = latency;
	e->query_ts_ns = pd->ts_ns;
	__builtin_memcpy(&e->k, k, sizeof(*k));
	e->qtype = pd->qtype;
	e->rcode = rcode;
	e->flags = flags;
	e->name_len = pd->name_len;
	e->sends = pd->sends;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	__builtin_memcpy(e->name, pd->name, DNS_NAME_MAX);
}

/* A timeout decided here for the pending entry `pd` (already removed from the map by the caller). */
static __always_inline void dns_timeout(const struct dns_key *k, const struct dns_pending *pd, __u8 flags)
{
	struct dns_stat_key sk = { .netns = pd->netns, .qtype = pd->qtype, .l4proto = k->l4proto };
	dns_count_add(&sk, 1, 0);
	if (!pn_rate_allow(pd->netns, DNS_EV_TIMEOUT))
		return;
	struct dns_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return;
	dns_event_fill(e, DNS_EV_TIMEOUT, k, pd, 0, 0, flags);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void dns_query(const struct dns_pkt *p, struct dns_key *k, __u32 msg, __u32 msglen)
{
	__u32 zero = 0;
	struct dns_pending *n = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!n)
		return;
	__u64 now = bpf_ktime_get_ns();
	__u32 netns = pn_watch_key(k->netns);
	struct dns_pending *old = bpf_map_lookup_elem(&dns_pending, k);
	if (old) {
		if (now - old->ts_ns < dns_cfg_timeout_ns) {
			/* a retransmission inside the window: the first transmission keeps the clock */
			if (old->sends < 255)
				old->sends += 1;
			struct dns_stat_key sk = { .netns = old->netns, .qtype = old->qtype, .l4proto = k->l4proto };
			dns_count_add(&sk, 0, 1);
			return;
		}
		/* sent again after the window: the earlier one timed out */
		__builtin_memcpy(n, old, sizeof(*n));
		if (!bpf_map_delete_elem(&dns_pending, k))
			dns_timeout(k, n, DNS_F_REQUERY);
	}
	n->ts_ns = now;
	n->netns = netns;
	n->sends = 1;
	__u32 nl = msglen - 12;
	if (nl > DNS_NAME_MAX)
		nl = DNS_NAME_MAX;
	n->name_len = nl;
	__builtin_memset(n->name, 0, DNS_NAME_MAX);
	/* nl in [1, DNS_NAME_MAX] written as ((nl - 1) & 127) + 1: bpf_skb_load_bytes needs a length the
	 * verifier can bound away from 0, and 6.1's does not learn `!= 0` from a branch (test/kernel/vm.test.ts) */
	if (dns_rd(p, msg + 12, n->name, DNS_NAME_MAX) && nl)
		dns_rd(p, msg + 12, n->name, ((nl - 1) & (DNS_NAME_MAX - 1)) + 1);
	/* the end of the name (labels; no compression in a question), then the 2-byte type */
	__u32 off = 0;
	int found = 0;
	for (int i = 0; i < 128; i++) {
		__u8 l;
		if (off < DNS_NAME_MAX)
			l = n->name[off & (DNS_NAME_MAX - 1)];
		else if (dns_rd(p, msg + 12 + off, &l, 1))
			break;
		if (l == 0) {
			found = 1;
			break;
		}
		if (l & 0xc0)
			break;
		off += l + 1;
		if (off > 255)
			break;
	}
	__u16 qtype = 0;
	if (found) {
		__be16 t;
		if (!dns_rd(p, msg + 12 + off + 1, &t, 2))
			qtype = dns_qtype_clamp(bpf_ntohs(t));
	}
	n->qtype = qtype;
	bpf_map_update_elem(&dns_pending, k, n, BPF_ANY);
	struct dns_stat_key sk = { .netns = netns, .qtype = qtype, .l4proto = k->l4proto };
	dns_count_add(&sk, 0, 1);
}

static __always_inline void dns_response(struct dns_key *k, __u16 flags)
{
	struct dns_pending *pd = bpf_map_lookup_elem(&dns_pending, k);
	if (!pd)
		return; /* not a query we saw (forwarded traffic, or already timed out by the sweep) */
	__u64 now = bpf_ktime_get_ns();
	__u32 zero = 0;
	struct dns_pending *c = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!c)
		return;
	__builtin_memcpy(c, pd, sizeof(*c));
	/* The entry is claimed by whoever deletes it (this program on another CPU, or the sweep); the event
	 * is built from the copy after the claim. (Reserving before the claim and submitting or discarding
	 * after it made the 6.1 verifier walk a path where the reserved record was NULL-checked again and
	 * leaked: 6.1 does not know a ring-buffer record is non-NULL once checked, test/kernel/vm.test.ts.) */
	if (bpf_map_delete_elem(&dns_pending, k))
		return;
	__u64 lat = now - c->ts_ns;
	__u32 netns = c->netns;
	__u16 qtype = c->qtype;
	__u8 rcode = flags & 0xf;
	__u8 ef = (flags & 0x0200) ? DNS_F_TRUNCATED : 0;
	int late = lat >= dns_cfg_timeout_ns;
	__u32 type = 0;
	if (late)
		type = DNS_EV_TIMEOUT;
	else if (rcode == 2 || rcode == 5)
		type = DNS_EV_FAILED;
	else if (lat > dns_cfg_slow_ns)
		type = DNS_EV_SLOW;
	if (type && pn_rate_allow(netns, type)) {
		struct dns_event *e = pn_reserve(sizeof(*e));
		if (e) {
			dns_event_fill(e, type, k, c, lat, rcode, ef | (late ? DNS_F_LATE : 0));
			bpf_ringbuf_submit(e, 0);
		}
	}
	struct dns_stat_key sk = { .netns = netns, .qtype = qtype, .rcode = rcode, .l4proto = k->l4proto };
	struct dns_hist *h = pn_counter_get(&dns_hists, &sk, &dns_hist_zero);
	if (h) {
		pn_hist_record(&h->h, lat, dns_cfg_slow_ns, dns_cfg_timeout_ns);
		if (ef)
			h->truncated += 1;
	}
	if (late) {
		struct dns_stat_key ck = { .netns = netns, .qtype = qtype, .l4proto = k->l4proto };
		dns_count_add(&ck, 1, 0);
	}
}

/*
 * One packet. `tx` = leaving the netns (a query when the destination port is a DNS port), else
 * entering it (a response when the source port is). `proto` is skb->protocol (host order). The netns
 * (map lookup for TC, device for tracepoints) is read only once the port says DNS: every other packet
 * leaves after the headers.
 */
static __always_inline void dns_packet(const struct dns_pkt *p, __u16 proto, int tx)
{
	struct dns_key k = {};
	__u32 l4off, l3len;
	if (proto == PN_ETH_P_IP) {
		struct iphdr ip;
		if (dns_rd(p, 0, &ip, sizeof(ip)))
			return;
		if (ip.protocol != IPPROTO_UDP && ip.protocol != IPPROTO_TCP)
			return;
		if (ip.frag_off & bpf_htons(0x3fff)) /* fragments: no L4 header to trust */
			return;
		k.family = 2;
		k.l4proto = ip.protocol;
		__builtin_memcpy(tx ? k.client : k.server, &ip.saddr, 4);
		__builtin_memcpy(tx ? k.server : k.client, &ip.daddr, 4);
		l4off = (ip.ihl & 0xf) * 4;
		l3len = bpf_ntohs(ip.tot_len);
	} else if (proto == PN_ETH_P_IPV6) {
		struct ipv6hdr ip6;
		if (dns_rd(p, 0, &ip6, sizeof(ip6)))
			return;
		if (ip6.nexthdr != IPPROTO_UDP && ip6.nexthdr != IPPROTO_TCP)
			return;
		k.family = 10;
		k.l4proto = ip6.nexthdr;
		__builtin_memcpy(tx ? k.client : k.server, &ip6.saddr, 16);
		__builtin_memcpy(tx ? k.server : k.client, &ip6.daddr, 16);
		l4off = sizeof(ip6);
		l3len = sizeof(ip6) + bpf_ntohs(ip6.payload_len);
	} else {
		return;
	}
	__be16 ports[2];
	if (dns_rd(p, l4off, ports, sizeof(ports)))
		return;
	__u16 src = bpf_ntohs(ports[0]), dst = bpf_ntohs(ports[1]);
	if (!dns_port(tx ? dst : src))
		return;
	__u32 netns;
	if (p->tc_ctx) {
		/* TC: the host-side veth's pod (filled by the receiver, probes/dns/dns.ts) */
		__u32 ifindex = p->tc_ctx->ifindex;
		__u32 *ns = bpf_map_lookup_elem(&dns_tc_ifindex, &ifindex);
		if (!ns)
			return;
		netns = *ns;
	} else {
		netns = pn_dev_netns_btf(p->dev);
		/* a pod whose veth has the TC programs is theirs: they also read TCP payload */
		if (bpf_map_lookup_elem(&dns_tc_netns, &netns))
			return;
	}
	k.cport = tx ? src : dst;
	k.sport = tx ? dst : src;
	__u32 msg;
	if (k.l4proto == IPPROTO_UDP) {
		msg = l4off + 8;
	} else {
		__u8 doff;
		if (dns_rd(p, l4off + 12, &doff, 1))
			return;
		msg = l4off + (doff >> 4) * 4;
		/* A message starts with its 2-byte length. Some servers write the length and the message in
		 * two segments: a segment whose first two bytes are not its own length is taken as a message
		 * without prefix (the (tuple, id) match keeps a wrong guess from counting). */
		__be16 mlen;
		if (l3len < msg + 12 || dns_rd(p, msg, &mlen, 2))
			return;
		if (bpf_ntohs(mlen) == l3len - msg - 2)
			msg += 2;
	}
	if (l3len < msg + 12)
		return; /* no DNS header here (a TCP ACK, a cut message) */
	struct dns_hdr h;
	if (dns_rd(p, msg, &h, sizeof(h)))
		return;
	__u16 flags = bpf_ntohs(h.flags);
	k.netns = netns;
	k.id = bpf_ntohs(h.id);
	if (tx) {
		if ((flags & 0x8000) || ((flags >> 11) & 0xf) != 0 || !h.qdcount)
			return; /* a response, or not a standard query */
		dns_query(p, &k, msg, l3len - msg);
	} else {
		if (!(flags & 0x8000))
			return;
		dns_response(&k, flags);
	}
}

/* net_dev_queue is shared with socketlatency and kernellatency: chained (pn_chain.bpf.h) */
PN_CHAIN(dns_next_dev_queue);

/* A packet leaves a device (after qdisc selection, before the driver): skb->data is the MAC header. */
static __always_inline void dns_on_dev_queue(struct sk_buff *skb)
{
	/* only what a local socket sent: forwarded packets (a pod's query crossing the host) are the pod's */
	if (!skb->sk)
		return;
	unsigned char *l3 = skb->head + skb->network_header;
	unsigned char *end = skb->data + (skb->len - skb->data_len);
	if (end <= l3)
		return;
	struct dns_pkt p = { .dev = skb->dev, .l3 = l3, .lin = end - l3 };
	dns_packet(&p, bpf_ntohs(skb->protocol), 1);
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(dns_dev_queue, struct sk_buff *skb)
{
	dns_on_dev_queue(skb);
	PN_CHAIN_NEXT(dns_next_dev_queue);
}

/* A packet enters a device's stack (after GRO, before taps and netfilter): skb->data is the L3 header. */
SEC("tp_btf/netif_receive_skb")
int BPF_PROG(dns_receive, struct sk_buff *skb)
{
	struct dns_pkt p = { .dev = skb->dev, .l3 = skb->data, .lin = skb->len - skb->data_len };
	dns_packet(&p, bpf_ntohs(skb->protocol), 0);
	return 0;
}

/*
 * TC: can this packet be DNS? Direct packet access to the linear headers, no helper call and no map:
 * every other packet of the pod (the data path) leaves here after a few loads. 1 also when the headers
 * are not in the linear area (the helper-based body decides), 0 = certainly not DNS.
 */
static __always_inline int dns_tc_maybe(struct __sk_buff *skb, int tx)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 l4;
	__u8 proto;
	if (skb->protocol == bpf_htons(PN_ETH_P_IP)) {
		struct iphdr *ip = data + 14;
		if ((void *)(ip + 1) > end)
			return 1;
		proto = ip->protocol;
		l4 = 14 + (ip->ihl & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(PN_ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + 14;
		if ((void *)(ip6 + 1) > end)
			return 1;
		proto = ip6->nexthdr;
		l4 = 14 + sizeof(*ip6);
	} else {
		return 0;
	}
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return 0;
	__be16 *ports = data + l4;
	if ((void *)(ports + 2) > end)
		return 1;
	return dns_port(bpf_ntohs(ports[tx ? 1 : 0]));
}

/*
 * TC variant. On a pod's host-side veth: ingress = what the pod sends, egress = what it receives. On a
 * device of the host netns itself (hook `tc`, probes/dns/hostdev.ts): egress = what the host sends, only
 * from a local socket (a pod's query forwarded out of the node is the pod's, seen on its veth), ingress =
 * what it receives (a response forwarded to a pod finds no pending query under the host's netns).
 */
static __always_inline int dns_tc(struct __sk_buff *skb, int tx, int host)
{
	if (!dns_tc_maybe(skb, tx))
		return -1;
	if (host && tx && !skb->sk)
		return -1;
	struct dns_pkt p = { .tc_ctx = skb, .l3off = 14 };
	dns_packet(&p, bpf_ntohs(skb->protocol), tx);
	return -1; /* TC_ACT_UNSPEC / TCX_NEXT: never changes what happens to the packet */
}

SEC("tc")
int dns_tc_ingress(struct __sk_buff *skb)
{
	return dns_tc(skb, 1, 0);
}

SEC("tc")
int dns_tc_egress(struct __sk_buff *skb)
{
	return dns_tc(skb, 0, 0);
}

SEC("tc")
int dns_host_ingress(struct __sk_buff *skb)
{
	return dns_tc(skb, 0, 1);
}

SEC("tc")
int dns_host_egress(struct __sk_buff *skb)
{
	return dns_tc(skb, 1, 1);
}
