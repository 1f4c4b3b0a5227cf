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

#endif /* PN_NETNS_BPF_H */
