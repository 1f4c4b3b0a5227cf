/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Event rate limit per (netns, event type): at most `pn_cfg_rate_limit` events per
 * `pn_cfg_rate_window_ns` window; 0 = unlimited. Each suppressed event is counted in
 * pn_stats[PN_STAT_SUPPRESSED]. Counting in maps is never rate limited: only events are.
 * The window state lives in an LRU hash, so an idle netns costs nothing and a flood of netns cannot fill it.
 */
#ifndef PN_RATELIMIT_BPF_H
#define PN_RATELIMIT_BPF_H

const volatile __u32 pn_cfg_rate_limit = 0;
const volatile __u64 pn_cfg_rate_window_ns = 1000000000ULL;

struct pn_rl_key {
	__u32 netns;
	__u32 type;
};

struct pn_rl_val {
	__u64 window_start;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pn_rl_key);
	__type(value, struct pn_rl_val);
} pn_ratelimit SEC(".maps");

/* 1 = send the event, 0 = suppressed (and counted). */
static __always_inline int pn_rate_allow(__u32 netns, __u32 type)
{
	__u32 limit = pn_cfg_rate_limit;
	if (!limit)
		return 1;
	struct pn_rl_key key = { .netns = netns, .type = type };
	__u64 now = bpf_ktime_get_ns();
	struct pn_rl_val *v = bpf_map_lookup_elem(&pn_ratelimit, &key);
	if (!v) {
		struct pn_rl_val init = { .window_start = now, .count = 1 };
		bpf_map_update_elem(&pn_ratelimit, &key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&pn_ratelimit, &key);
		if (!v)
			return 1;
		if (v->window_start == now && v->count == 1)
			return 1; /* we created it */
	}
	if (now - v->window_start >= pn_cfg_rate_window_ns) {
		v->window_start = now;
		v->count = 0;
	} else if (v->count >= limit) {
		/* already over the limit in this window: a plain read, so a flood that is being suppressed
		 * keeps the shared value's cache line shared between CPUs instead of bouncing it with an
		 * atomic add per hit */
		pn_count(PN_STAT_SUPPRESSED);
		return 0;
	}
	if (__sync_fetch_and_add(&v->count, 1) < limit)
		return 1;
	pn_count(PN_STAT_SUPPRESSED);
	return 0;
}

#endif /* PN_RATELIMIT_BPF_H */
