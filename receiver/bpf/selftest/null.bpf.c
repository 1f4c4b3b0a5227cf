// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Empty handlers on two per-packet hooks the latency probes use. benchmarks/suite/datapath.ts attaches
 * them beside podnet while BPF_STATS_RUN_TIME is on: their run_time_ns / run_cnt is the floor every
 * program run pays in that accounting (the clock reads around the program, the call), which no change
 * inside a program can remove — only fewer programs per packet can.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/net_dev_queue")
int BPF_PROG(null_dev_queue, struct sk_buff *skb)
{
	return 0;
}

SEC("tp_btf/sk_data_ready")
int BPF_PROG(null_data_ready, const struct sock *sk)
{
	return 0;
}
