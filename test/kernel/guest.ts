// Runs inside the VM (test/env/vm, started by test/kernel/vm.test.ts): every kernel-reach scenario of
// scenarios.ts, each fact printed as one `@@VM {"fact": ...}` line on the serial console for the host.
import { allFacts } from './scenarios.ts';

const line = (o: unknown) => process.stdout.write(`@@VM ${JSON.stringify(o)}\n`);
try {
  await allFacts({ prefix: 'pnkr', onFact: (fact) => line({ fact }) });
  line({ done: true });
} catch (err) {
  line({ error: (err as Error).stack ?? String(err) });
  process.exitCode = 1;
}
