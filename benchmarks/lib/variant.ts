// `--variant NAME=ROOT[;env:K=V][;node:FLAG]...` of the suites that run podnet in several variants in one
// invocation (benchmarks/suite/scale.ts, node-exporter.ts): ROOT is a checkout of podnet (a git worktree of
// a baseline; `.` = this one); `env:` sets a variable of podnet's environment and `node:` adds a node flag
// after the checkout's own `npm start` flags (benchmarks/lib/as-started.ts), so a later V8 flag wins over
// the start script's: `--variant base=. --variant aa=. --variant sgc=.;node:--single-threaded-gc` is an A/A
// plus one runtime setting, interleaved in the same run.

export interface VariantSpec {
  readonly name: string;
  /** Absolute, with a trailing slash. */
  readonly root: string;
  readonly env: Record<string, string>;
  readonly nodeArgs: string[];
}

/** Parses one --variant; `here` is this checkout's root (with a trailing slash). Throws on an unknown modifier. */
export function parseVariant(spec: string, here: string): VariantSpec {
  const [head, ...mods] = spec.split(';');
  const eq = head!.indexOf('=');
  const name = eq > 0 ? head!.slice(0, eq) : head!;
  const rootArg = eq > 0 ? head!.slice(eq + 1) : '.';
  const root = rootArg === '.' ? here : `${rootArg.replace(/\/+$/, '')}/`;
  const env: Record<string, string> = {};
  const nodeArgs: string[] = [];
  for (const m of mods) {
    if (m.startsWith('env:') && m.includes('=')) {
      const [k, ...v] = m.slice(4).split('=');
      env[k!] = v.join('=');
    } else if (m.startsWith('node:-')) nodeArgs.push(m.slice(5));
    else throw new Error(`--variant ${spec}: unknown modifier "${m}" (env:NAME=VALUE or node:--flag)`);
  }
  return { name, root, env, nodeArgs };
}

/** The modifiers as a command-line prefix/suffix for a report: `K=V … node … FLAGS`. */
export function describeVariant(v: VariantSpec): string {
  return [...Object.entries(v.env).map(([k, val]) => `${k}=${val}`), ...v.nodeArgs].join(' ');
}
