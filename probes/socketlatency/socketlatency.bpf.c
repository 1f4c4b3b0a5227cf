// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * socketlatency: how long data waits in a socket.
 *
 *   read wait  = first data arrival since the last read (sock:sk_data_ready)
 *                → the application's read returns data (sock:sock_recv_length, ret > 0, not MSG_PEEK).
 *                If data is left in the receive queue after a read (UDP: also its reader_queue, both
 *                seen through sk_rmem_alloc, see sl_recv_length), the next wait starts at that read.
 *   write wait = the application starts writing (tcp:tcp_sendmsg_locked; write_seq at that moment is
 *                the first byte of the write) → the first data segment carrying that byte or a later
 *                one reaches the device layer (net:net_dev_queue, seq/length from the TCP header).
 *                Includes time blocked on a full send buffer / peer window. TCP only.
 *
 * Per-socket state lives in socket-local storage (BPF_MAP_TYPE_SK_STORAGE): freed with the socket, so it
 * is bounded by the live sockets, needs no cleanup hook and cannot be confused by a reused pointer.
 * Histograms per (netns, direction, transport) in a per-CPU hash; waits over
 * `cfg_slow_ns` become `podnet.socket.slow` events (rate-limited per netns and type).
 */
#include "podnet.bpf.h"
#include "pn_watch.bpf.h"
#include "pn_hist.bpf.h"
#include "pn_slot.bpf.h"
#include "pn_tuple.bpf.h"
#include "pn_chain.bpf.h"

#define SL_READ 0
#define SL_WRITE 1

#define SL_EV_READ_SLOW 1
#define SL_EV_WRITE_SLOW 2

#define SL_IPPROTO_TCP 6
#define SL_IPPROTO_UDP 17
#define SL_MSG_PEEK 2
#define SL_TCP_LISTEN 10
#define SL_TCP_TIME_WAIT 6
#define SL_TCP_NEW_SYN_RECV 12

const volatile __u64 cfg_slow_ns = 100000000ULL; /* slow event threshold */
const volatile __u64 cfg_t0_ns = 1000000ULL;     /* counter: over 1 ms */
const volatile __u64 cfg_t1_ns = 100000000ULL;   /* counter: over 100 ms */
const volatile __u8 cfg_udp = 1;                 /* also measure UDP read waits */

struct sl_key {
	__u32 netns;
	__u8 dir;     /* SL_READ / SL_WRITE */
	__u8 l4proto; /* 6 / 17 */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sl_key);
	__type(value, struct pn_hist);
} sl_hist SEC(".maps");

/* The same histograms of netns with a slot (pn_slot.bpf.h), at slot * SL_NVAR + variant: read TCP,
 * read UDP, write TCP (socketlatency.ts SLOT_KEYS builds the sl_key of each). */
#define SL_NVAR 3
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PN_SLOTS * SL_NVAR);
	__type(key, __u32);
	__type(value, struct pn_hist);
} sl_hist_fast SEC(".maps");

struct sl_state {
	__u64 read_ts;
	__u64 write_ts;
	__u32 write_mark; /* tcp write_seq when the pending write started */
	__u32 write_pid;
	char write_comm[16];
	__u32 netns; /* the socket's netns inode, read once when the state is created (a socket never moves) */
	__u32 pad;
};

/* Socket-local storage: lives and dies with the socket (no pointer-keyed table, nothing to clean up). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sl_state);
} sl_socks SEC(".maps");

struct sl_event {
	struct pn_event_hdr hdr; /* @0  type SL_EV_*, netns */
	__u64 wait_ns;           /* @16 */
	__u32 pid;               /* @24 reader / writer process (tgid) */
	__u32 raw_netns;         /* @28 netns inode even when not watched (hdr.netns is then 0) */
	struct pn_tuple tuple;   /* @32 local = s*, peer = d* */
	char comm[16];           /* @72 */
};
PN_LAYOUT(sl_event); /* TypeScript layout generated into socketlatency.layout.gen.ts */

static __always_inline int sl_proto_ok(const struct sock *sk, __u8 *proto)
{
	__u16 p = sk->sk_protocol;
	__u16 fam = sk->__sk_common.skc_family;
	if (fam != 2 && fam != 10)
		return 0;
	if (p == SL_IPPROTO_TCP || (p == SL_IPPROTO_UDP && cfg_udp)) {
		*proto = p;
		return 1;
	}
	return 0;
}

static __always_inline struct sl_state *sl_state_get(const struct sock *sk, int create)
{
	return bpf_sk_storage_get(&sl_socks, (struct sock *)sk, NULL, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

/* The creating hooks (sl_data_ready, sl_sendmsg) fill the cached netns; the per-read / per-segment
 * hooks then use it instead of walking sk->sk_net->ns every time. */
static __always_inline void sl_state_netns(struct sl_state *st, const struct sock *sk)
{
	if (!st->netns)
		st->netns = pn_sk_netns_btf(sk);
}

static __always_inline void sl_emit(const struct sock *sk, __u32 type, __u32 netns, __u64 wait, __u8 proto,
				    __u32 pid, const char *comm)
{
	if (!pn_rate_allow(netns, type))
		return;
	struct sl_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return;
	pn_fill_hdr(&e->hdr, type, netns);
	e->wait_ns = wait;
	e->pid = pid;
	e->raw_netns = pn_sock_netns(sk);
	__builtin_memset(&e->tuple, 0, sizeof(e->tuple));
	pn_tuple_from_sock(sk, &e->tuple, 1);
	e->tuple.l4proto = proto;
	__builtin_memcpy(e->comm, comm, 16);
	bpf_ringbuf_submit(e, 0);
}

/* sk_data_ready and net_dev_queue are shared with kernellatency (and dns): chained (pn_chain.bpf.h) */
PN_CHAIN(sl_next_data_ready);
PN_CHAIN(sl_next_dev_queue);

static __always_inline void sl_on_data_ready(const struct sock *sk)
{
	__u8 proto;
	if (!sl_proto_ok(sk, &proto))
		return;
	if (sk->__sk_common.skc_state == SL_TCP_LISTEN && proto == SL_IPPROTO_TCP)
		return;
	struct sl_state *st = sl_state_get(sk, 1);
	if (st && !st->read_ts) {
		st->read_ts = bpf_ktime_get_ns();
		sl_state_netns(st, sk);
	}
}

SEC("tp_btf/sk_data_ready")
int BPF_PROG(sl_data_ready, const struct sock *sk)
{
	sl_on_data_ready(sk);
	PN_CHAIN_NEXT(sl_next_data_ready);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sl_recv_length, struct sock *sk, int ret, int flags)
{
	if (ret <= 0 || (flags & SL_MSG_PEEK))
		return 0;
	/* storage exists only for the sockets sl_data_ready / sl_sendmsg accepted (TCP, UDP) */
	struct sl_state *st = sl_state_get(sk, 0);
	if (!st || !st->read_ts)
		return 0;
	__u8 proto = sk->sk_protocol;
	__u64 now = bpf_ktime_get_ns();
	__u64 wait = now - st->read_ts;
	/* data left behind waits from now on. TCP: the receive queue. UDP reads from reader_queue (past
	 * struct sock: only a probe read) refilled from sk_receive_queue; both are charged to sk_rmem_alloc
	 * (a direct load) until a read dequeues them: udp_rmem_release subtracts a dequeued datagram at once
	 * when the reader_queue is then empty and defers it only while the reader_queue still holds one, so
	 * sk_rmem_alloc > 0 exactly when a datagram is left (or is being queued by another CPU right now:
	 * its wait then starts at this read instead of at its sk_data_ready, a few ns earlier). */
	__u32 left = proto == SL_IPPROTO_UDP ? (__u32)sk->sk_backlog.rmem_alloc.counter : sk->sk_receive_queue.qlen;
	st->read_ts = left ? now : 0;
	struct sl_key key = { .netns = st->netns, .dir = SL_READ, .l4proto = proto };
	pn_hist_add_slotted(&sl_hist_fast, proto == SL_IPPROTO_UDP, SL_NVAR, &sl_hist, &key, wait, cfg_t0_ns, cfg_t1_ns);
	__u32 netns = key.netns;
	if (wait > cfg_slow_ns) {
		char comm[16];
		bpf_get_current_comm(comm, sizeof(comm));
		sl_emit(sk, SL_EV_READ_SLOW, netns, wait, proto, bpf_get_current_pid_tgid() >> 32, comm);
	}
	return 0;
}

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(sl_sendmsg, const struct sock *sk, const struct msghdr *msg, const struct sk_buff *skb, int size_goal)
{
	struct sl_state *st = sl_state_get(sk, 1);
	if (!st || st->write_ts)
		return 0;
	st->write_ts = bpf_ktime_get_ns();
	sl_state_netns(st, sk);
	st->write_mark = BPF_CORE_READ((struct tcp_sock *)sk, write_seq);
	st->write_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(st->write_comm, sizeof(st->write_comm));
	return 0;
}

static __always_inline void sl_on_dev_queue(struct sk_buff *skb)
{
	struct sock *sk = skb->sk;
	if (!sk)
		return;
	__u8 state = sk->__sk_common.skc_state;
	if (state == SL_TCP_TIME_WAIT || state == SL_TCP_NEW_SYN_RECV || state == SL_TCP_LISTEN)
		return; /* mini sockets: not a struct sock */
	if (sk->sk_protocol != SL_IPPROTO_TCP)
		return;
	struct sl_state *st = sl_state_get(sk, 0);
	if (!st || !st->write_ts)
		return;
	unsigned char *head = skb->head;
	unsigned char *data = skb->data;
	__u16 th_off = skb->transport_header;
	if (th_off == (__u16)~0U)
		return;
	struct tcphdr th;
	if (bpf_probe_read_kernel(&th, sizeof(th), head + th_off))
		return;
	__s64 payload = (__s64)skb->len - ((__s64)th_off - (__s64)(data - head)) - th.doff * 4;
	if (payload <= 0)
		return; /* ACK, window probe */
	__u32 end_seq = bpf_ntohl(th.seq) + (__u32)payload;
	if ((__s32)(end_seq - st->write_mark) <= 0)
		return; /* older data (e.g. a retransmit) */
	__u64 wait = bpf_ktime_get_ns() - st->write_ts;
	st->write_ts = 0;
	struct sl_key hkey = { .netns = st->netns, .dir = SL_WRITE, .l4proto = SL_IPPROTO_TCP };
	pn_hist_add_slotted(&sl_hist_fast, 2, SL_NVAR, &sl_hist, &hkey, wait, cfg_t0_ns, cfg_t1_ns);
	__u32 netns = hkey.netns;
	if (wait > cfg_slow_ns) {
		char comm[16];
		__builtin_memcpy(comm, st->write_comm, 16);
		sl_emit(sk, SL_EV_WRITE_SLOW, netns, wait, SL_IPPROTO_TCP, st->write_pid, comm);
	}
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(sl_dev_queue, struct sk_buff *skb)
{
	sl_on_dev_queue(skb);
	PN_CHAIN_NEXT(sl_next_dev_queue);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
