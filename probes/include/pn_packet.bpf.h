/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Addresses and ports of an skb, read from skb->head + network_header (CO-RE, bpf_probe_read_kernel).
 * Addresses stay in network order (IPv4 in the first 4 bytes), ports are converted to host order.
 */
#ifndef PN_PACKET_BPF_H
#define PN_PACKET_BPF_H

#define PN_ETH_P_IP 0x0800
#define PN_ETH_P_IPV6 0x86DD

struct pn_flow {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 protocol; /* ETH_P_*, host order */
	__u16 family;   /* AF_INET 2 / AF_INET6 10, 0 = unknown */
	__u16 sport;
	__u16 dport;
	__u8 l4proto;
};

/* Returns 0 when the network header could be read, -1 otherwise (flow left zeroed). */
static __always_inline int pn_skb_flow(const struct sk_buff *skb, struct pn_flow *f)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	if (!head || nh == (__u16)~0U)
		return -1;
	f->protocol = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	__u8 vb = 0;
	bpf_probe_read_kernel(&vb, 1, head + nh);
	__u32 l4off;
	if ((vb >> 4) == 4) {
		struct iphdr ip;
		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return -1;
		f->family = 2;
		f->l4proto = ip.protocol;
		__builtin_memcpy(f->saddr, &ip.saddr, 4);
		__builtin_memcpy(f->daddr, &ip.daddr, 4);
		l4off = nh + (ip.ihl & 0xf) * 4;
	} else if ((vb >> 4) == 6) {
		struct ipv6hdr ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return -1;
		f->family = 10;
		f->l4proto = ip6.nexthdr;
		bpf_probe_read_kernel(f->saddr, 16, &ip6.saddr);
		bpf_probe_read_kernel(f->daddr, 16, &ip6.daddr);
		l4off = nh + sizeof(ip6);
	} else {
		return -1;
	}
	if (f->l4proto == 6 || f->l4proto == 17) {
		__be16 ports[2] = {};
		if (!bpf_probe_read_kernel(ports, sizeof(ports), head + l4off)) {
			f->sport = bpf_ntohs(ports[0]);
			f->dport = bpf_ntohs(ports[1]);
		}
	}
	return 0;
}

#endif /* PN_PACKET_BPF_H */
