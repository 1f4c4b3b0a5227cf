// The collection a probe's `collect` belongs to. The agent collects every probe at once
// (receiver/agent/probe-set.ts) inside `withCollectionCycle`, and each kit takes `collectionCycle()` at the
// start of its `collect`, synchronously: every probe of one collection gets the same token, so per-netns
// work they share (one liveness check, one read of a shared procfs file: receiver/procfs/netns-files.ts)
// happens once per collection. A probe collected on its own (tests, benchmarks) gets a token of its own.
let current: object | undefined;

/** Runs `start` (which calls each probe's `collect`) with one token for all of them. */
export function withCollectionCycle<T>(start: () => T): T {
  const prev = current;
  current = {};
  try {
    return start();
  } finally {
    current = prev;
  }
}

/** The token of the collection being started, or a fresh one outside `withCollectionCycle`. */
export function collectionCycle(): object {
  return current ?? {};
}
