/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * dns: the layouts shared between dns.bpf.c and the decoder (decode.ts reads them through the generated
 * dns.layout.gen.ts: `npm run build:bpf && npm run layouts:gen`). Little endian, host order unless said.
 * Keep every struct the TypeScript side reads here, in one place.
 */
#ifndef PN_DNS_H
#define PN_DNS_H

#define DNS_NAME_MAX 128 /* bytes of the question name kept (wire format: length-prefixed labels) */
#define DNS_MAX_PORTS 4

/* Event types (pn_event_hdr.type; also the rate-limit key). */
#define DNS_EV_SLOW 1
#define DNS_EV_FAILED 2
#define DNS_EV_TIMEOUT 3

/* dns_event.flags */
#define DNS_F_TRUNCATED 1 /* TC bit set in the response */
#define DNS_F_LATE 2      /* a response arrived after the timeout window */
#define DNS_F_REQUERY 4   /* timeout decided when the same (tuple, id) was sent again after the window */

/* A query waiting for its response, matched by (netns, tuple, DNS id). */
struct dns_key {
	__u32 netns;      /* @0  raw netns inode of the client */
	__u16 id;         /* @4  DNS message id (host order) */
	__u8 family;      /* @6  2 / 10 */
	__u8 l4proto;     /* @7  17 / 6 */
	__u8 client[16];  /* @8  network order, IPv4 in the first 4 bytes */
	__u8 server[16];  /* @24 */
	__u16 cport;      /* @40 host order */
	__u16 sport;      /* @42 */
};
_Static_assert(sizeof(struct dns_key) == 44, "dns_key layout is shared with decode.ts (dns.layout.gen.ts)");

struct dns_pending {
	__u64 ts_ns;               /* @0  first transmission (CLOCK_MONOTONIC) */
	__u32 netns;               /* @8  netns to count under (watched inode or 0) */
	__u16 qtype;               /* @12 question type (clamped: 0 = other) */
	__u8 name_len;             /* @14 bytes of `name` that are message bytes */
	__u8 sends;                /* @15 transmissions of this (tuple, id) within the window */
	__u8 name[DNS_NAME_MAX];   /* @16 question name, wire format, cut at DNS_NAME_MAX */
};
_Static_assert(sizeof(struct dns_pending) == 144, "dns_pending layout is shared with decode.ts (dns.layout.gen.ts)");

/* Counter keys: (netns, question type, response code, transport). */
struct dns_stat_key {
	__u32 netns;  /* @0 */
	__u16 qtype;  /* @4 */
	__u8 rcode;   /* @6 response code (header RCODE, 0-15); 0 in dns_counts */
	__u8 l4proto; /* @7 */
};
_Static_assert(sizeof(struct dns_stat_key) == 8, "dns_stat_key layout is shared with decode.ts (dns.layout.gen.ts)");

/* dns_counts values (per CPU): per (netns, qtype, l4proto). */
struct dns_count {
	__u64 queries;   /* query messages sent (retransmissions included) */
	__u64 timeouts;  /* timeouts decided in the kernel (late response, or re-sent after the window) */
};

/* dns_hists values (per CPU): pn_hist of the latency, then the truncated responses. */
struct dns_hist {
	struct pn_hist h;  /* @0 */
	__u64 truncated;   /* @352 */
};

struct dns_event {
	struct pn_event_hdr hdr;  /* @0 */
	__u64 latency_ns;         /* @16 response time - first transmission; 0 for a re-sent query */
	__u64 query_ts_ns;        /* @24 first transmission */
	struct dns_key k;         /* @32 k.netns = the raw netns inode of the client */
	__u16 qtype;              /* @76 */
	__u8 rcode;               /* @78 */
	__u8 flags;               /* @79 DNS_F_* */
	__u8 name_len;            /* @80 */
	__u8 sends;               /* @81 */
	__u8 pad[6];              /* @82 */
	__u8 name[DNS_NAME_MAX];  /* @88 */
};
_Static_assert(sizeof(struct dns_event) == 216, "dns_event layout is shared with decode.ts (dns.layout.gen.ts)");

#endif /* PN_DNS_H */
