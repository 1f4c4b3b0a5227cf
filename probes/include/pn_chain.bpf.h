/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * One program run per shared hook across probes: a program on a hook that several probes use ends with a
 * tail call into the next probe's program on the same hook (slot 0 of its own one-entry PROG_ARRAY), and
 * only the first probe's program is attached (receiver/bpf/hook-chain.ts keeps the chain as probes start
 * and stop). A packet then pays one tracepoint dispatch per hook instead of one per probe; each probe keeps
 * its own object, maps, rodata and events. An empty slot (the last probe, or a probe running alone) makes
 * the tail call a no-op. One array per program: the kernel ties a PROG_ARRAY to the hook of its first user.
 *
 *   PN_CHAIN(sl_next_dev_queue);
 *   SEC("tp_btf/net_dev_queue")
 *   int BPF_PROG(sl_dev_queue, struct sk_buff *skb) { sl_on_dev_queue(skb); PN_CHAIN_NEXT(sl_next_dev_queue); }
 */
#ifndef PN_CHAIN_BPF_H
#define PN_CHAIN_BPF_H

#define PN_CHAIN(name)                                    \
	struct {                                          \
		__uint(type, BPF_MAP_TYPE_PROG_ARRAY);    \
		__uint(max_entries, 1);                   \
		__type(key, __u32);                       \
		__type(value, __u32);                     \
	} name SEC(".maps")

/* Inside BPF_PROG (its `ctx`): run the next probe's program on this hook, if any, else return 0. */
#define PN_CHAIN_NEXT(name)                  \
	do {                                 \
		bpf_tail_call(ctx, &name, 0); \
		return 0;                    \
	} while (0)

#endif /* PN_CHAIN_BPF_H */
