// The command line of a benchmark script: a bad option prints the message and the usage and exits 2 (not a
// stack trace), --help prints the usage and exits 0. The caller passes its own parseArgs call, so the
// values keep the types parseArgs infers from its options.
export function cli<T extends { help?: boolean | undefined }>(parse: () => { values: T }, usage: string): T {
  let values: T;
  try {
    values = parse().values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${usage}\n`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}
