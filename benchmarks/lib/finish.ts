// How a benchmark ends: a run whose checks failed exits 1 and prints no figure as if it were a result.
// Figures go to stdout (what benchmarks/run.ts records in RESULTS.md) only when every check held; after a
// failure they go to stderr under a banner saying they come from a failed run, followed by one
// `FAILED: …` line per failure, which run.ts quotes as the section's error.
import { emitSection, type Section } from './results.ts';

export const FAILED_PREFIX = 'FAILED: ';
export const FAILED_BANNER =
  '--- figures of a FAILED run: not a result (benchmarks/run.ts records only the failures) ---';

/** The `FAILED: …` lines a benchmark printed (run.ts: the error it records). */
export function failureLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith(FAILED_PREFIX))
    .map((l) => l.slice(FAILED_PREFIX.length).trim());
}

/**
 * Print `figures` and exit 0 when `failures` is empty; otherwise print them to stderr as from a failed run,
 * then the failures, and exit 1. `figures` is the whole printed result (a table, a JSON document).
 */
export function finish(figures: string, failures: readonly string[]): never {
  const text = figures.endsWith('\n') ? figures : `${figures}\n`;
  if (failures.length === 0) {
    process.stdout.write(text);
    process.exit(0);
  }
  process.stderr.write(`${FAILED_BANNER}\n${text}${failures.map((f) => `${FAILED_PREFIX}${f}\n`).join('')}`);
  process.exit(1);
}

/**
 * The same for a suite benchmark (benchmarks/suite/): the result line only when every check held; after a
 * failure its tables go to stderr as from a failed run, and it exits 1.
 */
export function finishSection(section: Section, failures: readonly string[]): never {
  if (failures.length === 0) {
    emitSection(section);
    process.exit(0);
  }
  finish(JSON.stringify({ tables: section.tables, targets: section.targets }, null, 1), failures);
}
