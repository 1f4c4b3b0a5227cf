// The image's steps in a clean Debian 12 root (deploy/image/test-rootfs.sh): debootstrap minbase, the
// Containerfile's COPY lines, `npm ci --omit=dev`, its build stage (`npm ci`, scripts/build.sh → dist/), its
// RUN commands verbatim in the chroot, then podnet via chroot as uid 65532 with only the listed capabilities,
// through the ENTRYPOINT's argv (preflight, a missing capability named, `podnet probes`, a short `podnet run`
// whose probes load, no .ts file in the image, and a `podnet run` that loads no .ts module). ~2-3 min on the
// development machine; needs the Debian mirror and the npm registry, as `npm test`'s bootstrap does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

test('the image built in a debootstrap root runs podnet as uid 65532 with only the listed capabilities', (t) => {
  assert.equal(process.getuid?.(), 0, 'debootstrap and chroot need root');
  const r = spawnSync('sh', [join(import.meta.dirname, '..', '..', 'deploy', 'image', 'test-rootfs.sh')], {
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const out = `${r.stdout}\n${r.stderr}`;
  for (const line of r.stdout
    .split('\n')
    .filter((l) => /^(ok|FAIL) |passed|^debootstrap:|^image root|^ {2}\w/.test(l)))
    t.diagnostic(line);
  assert.equal(r.status, 0, out.slice(-6000));
  const m = /^(\d+) passed, (\d+) failed$/m.exec(r.stdout);
  assert.ok(m, 'no summary line');
  assert.equal(Number(m[2]), 0);
  assert.ok(Number(m[1]) >= 22, `only ${m[1]} checks ran`);
});
