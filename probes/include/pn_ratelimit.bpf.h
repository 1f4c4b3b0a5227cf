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

/*
 * Per CPU, the (netns, type) whose suppression this CPU last confirmed and the jiffy it did so in. A flood
 * that is being suppressed (a drop storm: every packetloss / sockoverflow run asks) is answered from it
 * for the rest of that jiffy: no clock read and no hash lookup (bpf_jiffies64 is a plain load; the
 * coarse ns clock is refused in tracing programs). The cost: a window that ends inside that jiffy
 * reopens at its end, at most one tick late, so never more than `pn_cfg_rate_limit` events per window.
 * Only for windows of 100 ms or more (a tick is at most 10 ms); the suppressed count stays exact.
 */
struct pn_rl_fast {
	__u64 jiffies;
	__u32 netns;
	__u32 type;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pn_rl_fast);
} pn_ratelimit_fast SEC(".maps");

#define PN_RL_FAST_MIN_WINDOW_NS 100000000ULL

/* This CPU confirmed, in jiffy `j`, that (netns, type) is over its limit in an open window. */
static __always_inline void pn_rl_fast_set(struct pn_rl_fast *f, __u64 j, __u32 netns, __u32 type)
{
	if (!f)
		return;
	f->jiffies = j;
	f->netns = netns;
	f->type = type;
}

/* 1 = send the event, 0 = suppressed (and counted). */
static __always_inline int pn_rate_allow(__u32 netns, __u32 type)
{
	__u32 limit = pn_cfg_rate_limit;
	if (!limit)
		return 1;
	struct pn_rl_fast *f = NULL;
	__u64 j = 0;
	if (pn_cfg_rate_window_ns >= PN_RL_FAST_MIN_WINDOW_NS) {
		__u32 z = 0;
		f = bpf_map_lookup_elem(&pn_ratelimit_fast, &z);
		j = bpf_jiffies64();
		if (f && f->jiffies == j && f->netns == netns && f->type == type) {
			pn_count(PN_STAT_SUPPRESSED);
			return 0;
		}
	}
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
		pn_rl_fast_set(f, j, netns, type);
		pn_count(PN_STAT_SUPPRESSED);
		return 0;
	}
	if (__sync_fetch_and_add(&v->count, 1) < limit)
		return 1;
	pn_rl_fast_set(f, j, netns, type);
	pn_count(PN_STAT_SUPPRESSED);
	return 0;
}

#endif /* PN_RATELIMIT_BPF_H */
