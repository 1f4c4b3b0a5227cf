// Performs the runtime stage of deploy/image/Containerfile into a directory that stands for the image's root
// (no container engine here): the COPY lines, the production node_modules, dist/ from the build stage, the
// node binary and its file capabilities (setcap, as the Containerfile's RUN does). Used by test/deploy/image.test.ts (root = a temp
// dir on this machine) and deploy/image/test-rootfs.sh (root = a debootstrap'd Debian 12).
//
//   node deploy/image/stage.ts ROOT [--npm-ci] [--no-setcap]
//
// node_modules: by default the production packages of this checkout (`npm ls --omit=dev`, the same lockfile
// the image's `npm ci --omit=dev` installs from) are copied; --npm-ci runs `npm ci --omit=dev` on
// package.json + package-lock.json in a scratch dir instead, exactly as the image's deps stage does.
// The node binary is this checkout's Node 24 (the `node` npm package: the upstream linux-x64 build, the
// same build the official node:24 images carry at /usr/local/bin/node).
// dist/: the build stage's steps in order in a scratch dir standing for its WORKDIR: its COPY lines from this
// checkout and its RUN commands verbatim (`sh scripts/build.sh --force`), with this checkout's Node 24 first
// on PATH; its `npm ci` (all dependencies: TypeScript) is run too with --npm-ci, and is otherwise replaced
// by a link to this checkout's node_modules (installed from the same lockfile). Nothing of a dist/ already
// in the checkout is used, so a source the build stage does not COPY fails the build here as in the image.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { type ContainerfileSteps, parseContainerfile } from './containerfile.ts';

const REPO = join(import.meta.dirname, '..', '..');

export interface StageOptions {
  /** Run `npm ci --omit=dev` (network) instead of copying this checkout's production packages. */
  readonly npmCi?: boolean;
  /** Leave setcap to the Containerfile's own RUN (test-rootfs.sh runs it in the chroot). Default: setcap here. */
  readonly setcap?: boolean;
}

/** Production package directories of this checkout, relative to the repo (`node_modules/...`). */
export function productionPackages(): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], {
    cwd: REPO,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return out
    .split('\n')
    .filter((l) => l.trim() !== '' && l !== REPO)
    .map((l) => relative(REPO, l))
    .filter((l) => l.startsWith('node_modules/'));
}

/** Runs the build stage in a scratch dir and copies its dist/ to `to` (COPY --from=build). */
function buildDist(steps: ContainerfileSteps, to: string, npmCi: boolean): void {
  const { workdir } = steps.build;
  const scratch = mkdtempSync(join(tmpdir(), `pnd${process.pid}-build-`));
  const inStage = (p: string): string => {
    const abs = p.startsWith('/') ? p : join(workdir, p);
    const rel = relative(workdir, abs);
    if (rel.startsWith('..'))
      throw new Error(`Containerfile build stage: ${p} is outside its WORKDIR ${workdir}`);
    return join(scratch, rel);
  };
  const node24 = dirname(realpathSync(join(REPO, 'node_modules', '.bin', 'node')));
  try {
    for (const s of steps.build.steps) {
      if (s.kind === 'copy') {
        const src = join(REPO, s.from);
        if (!existsSync(src))
          throw new Error(`Containerfile build stage COPY source ${s.from} does not exist`);
        mkdirSync(dirname(inStage(s.to)), { recursive: true });
        cpSync(src, inStage(s.to), { recursive: true, dereference: true });
      } else if (!npmCi && /^npm ci\b/.test(s.command)) {
        symlinkSync(join(REPO, 'node_modules'), join(scratch, 'node_modules'));
      } else {
        execFileSync('/bin/sh', ['-ec', s.command], {
          cwd: scratch,
          stdio: ['ignore', 'ignore', 'inherit'],
          env: { ...process.env, PATH: `${node24}:${process.env['PATH'] ?? '/usr/bin:/bin'}` },
        });
      }
    }
    const built = inStage(steps.dist.from);
    if (!existsSync(built)) throw new Error(`Containerfile build stage produced no ${steps.dist.from}`);
    mkdirSync(dirname(to), { recursive: true });
    cpSync(built, to, { recursive: true });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export function stageImage(root: string, options: StageOptions = {}): void {
  const steps = parseContainerfile();
  const inRoot = (p: string) => join(root, p);
  // COPY lines: repository path → image path (owned by root, world-readable, as COPY without --chown).
  for (const c of steps.copies) {
    const src = join(REPO, c.from);
    if (!existsSync(src)) throw new Error(`Containerfile COPY source ${c.from} does not exist`);
    mkdirSync(dirname(inRoot(c.to)), { recursive: true });
    cpSync(src, inRoot(c.to), { recursive: true, dereference: true });
  }
  // COPY --from=deps node_modules
  const nm = inRoot(steps.nodeModulesTo);
  mkdirSync(nm, { recursive: true });
  if (options.npmCi) {
    const scratch = mkdtempSync(join(tmpdir(), `pnd${process.pid}-npm-`));
    try {
      cpSync(join(REPO, 'package.json'), join(scratch, 'package.json'));
      cpSync(join(REPO, 'package-lock.json'), join(scratch, 'package-lock.json'));
      execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'], {
        cwd: scratch,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      cpSync(join(scratch, 'node_modules'), nm, { recursive: true });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  } else {
    for (const p of productionPackages()) {
      cpSync(join(REPO, p), join(nm, relative('node_modules', p)), { recursive: true, dereference: true });
    }
  }
  // COPY --from=build dist/
  buildDist(steps, inRoot(steps.dist.to), options.npmCi === true);
  // The node binary at the Containerfile's path, with the Containerfile's file capabilities.
  const node = inRoot(steps.setcap.file);
  mkdirSync(dirname(node), { recursive: true });
  cpSync(realpathSync(join(REPO, 'node_modules', '.bin', 'node')), node);
  chmodSync(node, 0o755);
  if (options.setcap !== false)
    execFileSync('setcap', [`${steps.setcap.caps.join(',')}+${steps.setcap.flags}`, node]);
}

if (import.meta.main) {
  const root = process.argv[2];
  if (!root) {
    process.stderr.write('usage: node deploy/image/stage.ts ROOT [--npm-ci] [--no-setcap]\n');
    process.exit(2);
  }
  stageImage(root, {
    npmCi: process.argv.includes('--npm-ci'),
    setcap: !process.argv.includes('--no-setcap'),
  });
}
