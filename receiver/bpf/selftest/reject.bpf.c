// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * reject: an object the verifier refuses in part, for the loader's tests.
 *  - bad_deref dereferences a map value without the NULL check: the verifier rejects it with
 *    "R0 invalid mem access 'map_value_or_null'" (the log must reach the JS error).
 *  - good_count is valid: after the loader disables bad_deref and retries, it loads and runs.
 */
#include "podnet.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH); /* not ARRAY: newer verifiers prove constant in-bounds array keys non-NULL */
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("tp_btf/kfree_skb")
int BPF_PROG(bad_deref, struct sk_buff *skb)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&hits, &k);
	*v += 1; /* no NULL check: rejected by the verifier */
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(good_count, struct sk_buff *skb)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&hits, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}
