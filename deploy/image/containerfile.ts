// Reads deploy/image/Containerfile: the runtime stage's COPY lines, packages, setcap list, user and entry
// point, and the build stage that compiles dist/ (its COPY and RUN steps, in order). Used by the image tests and by test-rootfs.sh (through `node deploy/image/containerfile.ts`) so
// that the steps exercised without a container engine are the Containerfile's own, not a copy of them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One step of the build stage, in Containerfile order. */
export type BuildStep =
  | { readonly kind: 'copy'; readonly from: string; readonly to: string }
  | { readonly kind: 'run'; readonly command: string };

export interface ContainerfileSteps {
  /** Base image of the runtime stage. */
  readonly base: string;
  /** Debian packages installed in the runtime stage (`apt-get install` arguments). */
  readonly packages: readonly string[];
  /** Packages purged again in the same RUN (build-time only). */
  readonly purged: readonly string[];
  /** COPY from the build context: repository path → image path. */
  readonly copies: ReadonlyArray<{ readonly from: string; readonly to: string }>;
  /** COPY --from=deps: node_modules produced by `npm ci --omit=dev`. */
  readonly nodeModulesTo: string;
  /** COPY --from=build: the build stage's dist/ (`from`, a path in that stage) → image path. */
  readonly dist: { readonly from: string; readonly to: string };
  /** The build stage that compiles dist/: its WORKDIR and its COPY/RUN steps in order. */
  readonly build: { readonly workdir: string; readonly steps: readonly BuildStep[] };
  /** `setcap <caps>+<flags> <file>`. */
  readonly setcap: { readonly caps: readonly string[]; readonly flags: string; readonly file: string };
  readonly user: { readonly uid: number; readonly gid: number };
  readonly entrypoint: readonly string[];
  /** The node options in ENTRYPOINT between the node binary and the script (`--max-semi-space-size=1`). */
  readonly nodeFlags: readonly string[];
  /** The script ENTRYPOINT runs (first argument after the node options). */
  readonly entryScript: string;
  readonly cmd: readonly string[];
  readonly workdir: string;
  /** The runtime stage's RUN commands, continuation lines joined (shell form). */
  readonly runs: readonly string[];
}

export const CONTAINERFILE = join(import.meta.dirname, 'Containerfile');

/** Instructions with continuation lines joined and comment lines dropped. */
function instructions(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimStart();
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    cur += line;
    if (cur.trim()) out.push(cur.trim());
    cur = '';
  }
  return out;
}

/** COPY arguments: its --from=stage (if any) and exactly one source and one destination. */
function copyArgs(i: string): { stage?: string; from: string; to: string } {
  const parts = i.split(/\s+/).slice(1);
  const stage = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
  const paths = parts.filter((p) => !p.startsWith('--'));
  if (paths.length !== 2) throw new Error(`Containerfile: keep one source per COPY: ${i}`);
  return { ...(stage ? { stage } : {}), from: paths[0]!, to: paths[1]! };
}

/** The instructions of the stage `FROM ... AS name`, FROM line included. */
function namedStage(all: readonly string[], name: string): string[] {
  const start = all.findIndex((i) => new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${name}$`, 'i').test(i));
  if (start < 0) throw new Error(`Containerfile: no stage "FROM ... AS ${name}"`);
  const end = all.findIndex((i, n) => n > start && /^FROM\s/i.test(i));
  return all.slice(start, end < 0 ? undefined : end);
}

export function parseContainerfile(text = readFileSync(CONTAINERFILE, 'utf8')): ContainerfileSteps {
  const all = instructions(text);
  const lastFrom = all.findLastIndex((i) => /^FROM\s/i.test(i));
  if (lastFrom < 0) throw new Error('Containerfile: no FROM');
  const stage = all.slice(lastFrom);
  const base = stage[0]!.split(/\s+/)[1]!;
  const runList = stage.filter((i) => /^RUN\s/.test(i)).map((i) => i.replace(/^RUN\s+/, ''));
  const runs = runList.join(' && ');
  const inst = /apt-get install ((?:-\S+\s+)*)([^&]+)/.exec(runs);
  const packages = inst ? inst[2]!.trim().split(/\s+/) : [];
  const purge = /apt-get purge ((?:-\S+\s+)*)([^&]+)/.exec(runs);
  const purged = purge ? purge[2]!.trim().split(/\s+/) : [];
  const sc = /setcap (\S+)\+([eip]+) (\S+)/.exec(runs);
  if (!sc) throw new Error('Containerfile: no setcap ... in the runtime stage');
  const copies: Array<{ from: string; to: string }> = [];
  let nodeModulesTo = '';
  let dist: { from: string; to: string } | undefined;
  for (const i of stage.filter((x) => /^COPY\s/.test(x))) {
    const c = copyArgs(i);
    if (c.stage === 'deps') nodeModulesTo = c.to;
    else if (c.stage === 'build') dist = { from: c.from, to: c.to };
    else if (c.stage) throw new Error(`Containerfile: COPY from an unknown stage: ${i}`);
    else copies.push({ from: c.from, to: c.to });
  }
  if (!dist) throw new Error('Containerfile: no COPY --from=build of dist/ in the runtime stage');
  const buildStage = namedStage(all, 'build');
  const build = {
    workdir: buildStage.find((x) => x.startsWith('WORKDIR '))?.slice(8) ?? '/',
    steps: buildStage.flatMap((i): BuildStep[] => {
      if (/^COPY\s/.test(i)) return [{ kind: 'copy', ...copyArgs(i) }];
      if (/^RUN\s/.test(i)) return [{ kind: 'run', command: i.replace(/^RUN\s+/, '') }];
      return [];
    }),
  };
  const user = /^USER\s+(\d+):(\d+)$/m.exec(stage.join('\n'));
  if (!user) throw new Error('Containerfile: USER uid:gid (numeric) missing');
  const json = (kw: string): string[] => {
    const line = stage.find((x) => x.startsWith(`${kw} `));
    return line ? (JSON.parse(line.slice(kw.length + 1)) as string[]) : [];
  };
  const workdir = stage.find((x) => x.startsWith('WORKDIR '))?.slice(8) ?? '/';
  const entrypoint = json('ENTRYPOINT');
  const nodeFlags = entrypoint
    .slice(1)
    .filter((a, n, l) => a.startsWith('--') && l.slice(0, n).every((b) => b.startsWith('--')));
  const entryScript = entrypoint[1 + nodeFlags.length];
  if (!entryScript) throw new Error('Containerfile: ENTRYPOINT ["node", ...flags, script] expected');
  return {
    base,
    packages,
    purged,
    copies,
    nodeModulesTo,
    dist,
    build,
    setcap: { caps: sc[1]!.split(','), flags: sc[2]!, file: sc[3]! },
    user: { uid: Number(user[1]), gid: Number(user[2]) },
    entrypoint,
    nodeFlags,
    entryScript,
    cmd: json('CMD'),
    workdir,
    runs: runList,
  };
}

// `node deploy/image/containerfile.ts` prints the steps as JSON; `... run` prints the RUN commands, one per
// line; `... entrypoint` prints the ENTRYPOINT argv space-separated; `... caps` prints the setcap list in setpriv's syntax (+cap_a,+cap_b).
if (import.meta.main) {
  const steps = parseContainerfile();
  const what = process.argv[2];
  if (what === 'run') process.stdout.write(`${steps.runs.join('\n')}\n`);
  else if (what === 'caps')
    process.stdout.write(`${steps.setcap.caps.map((c) => `+${c.replace(/^cap_/, '')}`).join(',')}\n`);
  else if (what === 'entrypoint') process.stdout.write(`${steps.entrypoint.join(' ')}\n`);
  else if (what === 'user') process.stdout.write(`${steps.user.uid}:${steps.user.gid}\n`);
  else process.stdout.write(`${JSON.stringify(steps, null, 2)}\n`);
}
