// How benchmarks/suite/datapath.ts attributes BPF time when programs are chained (BPF_STATS charges a
// tail-called program's time to the program that called it): the per-hook sums and the perf split. The
// perf input has the shape of `perf script -F comm,pid,ip,sym` with call graphs on this kernel (leaf
// first; a tail-called program's frame replaces its caller's; __bpf_trace_<tp> tail-called away). Removing
// the innermost-program rule or the chain members' bodies fails it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hookCosts, progLayout } from '../../benchmarks/suite/datapath-hooks.ts';
import { splitSamples } from '../../benchmarks/suite/datapath-perf.ts';
import type { BpfRun } from '../../benchmarks/suite/datapath-stats.ts';

const sample = (comm: string, frames: string[]): string =>
  `${comm} 4242 \n${frames.map((f, i) => `\tffffffff8100${String(i).padStart(4, '0')} ${f}`).join('\n')}\n`;

test('perf split: the innermost program, the dispatch by the function that fired it, tc, other processes', () => {
  const script = [
    // inside a helper called by the tail-called member: charged to the member, not to the head
    sample('iperf3', [
      'ktime_get_mono_fast_ns',
      'bpf_prog_0123456789abcdef_kl_rx_socket',
      'bpf_trace_run1',
      'sock_def_readable',
    ]),
    sample('iperf3', ['bpf_prog_fedcba9876543210_sl_data_ready', 'bpf_trace_run1', 'sock_def_readable']),
    // a program run from inside another's helper (kfree_skb fired by a TC program's skb helper): the inner one
    sample('iperf3', [
      'bpf_prog_1111111111111111_pl_kfree_skb4',
      'bpf_trace_run4',
      'sk_skb_reason_drop',
      'bpf_skb_change_tail',
      'bpf_prog_2222222222222222_flow_ingress',
      'tcx_run',
    ]),
    // the tracepoint runner itself (BPF_STATS' clock reads land here when it is on)
    sample('iperf3', ['sched_clock', 'bpf_trace_run4', 'dev_hard_start_xmit', '__dev_queue_xmit']),
    sample('iperf3', ['tcx_run', 'sch_handle_ingress', '__netif_receive_skb_core']),
    sample('iperf3', ['udp_sendmsg', 'sock_sendmsg']),
    sample('node', ['bpf_prog_0123456789abcdef_kl_rx_socket', 'bpf_trace_run1']),
  ].join('\n');
  const s = splitSamples(script, 'iperf3');
  assert.equal(s.total, 6);
  assert.deepEqual([...s.progs].sort(), [
    ['kl_rx_socket', 1],
    ['pl_kfree_skb4', 1],
    ['sl_data_ready', 1],
  ]);
  assert.equal(s.dispatch, 2);
  assert.deepEqual([...s.dispatchByHook].sort(), [
    ['called from dev_hard_start_xmit', 1],
    ['tc ingress', 1],
  ]);
});

test('per hook: a chain is one dispatch, its members are bodies as many as the head ran', () => {
  const layout = progLayout({
    probes: [
      {
        name: 'socketlatency',
        details: {
          programs: [
            { name: 'sl_data_ready', section: 'tp_btf/sk_data_ready', state: 'attached' },
            { name: 'sl_recv_length', section: 'tp_btf/sock_recv_length', state: 'attached' },
          ],
        },
      },
      {
        name: 'kernellatency',
        details: {
          programs: [
            {
              name: 'kl_rx_socket',
              section: 'tp_btf/sk_data_ready',
              state: 'loaded',
              chainedAfter: 'sl_data_ready',
            },
            { name: 'kl_rx_socket_raw', section: 'raw_tp/sk_data_ready', state: 'loaded' },
          ],
        },
      },
      { name: 'flow', details: { programs: [{ name: 'flow_ingress', section: 'tc', state: 'loaded' }] } },
    ],
  });
  const run = {
    all: [
      ['sl_data_ready', 1000, 200_000],
      ['kl_rx_socket', 0, 0],
      ['kl_rx_socket_raw', 0, 0],
      ['sl_recv_length', 900, 150_000],
      ['flow_ingress', 2000, 250_000],
    ],
    layout,
  } as unknown as BpfRun;
  const byHook = new Map(hookCosts([run]).map((h) => [h.hook, h]));
  assert.deepEqual(byHook.get('sk_data_ready'), {
    hook: 'sk_data_ready',
    programs: 'sl_data_ready → kl_rx_socket',
    dispatches: 1000,
    bodies: 2000,
    ns: 200_000,
  });
  assert.equal(byHook.get('sock_recv_length')?.bodies, 900);
  assert.equal(byHook.get('tc ingress (veth)')?.dispatches, 2000);
  // the raw_tp twin never ran: no hook of its own
  assert.equal(byHook.has('sk_data_ready') && [...byHook.keys()].length, 3);
});
