/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Netns inode of a socket or an skb, CO-RE (works in tp_btf, raw_tp, tracepoint and kprobe programs).
 * Order: the given socket, then skb->sk, then skb->dev. The device comes last because for UDP skbs
 * already queued on a socket `skb->dev` shares a union with `dev_scratch` (garbage). 0 = neither
 * exists (e.g. a receive-queue purge from an RCU callback): count it as unattributed.
 */
#ifndef PN_NETNS_BPF_H
#define PN_NETNS_BPF_H

static __always_inline __u32 pn_sock_netns(const struct sock *sk)
{
	if (!sk)
		return 0;
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline __u32 pn_dev_netns(const struct net_device *dev)
{
	if (!dev)
		return 0;
	return BPF_CORE_READ(dev, nd_net.net, ns.inum);
}

/* rx_sk may be NULL (kfree_skb before 6.10 has no rx_sk argument). */
static __always_inline __u32 pn_skb_netns(const struct sk_buff *skb, const struct sock *rx_sk)
{
	__u32 ino = pn_sock_netns(rx_sk);
	if (ino)
		return ino;
	if (!skb)
		return 0;
	ino = pn_sock_netns(BPF_CORE_READ(skb, sk));
	if (ino)
		return ino;
	return pn_dev_netns(BPF_CORE_READ(skb, dev));
}

/*
 * Netns inode of a socket / device by direct BTF loads (tp_btf programs only: the pointer must be a
 * BTF-typed argument or a field loaded from one). CO-RE-relocated plain loads, no helper call — the
 * per-packet hooks use these instead of the bpf_probe_read_kernel-based reads above.
 */
static __always_inline __u32 pn_sk_netns_btf(const struct sock *sk)
{
	return sk ? sk->__sk_common.skc_net.net->ns.inum : 0;
}

static __always_inline __u32 pn_dev_netns_btf(const struct net_device *dev)
{
	return dev ? dev->nd_net.net->ns.inum : 0;
}

/*
 * One body for a tp_btf program and its raw_tp twin: `btf` is a literal at each call of an
 * always-inline body, so clang keeps one branch — a direct BTF load (tp_btf) or a CO-RE
 * bpf_probe_read_kernel (raw_tp, whose arguments are plain integers to the verifier).
 */
#define PN_RD(btf, ptr, field) ((btf) ? (ptr)->field : BPF_CORE_READ(ptr, field))
#define PN_RD_BITFIELD(btf, ptr, field) ((btf) ? BPF_CORE_READ_BITFIELD(ptr, field) : BPF_CORE_READ_BITFIELD_PROBED(ptr, field))

static __always_inline __u32 pn_sk_netns_rd(int btf, const struct sock *sk)
{
	return btf ? pn_sk_netns_btf(sk) : pn_sock_netns(sk);
}

static __always_inline __u32 pn_dev_netns_rd(int btf, const struct net_device *dev)
{
	return btf ? pn_dev_netns_btf(dev) : pn_dev_netns(dev);
}

#endif /* PN_NETNS_BPF_H */
