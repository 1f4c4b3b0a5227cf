// The kernel matrix's rendering (benchmarks/kernel/matrix.ts) and the row it adds to RESULTS.md's
// Machine table (benchmarks/lib/results.ts `machineRows`): shown while the section passed, gone when
// the section failed, so a failed VM run never shows "checks passed". The facts here are hand-written
// in the shape test/kernel/scenarios.ts produces; the real ones come from benchmarks/kernel/vm.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { comparedCounts, matrixTable, resultText, vmMachineRow } from '../../benchmarks/kernel/matrix.ts';
import { renderResults, type Section } from '../../benchmarks/lib/results.ts';
import { matrixRows } from '../kernel/facts.ts';
import type { Fact } from '../kernel/scenarios.ts';

const load = (name: string, info: Record<string, unknown>, state = 'running'): Fact => ({
  id: `probe.${name}`,
  what: `${name}: loads`,
  expected: { tracefs: { available: true, partly: false }, state, unavailable: false, promisedLoaded: true },
  actual: { tracefs: { available: true, partly: false }, state, unavailable: false, promisedLoaded: true },
  info,
});

const facts = (variant: string): Fact[] => [
  load('packetloss', { available: true, reason: null, variant, fellBackToRawTp: [] }),
  load(
    'kernellatency',
    { available: true, reason: 'partly: sk_data_ready does not exist in this kernel', variant: 'three' },
    'degraded',
  ),
  {
    id: 'probe.netdev',
    what: 'netdev: availability',
    expected: { available: true, partly: false },
    actual: { available: true, partly: false },
    info: { available: true, reason: null, variant: null },
  },
  {
    id: 'packetloss.reason.udp4.noports',
    what: 'UDP to a closed port == Udp NoPorts',
    expected: { kernel: 37, podnet: 37 },
    actual: { kernel: 37, podnet: 37 },
    info: { variant: 'reason' },
  },
  {
    id: 'procfs.netdev',
    what: 'netdev == ip -s -j link',
    expected: { quiet: true, diff: [] },
    actual: { quiet: true, diff: [] },
  },
];

test('matrixTable: one row per probe and kernel, kernels side by side, with variant, result and counts', () => {
  const t = matrixTable([
    { kernel: '6.18.0 (host)', facts: facts('reason (pl_kfree_skb4)') },
    { kernel: '6.1.0-40-cloud-amd64 (VM, TCG)', facts: facts('reason (pl_kfree_skb3)') },
  ]);
  assert.deepEqual(
    t.rows.map((r) => r.slice(0, 4)),
    [
      ['packetloss', '6.18.0 (host)', 'reason (pl_kfree_skb4) (checked: reason)', 'loaded'],
      ['packetloss', '6.1.0-40-cloud-amd64 (VM, TCG)', 'reason (pl_kfree_skb3) (checked: reason)', 'loaded'],
      [
        'kernellatency',
        '6.18.0 (host)',
        'three',
        'degraded: partly: sk_data_ready does not exist in this kernel',
      ],
      [
        'kernellatency',
        '6.1.0-40-cloud-amd64 (VM, TCG)',
        'three',
        'degraded: partly: sk_data_ready does not exist in this kernel',
      ],
      ['netdev', '6.18.0 (host)', '–', 'available'],
      ['netdev', '6.1.0-40-cloud-amd64 (VM, TCG)', '–', 'available'],
    ],
  );
  assert.equal(t.rows[0]?.[4], 'packetloss.reason.udp4.noports: kernel 37, podnet 37');
  assert.equal(t.rows[4]?.[4], 'procfs.netdev: quiet true, diff []');
  assert.equal(t.rows[2]?.[4], '–');
});

test('resultText: unavailable with its reason; a tp_btf refused at load is named', () => {
  const rows = matrixRows([
    {
      ...load('dns', { available: false, reason: 'no BTF: /sys/kernel/btf/vmlinux missing', variant: null }),
    },
    load('netiftxlat', { available: true, reason: null, variant: 'nt_xmit', fellBackToRawTp: ['nt_xmit'] }),
  ]);
  assert.equal(resultText(rows[0]!), 'unavailable: no BTF: /sys/kernel/btf/vmlinux missing');
  assert.equal(resultText(rows[1]!), 'loaded (tp_btf refused at load, raw_tp twin used: nt_xmit)');
});

test('comparedCounts: a bare value alone, an empty string named', () => {
  const f = (actual: unknown): Fact => ({ id: 'x', what: 'w', expected: actual, actual });
  assert.equal(comparedCounts(f(89)), '89');
  assert.equal(comparedCounts(f('')), '(empty)');
  assert.equal(comparedCounts(f({ a: { b: 1 }, c: 'x' })), 'a.b 1, c x');
});

test('comparedCounts: count fields of info are listed, times are not', () => {
  assert.equal(
    comparedCounts({
      id: 'tcpretrans.segs',
      what: 'w',
      expected: { retransmitted: true, equal: true },
      actual: { retransmitted: true, equal: true },
      info: { kernel: 12, podnet: 12, sumMs: 3.2 },
    }),
    'retransmitted true, equal true, kernel 12, podnet 12',
  );
});

const machine = {
  date: 'd',
  os: 'o',
  kernel: '6.18.0',
  cpus: 2,
  cpuModel: 'c',
  memoryGiB: 1,
  node: 'v24',
  loadavg: [0, 0, 0],
  iperf3: 'i',
  nodeExporter: 'n',
};
const section = (error?: string): Section => ({
  id: 'kernel-vm',
  title: 'Kernel matrix',
  commands: ['node benchmarks/kernel/vm.ts'],
  tables: [],
  targets: [],
  notes: [],
  machineRows: [vmMachineRow('6.1.0-40-cloud-amd64', '2026-12-07T01:00:00.000Z', 'Kernel matrix')],
  ...(error ? { error } : {}),
});
const opts = { command: 'node benchmarks/run.ts', quick: false, durationS: 1 };

test('the Machine table has the VM kernel row while the section passed, none when it failed', () => {
  const machineTable = (md: string) =>
    md.slice(md.indexOf('## Machine'), md.indexOf('\n\n', md.indexOf('| item')));
  const ok = machineTable(renderResults(machine, [section()], opts));
  assert.match(
    ok,
    /\n\| second kernel \(VM, TCG\) \| 6\.1\.0-40-cloud-amd64: kernel-reach checks passed at 2026-12-07T01:00:00\.000Z \(section «Kernel matrix»\) \|/,
  );
  assert.match(ok, /\| kernel \| 6\.18\.0 \|/);
  const failed = machineTable(renderResults(machine, [section('exited with code 1: x')], opts));
  assert.doesNotMatch(failed, /second kernel/);
  assert.match(failed, /\| node_exporter \| n \|/);
});
