// Builds an OCI image-layout tar from the host's static busybox, with two images sharing one layer:
// `pause` (sleep forever) and `busybox` (sh). No registry needed: import it with `ctr images import`.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BuiltImage {
  /** Path of the OCI-layout tar. */
  readonly tarPath: string;
  /** `localhost/podnet/pause:1` — use as the CRI sandbox_image. */
  readonly pause: string;
  /** `localhost/podnet/busybox:1` — a shell and 269 busybox applets (httpd, wget, ip, nc, sleep, ...). */
  readonly busybox: string;
}

export const PAUSE_IMAGE = 'localhost/podnet/pause:1';
export const BUSYBOX_IMAGE = 'localhost/podnet/busybox:1';

const BUSYBOX_PATHS = ['/bin/busybox', '/usr/bin/busybox'];

function findStaticBusybox(): string {
  for (const p of BUSYBOX_PATHS) {
    try {
      const out = execFileSync('file', ['-L', p], { encoding: 'utf8' });
      if (/statically linked|static-pie linked/.test(out)) return p;
    } catch {
      // not there
    }
  }
  throw new Error(
    `no statically linked busybox at ${BUSYBOX_PATHS.join(' or ')}: install Debian package busybox-static`,
  );
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

function goArch(): string {
  if (process.arch === 'x64') return 'amd64';
  if (process.arch === 'arm64') return 'arm64';
  return process.arch;
}

/** Builds the image tar under `workDir` (0.3 s). */
export function buildBusyboxImage(workDir: string): BuiltImage {
  const busybox = findStaticBusybox();
  const rootfs = join(workDir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'var/www', 'proc', 'sys', 'dev', 'root']) {
    mkdirSync(join(rootfs, d), { recursive: true });
  }
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  copyFileSync(busybox, join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    if (a !== 'busybox') symlinkSync('busybox', join(rootfs, 'bin', a));
  }
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(rootfs, 'var/www/index.html'), '<html><body>podnet test</body></html>\n');

  const layout = join(workDir, 'oci');
  const blobs = join(layout, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const layerPath = join(workDir, 'layer.tar');
  execFileSync('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=@0',
    '-cf',
    layerPath,
    '-C',
    rootfs,
    '.',
  ]);
  const layer = readFileSync(layerPath);
  const layerDigest = sha256(layer);
  writeFileSync(join(blobs, layerDigest), layer);

  const blob = (obj: unknown): { digest: string; size: number } => {
    const buf = Buffer.from(JSON.stringify(obj));
    const d = sha256(buf);
    writeFileSync(join(blobs, d), buf);
    return { digest: `sha256:${d}`, size: buf.length };
  };
  const manifests = [
    { ref: PAUSE_IMAGE, config: { Entrypoint: ['/bin/sleep', '2147483647'] } },
    { ref: BUSYBOX_IMAGE, config: { Cmd: ['/bin/sh'] } },
  ].map(({ ref, config }) => {
    const cfg = blob({
      architecture: goArch(),
      os: 'linux',
      config: { Env: ['PATH=/bin'], WorkingDir: '/', ...config },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
    });
    const manifest = blob({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: `sha256:${layerDigest}`,
          size: layer.length,
        },
      ],
    });
    return {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...manifest,
      annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': '1' },
    };
  });
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const tarPath = join(workDir, 'podnet-images.tar');
  execFileSync('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '-cf',
    tarPath,
    '-C',
    layout,
    '.',
  ]);
  return { tarPath, pause: PAUSE_IMAGE, busybox: BUSYBOX_IMAGE };
}
