// BTF helpers against the kernel's own views: tracefs print formats (enum names), bpftool's raw BTF
// dump (struct layouts, tracepoint prototypes).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Btf, dropReasonNames, resetReasonNames, withVmlinuxBtf } from '../../receiver/bpf/btf.ts';
import { ensureTracefs } from '../../receiver/bpf/hooks.ts';
import { BpfSpec } from '../../receiver/bpf/object.ts';
import { SELFTEST_OBJECT } from './selftest-object.ts';

/** `{ value, "NAME" }` pairs of __print_symbolic in a tracepoint's print fmt. */
function printSymbolic(event: string): Map<number, string> {
  const fmt = readFileSync(`/sys/kernel/tracing/events/${event}/format`, 'utf8');
  const out = new Map<number, string>();
  for (const m of fmt.matchAll(/\{\s*(-?\d+),\s*"([A-Z0-9_]+)"\s*\}/g)) out.set(Number(m[1]), m[2]!);
  return out;
}

let raw: string | undefined;
function bpftoolRaw(): string {
  raw ??= execFileSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'raw'], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  return raw;
}

test('drop and reset reason names equal the tracefs print formats', () => {
  assert.ok(ensureTracefs());
  const drop = dropReasonNames();
  const fmt = printSymbolic('skb/kfree_skb');
  assert.ok(fmt.size > 50, 'kfree_skb print fmt has no symbol table');
  for (const [v, name] of fmt) assert.equal(drop.get(v), name, `reason ${v}`);
  assert.equal([...drop.values()].includes('NO_SOCKET'), true);
  const rst = resetReasonNames();
  const rfmt = printSymbolic('tcp/tcp_send_reset');
  assert.ok(rfmt.size > 5, 'tcp_send_reset print fmt has no symbol table');
  for (const [v, name] of rfmt) assert.equal(rst.get(v), name, `reset reason ${v}`);
});

test('tracepoint argument counts and struct layouts agree with bpftool', () => {
  const text = bpftoolRaw();
  withVmlinuxBtf((btf) => {
    for (const tp of ['kfree_skb', 'tcp_send_reset', 'tcp_receive_reset', 'net_dev_xmit', 'softirq_entry']) {
      // [id] TYPEDEF 'btf_trace_x' type_id=P ; [P] PTR '(anon)' type_id=F ; [F] FUNC_PROTO '(anon)' ret_type_id=.. vlen=N
      const td = new RegExp(`^\\[\\d+\\] TYPEDEF 'btf_trace_${tp}' type_id=(\\d+)$`, 'm').exec(text);
      assert.ok(td, `no typedef for ${tp}`);
      const ptr = new RegExp(`^\\[${td[1]}\\] PTR '\\(anon\\)' type_id=(\\d+)$`, 'm').exec(text);
      const proto = new RegExp(
        `^\\[${ptr?.[1]}\\] FUNC_PROTO '\\(anon\\)' ret_type_id=\\d+ vlen=(\\d+)$`,
        'm',
      ).exec(text);
      assert.equal(btf.tracepointArgs(tp), Number(proto?.[1]) - 1, tp);
    }
    assert.equal(btf.tracepointArgs('podnet_no_such_tp'), null);

    const layout = btf.structLayout('bpf_prog_info');
    const head = /^\[(\d+)\] STRUCT 'bpf_prog_info' size=(\d+) vlen=\d+$/m.exec(text);
    assert.equal(layout.size, Number(head?.[2]));
    const after = text.slice(text.indexOf(head![0]));
    for (const f of ['run_time_ns', 'run_cnt', 'id', 'name']) {
      const m = new RegExp(`^\\s+'${f}' type_id=\\d+ bits_offset=(\\d+)`, 'm').exec(after);
      assert.equal(layout.fields.get(f)?.offset, Number(m?.[1]) / 8, f);
    }
    // anonymous unions are flattened: sk_buff.len is reachable
    assert.ok(btf.structLayout('sk_buff').fields.get('len'));
    assert.ok(btf.hasFunc('tcp_sendmsg'));
  });
});

test('object BTF: .rodata DATASEC layout gives tunable offsets (not hard-coded)', () => {
  const spec = BpfSpec.fromFile(SELFTEST_OBJECT);
  const r = spec.rodata;
  assert.deepEqual(r.get('pn_cfg_rate_limit'), { offset: r.get('pn_cfg_rate_limit')!.offset, size: 4 });
  assert.equal(r.get('pn_cfg_rate_window_ns')?.size, 8);
  assert.equal(r.get('pn_cfg_capture_stacks')?.size, 1);
  // offsets are distinct and within the section
  const offs = [...r.values()].map((v) => v.offset);
  assert.equal(new Set(offs).size, offs.length);
  const vm = Btf.vmlinux();
  vm.close();
  assert.throws(() => vm.findId('sk_buff', 4), /after close/);
});
