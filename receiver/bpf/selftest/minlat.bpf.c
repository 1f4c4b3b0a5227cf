// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * The least a program that measures a latency can do, on each hook of podnet's "all probes" set (the
 * same hooks as hookset.bpf.c's hs_* programs, one program per hook). benchmarks/suite/datapath-floor.ts
 * attaches them instead of podnet ("minlat" variants): the floor of a latency measurement on this hook
 * set, measured rather than argued.
 *   a latency hook (start or end of an interval): one per-CPU array lookup and one bpf_ktime_get_ns, the
 *     interval since the last run on this CPU added to a sum and a count (what a per-CPU slot carrying a
 *     start time, or a per-CPU histogram's sum/count, costs; no log2 bucket, no netns)
 *   a counter hook (drops, resets, retransmits, buffer limits, TC packet counts, the napi slot reset):
 *     one per-CPU array lookup and an increment, no clock
 * qdisc_enqueue does the skb-keyed hash update netiftxlat's qdisc wait needs (it fires only for packets
 * that really enter a qdisc: none on the veth path measured here).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct ml_val {
	__u64 last;
	__u64 sum;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, struct ml_val);
} ml_vals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} ml_queued SEC(".maps");

static __always_inline int ml_lat(__u32 idx)
{
	struct ml_val *v = bpf_map_lookup_elem(&ml_vals, &idx);
	if (!v)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	v->sum += now - v->last;
	v->last = now;
	v->count += 1;
	return 0;
}

static __always_inline int ml_cnt(__u32 idx)
{
	struct ml_val *v = bpf_map_lookup_elem(&ml_vals, &idx);
	if (v)
		v->count += 1;
	return 0;
}

#define ML_LAT(name, tp, idx)                                                                         \
	SEC("tp_btf/" #tp)                                                                            \
	int name(void *ctx)                                                                           \
	{                                                                                             \
		return ml_lat(idx);                                                                   \
	}

#define ML_CNT(name, tp, idx)                                                                         \
	SEC("tp_btf/" #tp)                                                                            \
	int name(void *ctx)                                                                           \
	{                                                                                             \
		return ml_cnt(idx);                                                                   \
	}

ML_LAT(ml_dev_queue, net_dev_queue, 0)        /* kernellatency tx end, socketlatency write end */
ML_LAT(ml_data_ready, sk_data_ready, 1)       /* kernellatency rx end, socketlatency read start */
ML_LAT(ml_rx_enter, netif_receive_skb, 2)     /* kernellatency rx start */
ML_CNT(ml_napi_poll, napi_poll, 3)            /* kernellatency rx slot reset */
ML_LAT(ml_start_xmit, net_dev_start_xmit, 4)  /* netiftxlat driver start */
ML_LAT(ml_xmit, net_dev_xmit, 5)              /* netiftxlat driver end */
ML_LAT(ml_recv_length, sock_recv_length, 6)   /* socketlatency read end */
ML_LAT(ml_sendmsg, tcp_sendmsg_locked, 7)     /* socketlatency write start */
ML_LAT(ml_si_raise, softirq_raise, 8)         /* softirq */
ML_LAT(ml_si_entry, softirq_entry, 9)         /* softirq */
ML_LAT(ml_si_exit, softirq_exit, 10)          /* softirq */
ML_CNT(ml_kfree_skb, kfree_skb, 11)           /* packetloss */
ML_CNT(ml_rst_send, tcp_send_reset, 12)       /* tcpreset */
ML_CNT(ml_rst_receive, tcp_receive_reset, 13) /* tcpreset */
ML_CNT(ml_retrans, tcp_retransmit_skb, 14)    /* tcpretrans */
ML_CNT(ml_retrans_synack, tcp_retransmit_synack, 15) /* tcpretrans */
ML_CNT(ml_buf_limit, sock_exceed_buf_limit, 16) /* sockoverflow */
ML_CNT(ml_rcvq_full, sock_rcvqueue_full, 17)  /* sockoverflow */
ML_CNT(ml_udp_fail, udp_fail_queue_rcv_skb, 18) /* sockoverflow */

SEC("tp_btf/qdisc_enqueue")
int BPF_PROG(ml_enqueue, struct Qdisc *qdisc, const struct netdev_queue *txq, struct sk_buff *skb)
{
	__u64 key = (__u64)skb;
	__u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&ml_queued, &key, &ts, BPF_ANY);
	return 0;
}

/* TC on the host-side veths (flow's counters): a per-CPU count, no clock */
SEC("tc")
int ml_tc_ingress(struct __sk_buff *skb)
{
	ml_cnt(19);
	return -1; /* TC_ACT_UNSPEC / TCX_NEXT */
}

SEC("tc")
int ml_tc_egress(struct __sk_buff *skb)
{
	ml_cnt(20);
	return -1;
}
