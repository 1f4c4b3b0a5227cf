// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * softirq: per CPU and vector, the delay from the first raise to the handler's entry (irq:softirq_raise
 * → irq:softirq_entry) and the handler's run time (softirq_entry → softirq_exit).
 * Softirqs are raised and run on the same CPU, so all state is per CPU (PERCPU_ARRAY indexed by vector);
 * histograms are kept per CPU too (PERCPU_ARRAY indexed by vector * 2 + phase): each CPU's slot is its
 * own series. Vectors outside `cfg_vec_mask` (default NET_TX | NET_RX) return at the first test.
 * Slow events: SOFTIRQ_SCHED_SLOW / SOFTIRQ_SCHED_100MS / SOFTIRQ_EXCUTE_SLOW / SOFTIRQ_EXCUTE_100MS,
 * with the CPU and the task that was running (interrupted, or ksoftirqd).
 */
#include "podnet.bpf.h"
#include "pn_watch.bpf.h"
#include "pn_hist.bpf.h"

#define SI_NR_VEC 10
#define SI_SCHED 0
#define SI_EXEC 1

/* event types */
#define SI_EV_SCHED_SLOW 1
#define SI_EV_SCHED_100MS 2
#define SI_EV_EXEC_SLOW 3
#define SI_EV_EXEC_100MS 4

const volatile __u32 cfg_vec_mask = (1 << 2) | (1 << 3); /* NET_TX_SOFTIRQ | NET_RX_SOFTIRQ */
const volatile __u64 cfg_slow_ns = 10000000ULL;          /* *_SLOW events and counter 0 */
const volatile __u64 cfg_slow100_ns = 100000000ULL;      /* *_100MS events and counter 1 */
const volatile __u8 cfg_events = 1;

struct si_ts {
	__u64 raise;
	__u64 entry;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SI_NR_VEC);
	__type(key, __u32);
	__type(value, struct si_ts);
} si_ts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SI_NR_VEC * 2);
	__type(key, __u32);
	__type(value, struct pn_hist);
} si_hist SEC(".maps");

struct si_event {
	struct pn_event_hdr hdr; /* @0 netns 0 (node) */
	__u64 latency_ns;        /* @16 */
	__u32 cpu;               /* @24 */
	__u32 vec;               /* @28 */
	__u32 pid;               /* @32 running task (tgid) */
	__u32 tid;               /* @36 */
	char comm[16];           /* @40 */
};
PN_LAYOUT(si_event); /* TypeScript layout generated into softirq.layout.gen.ts */

static __always_inline void si_emit(__u32 type, __u64 lat, __u32 vec)
{
	if (!cfg_events || !pn_rate_allow(0, type))
		return;
	struct si_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return;
	pn_fill_hdr(&e->hdr, type, 0);
	e->latency_ns = lat;
	e->cpu = bpf_get_smp_processor_id();
	e->vec = vec;
	__u64 pt = bpf_get_current_pid_tgid();
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void si_record(__u32 vec, __u32 phase, __u64 lat)
{
	__u32 idx = vec * 2 + phase;
	struct pn_hist *h = bpf_map_lookup_elem(&si_hist, &idx);
	if (h)
		pn_hist_record(h, lat, cfg_slow_ns, cfg_slow100_ns);
	if (lat > cfg_slow100_ns)
		si_emit(phase == SI_SCHED ? SI_EV_SCHED_100MS : SI_EV_EXEC_100MS, lat, vec);
	else if (lat > cfg_slow_ns)
		si_emit(phase == SI_SCHED ? SI_EV_SCHED_SLOW : SI_EV_EXEC_SLOW, lat, vec);
}

static __always_inline int si_on_raise(unsigned int vec)
{
	if (vec >= SI_NR_VEC || !(cfg_vec_mask & (1U << vec)))
		return 0;
	__u32 k = vec;
	struct si_ts *t = bpf_map_lookup_elem(&si_ts, &k);
	if (t && !t->raise)
		t->raise = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int si_on_entry(unsigned int vec)
{
	if (vec >= SI_NR_VEC || !(cfg_vec_mask & (1U << vec)))
		return 0;
	__u32 k = vec;
	struct si_ts *t = bpf_map_lookup_elem(&si_ts, &k);
	if (!t)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	t->entry = now;
	if (t->raise) {
		__u64 lat = now - t->raise;
		t->raise = 0;
		si_record(k, SI_SCHED, lat);
	}
	return 0;
}

static __always_inline int si_on_exit(unsigned int vec)
{
	if (vec >= SI_NR_VEC || !(cfg_vec_mask & (1U << vec)))
		return 0;
	__u32 k = vec;
	struct si_ts *t = bpf_map_lookup_elem(&si_ts, &k);
	if (!t || !t->entry)
		return 0;
	__u64 lat = bpf_ktime_get_ns() - t->entry;
	t->entry = 0;
	si_record(k, SI_EXEC, lat);
	return 0;
}

/* tp_btf programs, and raw_tp twins for kernels where tp_btf cannot load (same prototype: one u32). */
SEC("tp_btf/softirq_raise")
int BPF_PROG(si_raise, unsigned int vec)
{
	return si_on_raise(vec);
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(si_entry, unsigned int vec)
{
	return si_on_entry(vec);
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(si_exit, unsigned int vec)
{
	return si_on_exit(vec);
}

SEC("raw_tp/softirq_raise")
int BPF_PROG(si_raise_raw, unsigned int vec)
{
	return si_on_raise(vec);
}

SEC("raw_tp/softirq_entry")
int BPF_PROG(si_entry_raw, unsigned int vec)
{
	return si_on_entry(vec);
}

SEC("raw_tp/softirq_exit")
int BPF_PROG(si_exit_raw, unsigned int vec)
{
	return si_on_exit(vec);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
