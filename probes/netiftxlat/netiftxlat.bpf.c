// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * netiftxlat: transmit latency at the device layer, per netns of the transmitting device.
 *
 *   qdisc wait  = qdisc:qdisc_enqueue (the packet was queued in the device's qdisc)
 *                 → net:net_dev_start_xmit (dequeued and handed to the driver). A packet that never
 *                 waits in a qdisc (device without one — noqueue: veth, loopback by default — or the
 *                 bypass of an empty work-conserving qdisc) counts as a wait of 0.
 *   driver time = net:net_dev_start_xmit → net:net_dev_xmit (ndo_start_xmit returned).
 *
 * Two hooks per packet on the common path: qdisc_enqueue fires only for packets that really enter a
 * qdisc, which keep the enqueue time in an LRU hash keyed by the skb pointer (bounded; deleted at
 * start_xmit, evicted if the qdisc drops the packet; the skb head pointer guards against a reused skb).
 * start_xmit looks at that hash only when the device's TX queue has a qdisc that enqueues.
 * start_xmit → xmit is synchronous on one CPU: a per-CPU ring of 4 slots (nested devices) holds it,
 * matched by skb pointer, so an unpaired start_xmit (seen while the programs are being attached) cannot
 * desynchronise it. Both histograms of a netns share one map value, updated once per packet at
 * net_dev_xmit; a qdisc wait of 0 is not written (userspace adds driver.count - qdisc.count to the
 * qdisc histogram's first slot). Slow events NETIFTXLAT_QDISC / NETIFTXLAT_XMIT over `cfg_slow_ns` (default 100 ms).
 */
#include "podnet.bpf.h"
#include "pn_watch.bpf.h"
#include "pn_hist.bpf.h"
#include "pn_slot.bpf.h"
#include "pn_tuple.bpf.h"

#define NT_EV_QDISC 1
#define NT_EV_XMIT 2
#define NT_DEPTH 4

const volatile __u64 cfg_slow_ns = 100000000ULL;
const volatile __u64 cfg_t0_ns = 1000000ULL;
const volatile __u64 cfg_t1_ns = 100000000ULL;

struct nt_val {
	struct pn_hist qdisc;  /* qdisc_enqueue → net_dev_start_xmit (0 without a qdisc wait) */
	struct pn_hist driver; /* net_dev_start_xmit → net_dev_xmit */
};

static struct nt_val nt_zero;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* netns */
	__type(value, struct nt_val);
} nt_hist SEC(".maps");

/* The same values of netns with a slot (pn_slot.bpf.h), indexed by slot (one variant). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PN_SLOTS);
	__type(key, __u32);
	__type(value, struct nt_val);
} nt_hist_fast SEC(".maps");

struct nt_q {
	__u64 ts;
	__u64 head;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sk_buff * */
	__type(value, struct nt_q);
} nt_queued SEC(".maps");

struct nt_slot {
	__u64 skb;
	__u64 ts;     /* start_xmit */
	__u64 queued; /* qdisc_enqueue, = ts when the packet did not wait in a qdisc */
};

struct nt_cpu {
	struct nt_slot xmit[NT_DEPTH]; /* start_xmit in progress (nested devices), matched by skb */
	__u32 next;                    /* next xmit slot to use (mod NT_DEPTH) */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct nt_cpu);
} nt_percpu SEC(".maps");

struct nt_event {
	struct pn_event_hdr hdr; /* @0 */
	__u64 latency_ns;        /* @16 */
	__u32 ifindex;           /* @24 */
	__u32 len;               /* @28 skb->len */
	struct pn_tuple tuple;   /* @32 packet direction: s* = source */
	__u32 raw_netns;         /* @72 netns inode even when not watched (hdr.netns is then 0) */
	__u32 pad;               /* @76 */
};
PN_LAYOUT(nt_event); /* TypeScript layout generated into netiftxlat.layout.gen.ts */

static __always_inline struct nt_cpu *nt_cpu(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&nt_percpu, &z);
}

/* Whether the packet's TX queue has a qdisc that enqueues (not noqueue). */
static __always_inline int nt_has_qdisc(int btf, const struct sk_buff *skb, const struct net_device *dev)
{
	__u16 qm = PN_RD(btf, skb, queue_mapping);
	if (qm == 0 && btf) {
		/* single-queue devices (veth, most virtual devices): direct BTF loads */
		struct netdev_queue *txq0 = dev->_tx;
		if (!txq0)
			return 0;
		struct Qdisc *q = txq0->qdisc;
		return q && q->enqueue;
	}
	/* Queue `qm` by address arithmetic on a value read with a probe read (a scalar): the 6.1 verifier
	 * refuses arithmetic with a variable offset on a BTF pointer ("math between ptr_ pointer and register
	 * with unbounded min value", Debian 6.1 in test/kernel/), which the tp_btf program did before. */
	struct netdev_queue *txq = BPF_CORE_READ(dev, _tx);
	if (!txq)
		return 0;
	txq = (void *)txq + (__u64)qm * bpf_core_type_size(struct netdev_queue);
	struct Qdisc *q = BPF_CORE_READ(txq, qdisc);
	if (!q)
		return 0;
	return BPF_CORE_READ(q, enqueue) != 0;
}

static __always_inline void nt_emit(const struct sk_buff *skb, const struct net_device *dev, __u32 type, __u32 netns,
				    __u32 raw_netns, __u64 lat, __u32 len)
{
	if (!pn_rate_allow(netns, type))
		return;
	struct nt_event *e = pn_reserve(sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	pn_fill_hdr(&e->hdr, type, netns);
	e->latency_ns = lat;
	e->raw_netns = raw_netns;
	e->ifindex = BPF_CORE_READ(dev, ifindex);
	e->len = len;
	if (skb)
		pn_tuple_from_skb(skb, &e->tuple);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int nt_on_enqueue(int btf, struct sk_buff *skb)
{
	__u64 key = (__u64)skb;
	struct nt_q v = { .ts = bpf_ktime_get_ns(), .head = (__u64)PN_RD(btf, skb, head) };
	bpf_map_update_elem(&nt_queued, &key, &v, BPF_ANY);
	return 0;
}

static __always_inline int nt_on_start_xmit(int btf, const struct sk_buff *skb, const struct net_device *dev)
{
	struct nt_cpu *c = nt_cpu();
	if (!c)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 key = (__u64)skb;
	__u64 queued = now; /* did not wait in a qdisc */
	if (nt_has_qdisc(btf, skb, dev)) {
		struct nt_q *q = bpf_map_lookup_elem(&nt_queued, &key);
		if (q) {
			if (q->head == (__u64)PN_RD(btf, skb, head) && q->ts <= now)
				queued = q->ts;
			bpf_map_delete_elem(&nt_queued, &key);
		}
	}
	__u32 i = c->next & (NT_DEPTH - 1);
	c->xmit[i].skb = key;
	c->xmit[i].ts = now;
	c->xmit[i].queued = queued;
	c->next = i + 1;
	/* the histogram is updated at net_dev_xmit; the event needs the skb, still valid here */
	if (now - queued > cfg_slow_ns) {
		__u32 raw = pn_dev_netns_rd(btf, dev);
		nt_emit(skb, dev, NT_EV_QDISC, pn_watch_key(raw), raw, now - queued, PN_RD(btf, skb, len));
	}
	return 0;
}

static __always_inline int nt_on_xmit(int btf, struct sk_buff *skb, struct net_device *dev, unsigned int len)
{
	struct nt_cpu *c = nt_cpu();
	if (!c)
		return 0;
	/* newest slot first: a stale slot (e.g. a start_xmit seen while attaching) never wins */
	struct nt_slot *s = NULL;
	__u32 last = c->next;
#pragma unroll
	for (int k = 1; k <= NT_DEPTH; k++) {
		struct nt_slot *x = &c->xmit[(last - k) & (NT_DEPTH - 1)];
		if (x->skb == (__u64)skb) {
			s = x;
			break;
		}
	}
	if (!s)
		return 0;
	__u64 lat = bpf_ktime_get_ns() - s->ts;
	__u64 qlat = s->ts - s->queued;
	s->skb = 0;
	__u32 raw = pn_dev_netns_rd(btf, dev);
	__u32 netns = raw;
	struct nt_val *v = pn_slot_value(&nt_hist_fast, pn_slot_of(raw), 0, 1);
	if (!v && raw)
		v = bpf_map_lookup_elem(&nt_hist, &netns);
	if (!v) {
		netns = pn_watch_key(raw);
		v = pn_counter_get(&nt_hist, &netns, &nt_zero);
		if (!v)
			return 0;
	}
	/* a packet that did not wait in a qdisc is not recorded here (fewer cache lines touched per packet):
	 * userspace counts it as a wait of 0, from driver.count - qdisc.count (both per packet at this hook) */
	if (qlat)
		pn_hist_record(&v->qdisc, qlat, cfg_t0_ns, cfg_t1_ns);
	pn_hist_record(&v->driver, lat, cfg_t0_ns, cfg_t1_ns);
	if (lat > cfg_slow_ns)
		nt_emit(NULL, dev, NT_EV_XMIT, netns, raw, lat, len); /* the skb may be freed: no tuple */
	return 0;
}

/* tp_btf programs (direct BTF loads) and raw_tp twins (used where tp_btf cannot load or attach) */
SEC("tp_btf/qdisc_enqueue")
int BPF_PROG(nt_enqueue, struct Qdisc *qdisc, const struct netdev_queue *txq, struct sk_buff *skb)
{
	return nt_on_enqueue(1, skb);
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(nt_start_xmit, const struct sk_buff *skb, const struct net_device *dev)
{
	return nt_on_start_xmit(1, skb, dev);
}

SEC("tp_btf/net_dev_xmit")
int BPF_PROG(nt_xmit, struct sk_buff *skb, int rc, struct net_device *dev, unsigned int len)
{
	return nt_on_xmit(1, skb, dev, len);
}

SEC("raw_tp/qdisc_enqueue")
int BPF_PROG(nt_enqueue_raw, struct Qdisc *qdisc, const struct netdev_queue *txq, struct sk_buff *skb)
{
	return nt_on_enqueue(0, skb);
}

SEC("raw_tp/net_dev_start_xmit")
int BPF_PROG(nt_start_xmit_raw, const struct sk_buff *skb, const struct net_device *dev)
{
	return nt_on_start_xmit(0, skb, dev);
}

SEC("raw_tp/net_dev_xmit")
int BPF_PROG(nt_xmit_raw, struct sk_buff *skb, int rc, struct net_device *dev, unsigned int len)
{
	return nt_on_xmit(0, skb, dev, len);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
