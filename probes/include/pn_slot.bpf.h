/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Netns slots: the per-packet path from a watched netns to its histogram without a hash lookup.
 *
 * A per-CPU hash lookup keyed by netns was the largest own cost of the latency probes' measuring
 * programs (~40-60 ns per run, docs/probes-latency.md «Data-path cost»). Here userspace
 * (receiver/kit/ebpf/watched.ts) gives each watched netns, when it is added, a small slot id
 * (1 .. capacity-1) and publishes it in `pn_slots`, a direct-mapped ARRAY indexed by the inode's low
 * bits; a probe keeps its histograms of slotted netns in a PERCPU_ARRAY indexed by
 * slot * variants + variant. Both lookups are array lookups (inlined by the verifier where the kernel
 * can). A netns whose table index is taken by another watched netns, or that came when every slot was
 * in use, has no slot: it keeps the per-CPU hash path (pn_hist_add_watched), as does everything not
 * watched (netns 0). A netns uses one path for as long as it is watched, so each count lands in
 * exactly one place; userspace reads both (EbpfRuntime.counterEntries) and zeroes a slot's entries
 * before it publishes the slot for another netns.
 */
#ifndef PN_SLOT_BPF_H
#define PN_SLOT_BPF_H

#define PN_SLOT_TABLE 8192 /* direct-mapped inode → slot table (power of two) */
#define PN_SLOTS 256       /* slots per probe (slot 0 = none): the fast arrays hold PN_SLOTS × variants */

struct pn_slot {
	__u32 netns; /* inode, 0 = free */
	__u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PN_SLOT_TABLE);
	__type(key, __u32);
	__type(value, struct pn_slot);
} pn_slots SEC(".maps");

/* The slot of a watched netns, 0 when it has none (then the hash path applies). */
static __always_inline __u32 pn_slot_of(__u32 netns)
{
	__u32 i = netns & (PN_SLOT_TABLE - 1);
	struct pn_slot *e = bpf_map_lookup_elem(&pn_slots, &i);
	if (!e || !netns || e->netns != netns)
		return 0;
	return e->slot;
}

/* Value of (slot, variant) in a fast per-CPU array of `nvar` variants per slot; NULL without a slot,
 * for a variant >= nvar (the caller's "no fast variant") or past the array (the lookup refuses it). */
#define pn_slot_value(map, slot, variant, nvar)                                                       \
	({                                                                                            \
		__u32 __s = (slot), __v = (variant);                                                  \
		__u32 __i = __s * (nvar) + __v;                                                       \
		(__s && __v < (nvar)) ? bpf_map_lookup_elem(map, &__i) : NULL;                        \
	})

/*
 * pn_hist_add_watched with the slot path first: a slotted netns records into `fast` (variant
 * `variant` of `nvar`), any other into the hash `map` as before. `keyp->netns` is left as the netns
 * counted under (for events). Needs pn_hist.bpf.h and pn_watch.bpf.h.
 */
#define pn_hist_add_slotted(fast, variant, nvar, map, keyp, ns, t0, t1)                              \
	({                                                                                            \
		struct pn_hist *__f = pn_slot_value(fast, pn_slot_of((keyp)->netns), variant, nvar);  \
		if (__f)                                                                              \
			pn_hist_record(__f, ns, t0, t1);                                              \
		else                                                                                  \
			pn_hist_add_watched(map, keyp, ns, t0, t1);                                   \
	})

#endif /* PN_SLOT_BPF_H */
