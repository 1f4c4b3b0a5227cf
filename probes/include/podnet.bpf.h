/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The one include for every podnet BPF program: kernel types (vmlinux.h, CO-RE), libbpf's helper
 * headers, and podnet's shared pieces:
 *   pn_event.h         event header layout shared with the TypeScript decoders
 *   pn_ring.bpf.h      the object's event ring (`pn_events`) + self counters (`pn_stats`), reserve that
 *                      counts failures
 *   pn_netns.bpf.h     netns inode of a socket / skb (socket first, then device)
 *   pn_ratelimit.bpf.h per-(netns, type) event rate limit, suppressed events counted
 *   pn_stack.bpf.h     optional kernel stack capture (`pn_stacks`), failures counted
 *   pn_packet.bpf.h    L3/L4 addresses and ports from an skb
 * Tunables are `const volatile` globals in .rodata; userspace writes them before load
 * (receiver/bpf: `load({ rodata: { pn_cfg_rate_limit: 10 } })`).
 */
#ifndef PODNET_BPF_H
#define PODNET_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "pn_event.h"
#include "pn_ring.bpf.h"
#include "pn_netns.bpf.h"
#include "pn_ratelimit.bpf.h"
#include "pn_stack.bpf.h"
#include "pn_packet.bpf.h"

#endif /* PODNET_BPF_H */
