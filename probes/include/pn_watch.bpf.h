/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Watched network namespaces: a BPF HASH of netns inodes that belong to a known entity (pod, host,
 * named netns), kept in sync with pod discovery by receiver/kit/ebpf (WatchedNetns). Programs see every
 * netns on the host; counters and events of a netns that is not in the map are kept under key 0
 * ("unattributed") instead of being dropped, so a flood of short-lived netns cannot grow the maps and
 * nothing is lost silently.
 *
 * `pn_cfg_watch_all` (rodata) = 1 attributes every netns to itself (no filtering; for tools and tests
 * that have no entity source).
 */
#ifndef PN_WATCH_BPF_H
#define PN_WATCH_BPF_H

const volatile __u8 pn_cfg_watch_all = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);   /* netns inode */
	__type(value, __u32); /* reserved (1) */
} pn_watched SEC(".maps");

/* The netns key to count under: `netns` when watched, else 0 (unattributed). */
static __always_inline __u32 pn_watch_key(__u32 netns)
{
	if (!netns)
		return 0;
	if (pn_cfg_watch_all)
		return netns;
	if (bpf_map_lookup_elem(&pn_watched, &netns))
		return netns;
	return 0;
}

/*
 * Value of a per-CPU counter entry, created zeroed on first use; NULL (and PN_STAT_COUNTER_FULL
 * counted) when the map is full (the netns count is bounded by pn_watched, so this only happens with
 * a too small max_entries). Per-CPU values: plain `+=` on the result is exact.
 */
#define pn_counter_get(map, key, zero_val)                                                            \
	({                                                                                            \
		void *__v = bpf_map_lookup_elem(map, key);                                            \
		if (!__v) {                                                                           \
			bpf_map_update_elem(map, key, zero_val, BPF_NOEXIST);                         \
			__v = bpf_map_lookup_elem(map, key);                                          \
			if (!__v)                                                                     \
				pn_count(PN_STAT_COUNTER_FULL);                                       \
		}                                                                                     \
		__v;                                                                                  \
	})

/*
 * pn_counter_get for a key whose first field `netns` holds the raw netns inode. Entries under an inode
 * are only created while that netns is watched (and pruned when it goes), so an existing entry is used
 * directly: one hash lookup on the hot path instead of the pn_watched lookup plus the counter lookup.
 * Otherwise the inode is resolved with pn_watch_key (0 = unattributed) and the entry got or created.
 * The resolved netns is left in `keyp->netns` (for events).
 */
#define pn_counter_get_watched(map, keyp, zero_val)                                                   \
	({                                                                                            \
		void *__w = (keyp)->netns ? bpf_map_lookup_elem(map, keyp) : NULL;                    \
		if (!__w) {                                                                           \
			(keyp)->netns = pn_watch_key((keyp)->netns);                                  \
			__w = pn_counter_get(map, keyp, zero_val);                                    \
		}                                                                                     \
		__w;                                                                                  \
	})

#endif /* PN_WATCH_BPF_H */
