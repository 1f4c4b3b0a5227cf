// packetloss variant choice: `auto` follows kfree_skb's argument count (no kernel older than 5.17 is
// available here, so the count is given; what this kernel has is read from kfree_skb's format file in
// tracefs, not from podnet's BTF reader), the switches force either variant, and availability reports
// exactly the program the loader will load for it.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { dropVariant, packetlossProbe, variantForArity } from '../../probes/packetloss/packetloss.ts';
import { tracepointFormat } from './tracefs.ts';

afterEach(() => {
  delete process.env['PODNET_PACKETLOSS_VARIANT'];
});

test('auto: location before 5.17 (kfree_skb(skb, location), 2 args), reason from 3 args', () => {
  assert.equal(variantForArity(2), 'location');
  assert.equal(variantForArity(3), 'reason');
  assert.equal(variantForArity(4), 'reason');
  // 5.17+: kfree_skb records the drop reason (a `reason` field next to `location`)
  const format = tracepointFormat('kfree_skb');
  assert.match(String(format), /\bvoid \* location;/);
  assert.equal(
    dropVariant('auto'),
    /\benum skb_drop_reason reason;/.test(String(format)) ? 'reason' : 'location',
  );
});

test('config and PODNET_PACKETLOSS_VARIANT force a variant; the environment wins', async () => {
  assert.equal(dropVariant('location'), 'location');
  process.env['PODNET_PACKETLOSS_VARIANT'] = 'location';
  assert.equal(dropVariant('reason'), 'location');
  const a = await packetlossProbe.availability();
  assert.equal(a.available, true, a.reason);
  assert.equal(a.variant, 'location (pl_kfree_skb2_raw)');
  process.env['PODNET_PACKETLOSS_VARIANT'] = 'reason';
  assert.equal(dropVariant('location'), 'reason');
  assert.match(String((await packetlossProbe.availability()).variant), /^reason \(pl_kfree_skb[34]\)$/);
  process.env['PODNET_PACKETLOSS_VARIANT'] = 'auto';
  assert.equal(dropVariant('location'), 'location', 'auto in the environment leaves the config choice');
  process.env['PODNET_PACKETLOSS_VARIANT'] = 'bogus';
  assert.throws(
    () => dropVariant('auto'),
    /^Error: PODNET_PACKETLOSS_VARIANT: got "bogus", expected auto, reason or location$/,
  );
});
