// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * flow: bytes and packets per (pod address, peer address[, ports], transport, direction), counted by TC
 * programs on the pods' host-side veths. On a host-side veth, tc ingress sees what the pod sends
 * (direction 0, transmit) and tc egress what it receives (direction 1); the key is normalised so `local`
 * is always the pod's side. Counters live in an LRU per-CPU hash (bounded; an evicted flow restarts at
 * 0). Ports are zero unless `cfg_ports` is set (cardinality). IPv4 and IPv6 (no extension-header walk).
 * Programs return TCX_NEXT / TC_ACT_UNSPEC (-1): they never change what happens to the packet.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define FL_ETH_P_IP 0x0800
#define FL_ETH_P_IPV6 0x86DD
#define FL_NEXT (-1)

const volatile __u8 cfg_ports = 0;

struct flow_key {
	__u8 local[16]; /* pod side, network order (IPv4 in the first 4 bytes) */
	__u8 peer[16];
	__u32 ifindex;  /* host-side veth */
	__u16 lport;    /* host order, 0 unless cfg_ports */
	__u16 pport;
	__u8 family;    /* 2 / 10 */
	__u8 l4proto;
	__u8 dir;       /* 0 = pod transmits, 1 = pod receives */
	__u8 pad;
};
/* map key: its TypeScript layout is generated into flow.layout.gen.ts */

struct flow_val {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flow_counts SEC(".maps");

static __always_inline int flow_count(struct __sk_buff *skb, __u8 dir)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return FL_NEXT;
	/* The key is built in place (no source/destination copies to move afterwards): `dir` is a literal at
	 * each call, so clang keeps one side of every `dir ?` below. Zeroed first: IPv4 uses 4 of the 16
	 * address bytes and the hash covers all of them. */
	struct flow_key k = {};
	__u32 l4off;
	__u16 proto = bpf_ntohs(eth->h_proto);
	if (proto == FL_ETH_P_IP) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return FL_NEXT;
		k.family = 2;
		k.l4proto = ip->protocol;
		__builtin_memcpy(dir ? k.peer : k.local, &ip->saddr, 4);
		__builtin_memcpy(dir ? k.local : k.peer, &ip->daddr, 4);
		l4off = sizeof(*eth) + ip->ihl * 4;
	} else if (proto == FL_ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return FL_NEXT;
		k.family = 10;
		k.l4proto = ip6->nexthdr;
		__builtin_memcpy(dir ? k.peer : k.local, &ip6->saddr, 16);
		__builtin_memcpy(dir ? k.local : k.peer, &ip6->daddr, 16);
		l4off = sizeof(*eth) + sizeof(*ip6);
	} else {
		return FL_NEXT;
	}
	if (cfg_ports && (k.l4proto == 6 || k.l4proto == 17)) {
		__be16 ports[2];
		if (!bpf_skb_load_bytes(skb, l4off, ports, sizeof(ports))) {
			__u16 sport = bpf_ntohs(ports[0]), dport = bpf_ntohs(ports[1]);
			k.lport = dir ? dport : sport;
			k.pport = dir ? sport : dport;
		}
	}
	k.ifindex = skb->ifindex;
	k.dir = dir;
	struct flow_val *v = bpf_map_lookup_elem(&flow_counts, &k);
	if (!v) {
		struct flow_val zero = {};
		bpf_map_update_elem(&flow_counts, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&flow_counts, &k);
		if (!v)
			return FL_NEXT;
	}
	v->packets += 1;
	v->bytes += skb->len;
	return FL_NEXT;
}

SEC("tc")
int flow_ingress(struct __sk_buff *skb)
{
	return flow_count(skb, 0);
}

SEC("tc")
int flow_egress(struct __sk_buff *skb)
{
	return flow_count(skb, 1);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
