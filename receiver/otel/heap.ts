// V8 heap settings for a long-running agent whose work comes in bursts (a collection, an export, a
// scrape every interval), applied from inside the process so they hold however podnet is started (the
// image's entry point, `npm start`, a benchmark): the image's node binary carries file capabilities, so it
// runs in secure-execution mode and ignores NODE_OPTIONS.
//
// The young generation: V8 sizes its maximum from the machine's memory (64 MB semi-spaces, 128 MB of new
// space, on a 24 GB machine) and grows it up to that as soon as a burst keeps much alive, which at 1,000
// pods (~170,000 series) every collection, export and scrape does; it is then kept. With a growth factor
// of 1 the new space stays at its initial 1 MB semi-spaces: the objects a burst keeps are promoted a
// little earlier, and the old generation, sized to what is live, returns its pages after a full GC. At
// 1,000 netns, 2 MB semi-spaces took podnet's RSS from ~565 MB to ~375 MB (benchmarks/suite/scale.ts with
// --variant, one run each), CPU within the noise of that (loaded) machine.
//
// `PODNET_V8_FLAGS` replaces the default (an empty value applies nothing); an explicit young-generation
// flag on node's command line (or in NODE_OPTIONS) is left alone.
import { setFlagsFromString } from 'node:v8';

export const DEFAULT_V8_FLAGS = '--semi-space-growth-factor=1';

const YOUNG_GENERATION_FLAG = /^--(max-semi-space-size|min-semi-space-size|semi-space-growth-factor)\b/;

let applied: string | undefined;

/** Apply podnet's V8 flags once per process; returns the flags applied (empty when none). */
export function applyHeapSettings(
  env: NodeJS.ProcessEnv = process.env,
  execArgv: readonly string[] = process.execArgv,
): string {
  if (applied !== undefined) return applied;
  const explicit = [...execArgv, ...(env['NODE_OPTIONS'] ?? '').split(/\s+/)].some((a) =>
    YOUNG_GENERATION_FLAG.test(a),
  );
  const flags = (env['PODNET_V8_FLAGS'] ?? (explicit ? '' : DEFAULT_V8_FLAGS)).trim();
  if (flags !== '') setFlagsFromString(flags);
  applied = flags;
  return flags;
}
