// Probe before load: programs whose hook this kernel lacks are reported unavailable with a reason while
// the others load and run; tp_btf variants are chosen by the BTF prototype arity.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { withVmlinuxBtf } from '../../receiver/bpf/btf.ts';
import { ensureTracefs, progTypeAllowed } from '../../receiver/bpf/hooks.ts';
import { type BpfCollection, BpfSpec } from '../../receiver/bpf/object.ts';
import { programInfo } from '../../receiver/bpf/stats.ts';
import { SELFTEST_OBJECT } from './selftest-object.ts';

const open: BpfCollection[] = [];
after(() => {
  for (const c of open) c.close();
});

/** Kernel facts from tools other than our code. */
function kernelHasKprobes(): boolean {
  return (
    execFileSync('sh', ['-c', 'zcat /proc/config.gz 2>/dev/null | grep -c "^CONFIG_KPROBES=y" || true'], {
      encoding: 'utf8',
    }).trim() === '1'
  );
}

test('missing hooks degrade the object; the kfree_skb counter still loads and attaches', () => {
  assert.ok(ensureTracefs(), 'tracefs must be mountable to tell a missing tracepoint from missing tracefs');
  const kfreeArgs = withVmlinuxBtf((b) => b.tracepointArgs('kfree_skb'));
  const coll = BpfSpec.fromFile(SELFTEST_OBJECT).load({
    programs: { on_kfree_skb: { tpArgs: 4 }, on_kfree_skb_v3: { tpArgs: 3 } },
  });
  open.push(coll);
  const st = coll.attach();
  const by = new Map(st.programs.map((p) => [p.name, p]));

  // the variant matching this kernel's prototype is attached, the other skipped (not a degradation)
  const winner = kfreeArgs === 4 ? 'on_kfree_skb' : 'on_kfree_skb_v3';
  const loser = kfreeArgs === 4 ? 'on_kfree_skb_v3' : 'on_kfree_skb';
  assert.equal(by.get(winner)?.state, 'attached');
  assert.equal(by.get(loser)?.state, 'skipped');
  assert.match(by.get(loser)?.reason ?? '', /prototype variant/);

  // the kernel really has it loaded (bpftool is the ground truth)
  const id = programInfo(coll.program(winner).fd).id;
  const shown = JSON.parse(
    execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(id)], { encoding: 'utf8' }),
  );
  assert.equal(shown.id, id);
  assert.equal(shown.type, 'tracing');

  assert.equal(by.get('on_missing_tp_btf')?.state, 'unavailable');
  assert.match(by.get('on_missing_tp_btf')?.reason ?? '', /podnet_no_such_tracepoint does not exist/);
  assert.equal(by.get('on_missing_tracepoint')?.state, 'unavailable');
  assert.match(by.get('on_missing_tracepoint')?.reason ?? '', /podnet_no_such\/event does not exist/);

  if (progTypeAllowed(26)) {
    assert.equal(by.get('on_tcp_sendmsg_fentry')?.state, 'attached');
  } else {
    assert.equal(by.get('on_tcp_sendmsg_fentry')?.state, 'unavailable');
    assert.match(by.get('on_tcp_sendmsg_fentry')?.reason ?? '', /fentry programs are not allowed/);
  }
  if (kernelHasKprobes()) {
    assert.equal(by.get('on_tcp_sendmsg_kprobe')?.state, 'attached');
  } else {
    assert.equal(by.get('on_tcp_sendmsg_kprobe')?.state, 'unavailable');
    assert.match(by.get('on_tcp_sendmsg_kprobe')?.reason ?? '', /attach failed: .*kprobe/);
  }
  assert.equal(st.state, 'degraded');
  assert.match(st.reason ?? '', /on_missing_tp_btf: /);
  assert.equal(coll.probeStatus().state, 'degraded');
});

test('no prototype variant matching the kernel: the hook is unavailable, the object too', () => {
  const coll = BpfSpec.fromFile(SELFTEST_OBJECT).load({
    programs: {
      on_kfree_skb: { tpArgs: 99 },
      on_kfree_skb_v3: { tpArgs: { max: 1 } },
      on_tcp_sendmsg_kprobe: { enabled: false },
      on_tcp_sendmsg_fentry: { enabled: false },
      on_missing_tp_btf: { enabled: false },
      on_missing_tracepoint: { enabled: false },
    },
  });
  open.push(coll);
  const st = coll.attach();
  assert.equal(st.state, 'unavailable');
  for (const n of ['on_kfree_skb', 'on_kfree_skb_v3']) {
    const p = st.programs.find((x) => x.name === n);
    assert.equal(p?.state, 'unavailable');
    assert.match(p?.reason ?? '', /no prototype variant of tp_btf\/kfree_skb matches/);
  }
  coll.close();
  assert.equal(coll.status().state, 'unavailable');
});

test('configuration errors name the problem', () => {
  const spec = BpfSpec.fromFile(SELFTEST_OBJECT);
  assert.throws(() => spec.load({ rodata: { no_such_var: 1 } }), /no \.rodata variable 'no_such_var'/);
  assert.throws(() => spec.load({ maxEntries: { nope: 1 } }), /no map 'nope'/);
  assert.throws(() => spec.load({ programs: { nope: {} } }), /has no program nope/);
  assert.throws(() => BpfSpec.fromFile('/nonexistent/x.bpf.o'), /cannot read BPF object/);
  assert.throws(
    () => BpfSpec.fromBuffer(Buffer.from('not an ELF object at all'), 'garbage'),
    (e: Error & { code?: string; errno?: number }) => e.name === 'BpfError' && e.errno === 4001,
  );
});

test('libbpf loading: PODNET_LIBBPF first, a clear error listing what was tried', async () => {
  const { libbpfCandidates, loadFirst, libbpfInfo } = await import('../../receiver/bpf/libbpf.ts');
  const saved = process.env['PODNET_LIBBPF'];
  process.env['PODNET_LIBBPF'] = '/opt/custom/libbpf.so.1';
  try {
    assert.equal(libbpfCandidates()[0], '/opt/custom/libbpf.so.1');
  } finally {
    if (saved === undefined) delete process.env['PODNET_LIBBPF'];
    else process.env['PODNET_LIBBPF'] = saved;
  }
  assert.throws(
    () => loadFirst(['/nonexistent/libbpf.so.1', 'libpodnet-no-such-lib.so.9']),
    /cannot load libbpf[\s\S]*Tried:\n {2}\/nonexistent\/libbpf\.so\.1: [\s\S]*\n {2}libpodnet-no-such-lib\.so\.9: /,
  );
  assert.match(libbpfInfo().version, /^1\.\d+$/);
});

test('open through libbpf’s file reader (bpf_object__open_file) and from memory', () => {
  const viaFile = BpfSpec.openFile(SELFTEST_OBJECT.pathname);
  const viaMem = BpfSpec.fromBuffer(readFileSync(SELFTEST_OBJECT), 'selftest');
  assert.deepEqual(
    viaFile.programs.map((p) => p.name),
    viaMem.programs.map((p) => p.name),
  );
  const coll = viaFile.load({
    programs: Object.fromEntries(viaFile.programs.map((p) => [p.name, { enabled: false }])),
  });
  open.push(coll);
  assert.ok(coll.map('drops').fd > 0);
  assert.equal(coll.status().state, 'unavailable');
  assert.equal(coll.status().reason, 'no program enabled');
  assert.throws(
    () => BpfSpec.openFile('/nonexistent/x.bpf.o'),
    (e: Error & { errno?: number }) => e.errno === 2,
  );
});
