// How a checkout's `npm start` runs podnet: the environment, node flags and CLI script of its package.json
// `scripts.start` ("[NAME=${NAME:-value} ...] node [FLAGS] SCRIPT run"), and the benchmarks' host-only child
// in the same form (dist/benchmarks/lib/podnet-child.js next to a compiled CLI, the .ts source next to a .ts
// one). A same-run A/B of two checkouts (benchmarks/suite/memory.ts --root) then compares each as it ships.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StartForm {
  /** Environment the script sets before node, resolved as sh would against this process's environment
   *  (`NAME=${NAME:-2}` keeps a non-empty NAME of ours), e.g. { MALLOC_ARENA_MAX: '2' }. */
  readonly env: Readonly<Record<string, string>>;
  /** Node flags before the script, e.g. ['--max-semi-space-size=1']. */
  readonly nodeArgs: readonly string[];
  /** The CLI script, absolute. */
  readonly cli: string;
  /** benchmarks/lib/podnet-child in the same form (compiled or source), absolute. */
  readonly child: string;
  /** The start script as written, for RESULTS.md. */
  readonly script: string;
}

/** Reads `scripts.start` of ROOT/package.json; builds dist/ first when the checkout has scripts/build.sh. */
export function startForm(root: string): StartForm {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>;
  };
  const script = pkg.scripts?.['start'] ?? '';
  const all = script.trim().split(/\s+/);
  const env: Record<string, string> = {};
  let n = 0;
  for (; n < all.length && /^[A-Za-z_]\w*=/.test(all[n]!); n++) {
    const [name, value] = splitAssignment(all[n]!, root);
    env[name] = value;
  }
  const words = all.slice(n);
  if (words[0] !== 'node') throw new Error(`${root}/package.json: scripts.start is not "node …": ${script}`);
  const i = words.findIndex((w, k) => k > 0 && !w.startsWith('-'));
  if (i < 0) throw new Error(`${root}/package.json: no script in scripts.start: ${script}`);
  const rel = words[i]!;
  if (existsSync(join(root, 'scripts/build.sh')))
    execFileSync('sh', [join(root, 'scripts/build.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const cli = join(root, rel);
  if (!existsSync(cli)) throw new Error(`${root}: ${rel} (scripts.start) does not exist`);
  const compiled = rel.endsWith('.js');
  const child = join(
    root,
    compiled ? 'dist/benchmarks/lib/podnet-child.js' : 'benchmarks/lib/podnet-child.ts',
  );
  if (!existsSync(child)) throw new Error(`${root}: ${child} does not exist`);
  return { env, nodeArgs: words.slice(1, i), cli, child, script };
}

/** `NAME=value` or `NAME=${NAME:-value}` (sh: the caller's non-empty NAME wins); nothing else is accepted. */
function splitAssignment(word: string, root: string): [string, string] {
  const eq = word.indexOf('=');
  const name = word.slice(0, eq);
  const value = word.slice(eq + 1);
  const dflt = /^\$\{(\w+):-([^$`'"\\{}]*)\}$/.exec(value);
  if (dflt) {
    if (dflt[1] !== name)
      throw new Error(`${root}/package.json: scripts.start: ${word} defaults ${name} from another variable`);
    const own = process.env[name];
    return [name, own !== undefined && own !== '' ? own : dflt[2]!];
  }
  if (/[$`'"\\]/.test(value))
    throw new Error(`${root}/package.json: scripts.start: ${word}: only NAME=value or NAME=\${NAME:-value}`);
  return [name, value];
}
