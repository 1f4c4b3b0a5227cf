// A verifier rejection surfaces the verifier log: strict mode throws it; default mode disables the
// rejected program (close, reopen, retry) and keeps the valid one running.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { BpfError } from '../../receiver/bpf/libbpf.ts';
import { type BpfCollection, BpfSpec } from '../../receiver/bpf/object.ts';
import { REJECT_OBJECT } from './selftest-object.ts';

const open: BpfCollection[] = [];
after(() => {
  for (const c of open) c.close();
});

test('strict load throws a BpfError carrying errno, the libbpf message and the verifier log', () => {
  const spec = BpfSpec.fromFile(REJECT_OBJECT);
  let err: unknown;
  try {
    open.push(spec.load({ strict: true }));
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof BpfError, `expected BpfError, got ${String(err)}`);
  assert.equal(err.operation, 'bpf_object__load(reject)');
  assert.equal(err.errno, 13);
  assert.equal(err.code, 'EACCES');
  assert.ok(err.libbpfMessage.length > 0);
  assert.match(err.log, /-- BEGIN PROG LOAD LOG --/);
  assert.match(err.log, /invalid mem access 'map_value_or_null'/);
  assert.match(err.message, /verifier: .*invalid mem access 'map_value_or_null'/);
  assert.deepEqual(err.programs, ['bad_deref']);
});

test('default load retries without the rejected program; the reason carries the verifier line', () => {
  const coll = BpfSpec.fromFile(REJECT_OBJECT).load();
  open.push(coll);
  const st = coll.attach();
  const bad = coll.program('bad_deref');
  assert.equal(bad.state, 'unavailable');
  assert.match(bad.reason ?? '', /verifier: .*invalid mem access 'map_value_or_null'/);
  assert.match(bad.log ?? '', /BEGIN PROG LOAD LOG/);
  assert.equal(coll.program('good_count').state, 'attached');
  assert.equal(st.state, 'degraded');
  assert.match(st.reason ?? '', /^bad_deref: load failed/);
});
