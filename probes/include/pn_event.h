/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Layout shared between BPF programs and TypeScript decoders (receiver/bpf/events.ts reads the header
 * with the offsets generated into receiver/bpf/pn.layout.gen.ts). Little endian, wide fields first, sizes asserted. Every ring record starts with
 * `struct pn_event_hdr`; the probe's own payload follows at offset 16.
 */
#ifndef PN_EVENT_H
#define PN_EVENT_H

struct pn_event_hdr {
	__u64 ts_ns;   /* @0  bpf_ktime_get_ns(), CLOCK_MONOTONIC */
	__u32 type;    /* @8  probe-specific event type */
	__u32 netns;   /* @12 netns inode, 0 = unattributed */
};
_Static_assert(sizeof(struct pn_event_hdr) == 16, "pn_event_hdr layout is shared with TypeScript");

/*
 * PN_LAYOUT(pl_event) puts `struct pl_event` into the object's BTF, so that scripts/gen-layouts.ts writes
 * its TypeScript layout (offsets, size, typed readers) into the probe's <obj>.layout.gen.ts. clang emits
 * BTF only for the types of globals, maps and program arguments, not for a ring record built in a local:
 * this is an 8-byte .rodata pointer that nothing reads.
 */
#define PN_LAYOUT(name) const struct name *const pn_layout_##name __attribute__((used)) = 0

/* Indexes of the per-CPU self-telemetry counters in `pn_stats` (pn_ring.bpf.h). */
enum pn_stat {
	PN_STAT_RING_LOST = 0,    /* bpf_ringbuf_reserve failed: ring full */
	PN_STAT_SUPPRESSED = 1,   /* event not sent: rate limit */
	PN_STAT_STACK_FAILED = 2, /* bpf_get_stackid failed (map full, ...) */
	PN_STAT_COUNTER_FULL = 3, /* a counter entry could not be created: map full (pn_watch.bpf.h) */
	PN_STAT_MAX = 8,
};

#endif /* PN_EVENT_H */
