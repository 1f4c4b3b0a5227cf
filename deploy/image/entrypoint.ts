// The image's entry point: make the node binary's file capabilities effective, say which of the
// capabilities podnet needs are missing (and what fails without each), then run the `podnet` CLI.
//
// The image gives /usr/local/bin/node permitted-only file capabilities (Containerfile, `setcap ...+p`), so
// a pod whose securityContext grants fewer capabilities still starts (the bounding set trims the file
// capabilities) and reports the missing ones here, instead of failing exec with a bare EPERM.
import { readFileSync } from 'node:fs';
import { CAPABILITIES, effectiveCapabilities, hasCapability, raiseEffective } from './capabilities.ts';

const { log } = await import('../../receiver/log/logger.ts');
try {
  await raiseEffective();
} catch (err) {
  log.warn({ err: String(err) }, 'could not raise capabilities');
}
const eff = effectiveCapabilities(readFileSync('/proc/self/status', 'utf8'));
const missing = CAPABILITIES.filter((c) => !hasCapability(eff, c.bit));
for (const m of missing)
  log.warn(
    { capability: m.cap, uid: process.getuid?.() },
    `capability ${m.cap} is missing: ${m.why} (add it to the container's securityContext.capabilities.add)`,
  );
if (missing.length === 0)
  log.info({ uid: process.getuid?.() }, 'all capabilities podnet needs are effective');
await import('../../receiver/cli/main.ts');
