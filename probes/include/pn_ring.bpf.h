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

/*
 * Commit a record reserved with pn_reserve. The reader is not woken per record: a wake-up is an irq_work
 * (a self-IPI, several µs under a hypervisor) paid inside the hook whenever the reader has caught up,
 * i.e. for every event on a quiet machine. The reader drains on its own timer every `drainMs`
 * (receiver/bpf/ringbuf.ts, 100 ms), so a record waits at most that long; only when the unread data
 * passes a quarter of the ring is the reader woken at once (FORCE_WAKEUP; while a wake-up is already
 * pending, irq_work_queue returns without a second IPI), which leaves three quarters of the ring for the
 * burst that arrives before it drains.
 */
static __always_inline void pn_submit(void *e)
{
	__u64 avail = bpf_ringbuf_query(&pn_events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&pn_events, BPF_RB_RING_SIZE);

	bpf_ringbuf_submit(e, avail >= size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

#endif /* PN_RING_BPF_H */
