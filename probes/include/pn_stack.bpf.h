/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Kernel stack capture, only when `pn_cfg_capture_stacks` is set and only for events that will be
 * sent (bpf_get_stackid costs 4-5x the rest of a handler). Entries of a STACK_TRACE map are never
 * freed by the kernel: userspace deletes each id after reading it (receiver/bpf/stacks.ts).
 * Returns the stack id, or -1 (disabled / failed; failures counted in PN_STAT_STACK_FAILED).
 */
#ifndef PN_STACK_BPF_H
#define PN_STACK_BPF_H

#define PN_STACK_DEPTH 127

const volatile __u8 pn_cfg_capture_stacks = 0;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 4096);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PN_STACK_DEPTH * sizeof(__u64));
} pn_stacks SEC(".maps");

/* skip: frames to drop from the top (e.g. 3 for a tp_btf handler: prog, bpf_trace_runN, __traceiter). */
static __always_inline __s32 pn_stack_id(void *ctx, __u32 skip)
{
	if (!pn_cfg_capture_stacks)
		return -1;
	long id = bpf_get_stackid(ctx, &pn_stacks, skip & BPF_F_SKIP_FIELD_MASK);
	if (id < 0) {
		pn_count(PN_STAT_STACK_FAILED);
		return -1;
	}
	return (__s32)id;
}

#endif /* PN_STACK_BPF_H */
