/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * One event ring per object, `pn_events`, read by receiver/bpf/ringbuf.ts; its size (power of two,
 * bytes) is set from userspace before load (`maxEntries: { pn_events: 8 << 20 }`).
 * `pn_stats` holds per-CPU self-telemetry counters indexed by `enum pn_stat`: every reserve that fails
 * because the ring is full is counted, so no event is lost without a count.
 */
#ifndef PN_RING_BPF_H
#define PN_RING_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} pn_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PN_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} pn_stats SEC(".maps");

static __always_inline void pn_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&pn_stats, &stat);
	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

/* Reserve `size` bytes in pn_events; NULL (and PN_STAT_RING_LOST counted) when the ring is full. */
static __always_inline void *pn_reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&pn_events, size, 0);
	if (!e)
		pn_count(PN_STAT_RING_LOST);
	return e;
}

static __always_inline void pn_fill_hdr(struct pn_event_hdr *h, __u32 type, __u32 netns)
{
	h->ts_ns = bpf_ktime_get_ns();
	h->type = type;
	h->netns = netns;
}

#endif /* PN_RING_BPF_H */
