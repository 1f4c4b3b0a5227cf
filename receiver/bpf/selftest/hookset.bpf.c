// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Empty programs on the hook set of podnet's "all probes" configuration: one per podnet program on the
 * same hook (the `x2_*` programs are the second program of a hook two probes share), and two TC program
 * pairs for the host-side veths (flow's and dns's). benchmarks/suite/datapath-floor.ts attaches them
 * instead of podnet to measure what the hook set costs the data path with nothing in the programs: the
 * dispatch floor, without BPF_STATS (and with it, to measure the accounting's own cost). Tracepoints that
 * podnet attaches only for rare events (resets, retransmits, buffer limits) are included: an attached
 * tracepoint costs only when it fires.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define HS_EMPTY(name, tp)                                                                            \
	SEC("tp_btf/" #tp)                                                                            \
	int name(void *ctx)                                                                           \
	{                                                                                             \
		return 0;                                                                             \
	}

/* one program per hook (the least a signal on that hook needs) */
HS_EMPTY(hs_dev_queue, net_dev_queue)           /* socketlatency write, kernellatency tx */
HS_EMPTY(hs_data_ready, sk_data_ready)          /* socketlatency read start, kernellatency rx end */
HS_EMPTY(hs_rx_enter, netif_receive_skb)        /* kernellatency rx start */
HS_EMPTY(hs_napi_poll, napi_poll)               /* kernellatency rx slot reset */
HS_EMPTY(hs_start_xmit, net_dev_start_xmit)     /* netiftxlat */
HS_EMPTY(hs_xmit, net_dev_xmit)                 /* netiftxlat */
HS_EMPTY(hs_enqueue, qdisc_enqueue)             /* netiftxlat qdisc wait */
HS_EMPTY(hs_recv_length, sock_recv_length)      /* socketlatency read end */
HS_EMPTY(hs_sendmsg, tcp_sendmsg_locked)        /* socketlatency write start */
HS_EMPTY(hs_si_raise, softirq_raise)            /* softirq */
HS_EMPTY(hs_si_entry, softirq_entry)            /* softirq */
HS_EMPTY(hs_si_exit, softirq_exit)              /* softirq */
HS_EMPTY(hs_kfree_skb, kfree_skb)               /* packetloss */
HS_EMPTY(hs_rst_send, tcp_send_reset)           /* tcpreset */
HS_EMPTY(hs_rst_receive, tcp_receive_reset)     /* tcpreset */
HS_EMPTY(hs_retrans, tcp_retransmit_skb)        /* tcpretrans */
HS_EMPTY(hs_retrans_synack, tcp_retransmit_synack) /* tcpretrans */
HS_EMPTY(hs_buf_limit, sock_exceed_buf_limit)   /* sockoverflow */
HS_EMPTY(hs_rcvq_full, sock_rcvqueue_full)      /* sockoverflow */
HS_EMPTY(hs_udp_fail, udp_fail_queue_rcv_skb)   /* sockoverflow */

/* the second program of a hook two probes use today (one program per probe per hook) */
HS_EMPTY(x2_dev_queue, net_dev_queue)           /* kernellatency's beside socketlatency's */
HS_EMPTY(x2_data_ready, sk_data_ready)          /* kernellatency's beside socketlatency's */

/* TC on the host-side veths: one pair per hook (flow), and a second pair (dns) */
SEC("tc")
int hs_tc_ingress(struct __sk_buff *skb)
{
	return -1; /* TC_ACT_UNSPEC / TCX_NEXT */
}

SEC("tc")
int hs_tc_egress(struct __sk_buff *skb)
{
	return -1;
}

SEC("tc")
int x2_tc_ingress(struct __sk_buff *skb)
{
	return -1;
}

SEC("tc")
int x2_tc_egress(struct __sk_buff *skb)
{
	return -1;
}

/* benchmarks/suite/bpf-run-floor.ts: one clock read, to price bpf_ktime_get_ns against the empty program */
SEC("tp_btf/sock_recv_length")
int clk_recv_length(void *ctx)
{
	return bpf_ktime_get_ns() & 1;
}
