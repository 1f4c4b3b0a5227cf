/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Log2 latency histograms (the latency probes and dns), decoded by receiver/kit/ebpf/log2.ts
 * (its size checked against the generated PN_HIST_SIZE, test/bpf/layouts.test.ts). One `struct pn_hist` per key in a per-CPU map: slot i counts
 * durations in [2^i, 2^(i+1)) ns (slot 0 also holds 0; the last slot holds everything above), plus the
 * exact sum and count and two exact threshold counters (e.g. over 1 ms / over 100 ms, KubeSkoop's
 * read1ms / read100ms), which cannot be derived from power-of-two buckets.
 * Per-CPU values: plain increments are exact; userspace sums (or keeps) the CPUs.
 */
#ifndef PN_HIST_BPF_H
#define PN_HIST_BPF_H

#define PN_HIST_SLOTS 40 /* 2^40 ns ≈ 18 min: the last slot is "longer" */

struct pn_hist {
	__u64 slots[PN_HIST_SLOTS];
	__u64 sum_ns;
	__u64 count;
	__u64 over[2]; /* > threshold 0, > threshold 1 (probe-defined) */
};
_Static_assert(sizeof(struct pn_hist) == (PN_HIST_SLOTS + 4) * 8, "pn_hist layout is shared with receiver/kit/ebpf/log2.ts");

/* Zeroed value for creating entries (a global: too large for the stack alongside the rest). */
static struct pn_hist pn_hist_zero;

static __always_inline __u32 pn_log2(__u64 v)
{
	__u32 r = 0, shift;
	shift = (v > 0xFFFFFFFFULL) << 5;
	v >>= shift;
	r |= shift;
	shift = (v > 0xFFFF) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

/* Adds one duration to an existing histogram value. */
static __always_inline void pn_hist_record(struct pn_hist *h, __u64 ns, __u64 t0, __u64 t1)
{
	/* A 64-bit index clamped in place, then pinned with barrier_var: the 6.1 verifier rejected the
	 * former `__u32 s ... slots[s & 63]` ("R4 unbounded memory access", Debian 6.1 in test/kernel/) because
	 * clang compared a zero-extended copy and indexed with the unclamped register (6.18 links the two). */
	__u64 s = pn_log2(ns);
	if (s > PN_HIST_SLOTS - 1)
		s = PN_HIST_SLOTS - 1;
	barrier_var(s);
	if (s < PN_HIST_SLOTS)
		h->slots[s] += 1;
	h->sum_ns += ns;
	h->count += 1;
	if (ns > t0)
		h->over[0] += 1;
	if (ns > t1)
		h->over[1] += 1;
}

/* Adds one duration under `key` of a per-CPU hash of pn_hist (entry created on first use). */
#define pn_hist_add(map, key, ns, t0, t1)                                                             \
	({                                                                                            \
		struct pn_hist *__h = pn_counter_get(map, key, &pn_hist_zero);                        \
		if (__h)                                                                              \
			pn_hist_record(__h, ns, t0, t1);                                              \
	})

/*
 * Same, for a key whose first field `netns` holds the raw netns inode. An existing entry for that inode
 * (entries are only created while the netns is watched) is used directly: one hash lookup on the hot
 * path. Otherwise the inode is resolved with pn_watch_key (0 = unattributed) and the entry created.
 * The resolved netns is left in `keyp->netns` (for events).
 */
#define pn_hist_add_watched(map, keyp, ns, t0, t1)                                                    \
	({                                                                                            \
		struct pn_hist *__h = pn_counter_get_watched(map, keyp, &pn_hist_zero);               \
		if (__h)                                                                              \
			pn_hist_record(__h, ns, t0, t1);                                              \
	})

#endif /* PN_HIST_BPF_H */
