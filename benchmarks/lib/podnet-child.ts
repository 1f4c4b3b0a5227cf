// podnet as the benchmarks run it when the set of entities must be exactly the test's: the same Agent as
// `podnet run --config FILE`, with pod/netns discovery restricted to the host plus the named netns whose
// name starts with --netns-prefix (others on this shared machine — other tests' netns — are left out, so
// a size N means N). Discovery itself still runs (EntityRegistry: /run/netns scan every interval).
//
//   node benchmarks/lib/podnet-child.ts --config FILE [--with-synthetic] [--netns-prefix P | --host-only]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { probeSpecs } from '../../probes/registry.ts';
import { syntheticSpec } from '../../probes/synthetic/synthetic.ts';
import { Agent } from '../../receiver/agent/agent.ts';
import { loadConfigFile } from '../../receiver/config/load.ts';
import type { Entity, EntityChange, EntitySource, PodIdentity } from '../../receiver/pods/entity.ts';
import { EntityRegistry } from '../../receiver/pods/index.ts';

const { values: o } = parseArgs({
  options: {
    config: { type: 'string' },
    'with-synthetic': { type: 'boolean', default: false },
    'netns-prefix': { type: 'string' },
    'host-only': { type: 'boolean', default: false },
  },
});
if (!o.config) throw new Error('--config FILE is required');

class FilteredSource implements EntitySource {
  readonly #inner: EntitySource;
  readonly #keep: (e: Entity) => boolean;
  // The filtered lists, kept until the inner source changes: filtered anew at every call they were ~10 MB
  // of garbage per interval inside the measured process at 1,000 netns (every probe asks at each
  // collection, and the benchmarks' /status polls ask for pods()), a cost a real agent does not have.
  #entities: readonly Entity[] | undefined;
  #pods: readonly PodIdentity[] | undefined;
  constructor(inner: EntitySource, keep: (e: Entity) => boolean) {
    this.#inner = inner;
    this.#keep = keep;
    inner.onChange(() => {
      this.#entities = undefined;
      this.#pods = undefined;
    });
  }
  entities(): readonly Entity[] {
    this.#entities ??= this.#inner.entities().filter(this.#keep);
    return this.#entities;
  }
  byNetns(inode: number): Entity | undefined {
    const e = this.#inner.byNetns(inode);
    return e && this.#keep(e) ? e : undefined;
  }
  pods(): readonly PodIdentity[] {
    this.#pods ??= this.entities().flatMap((e) => (e.pod ? [e.pod] : []));
    return this.#pods;
  }
  onChange(listener: (changes: readonly EntityChange[]) => void): () => void {
    return this.#inner.onChange((changes) => {
      const kept = changes.filter((c) => this.#keep(c.entity));
      if (kept.length) listener(kept);
    });
  }
}

const extraSpecs = o['with-synthetic'] ? [syntheticSpec] : [];
const prefix = o['netns-prefix'];
let registry: EntityRegistry | undefined;
let entitySource: EntitySource | undefined;
if (prefix !== undefined || o['host-only']) {
  const cfg = loadConfigFile(o.config, { specs: [...probeSpecs, ...extraSpecs] });
  registry = new EntityRegistry({
    disableCri: true,
    // host only: no netns scan at all (other tests' netns on this machine would be scanned and filtered out)
    netnsDiscovery: o['host-only'] ? 'never' : 'always',
    scanProc: false,
    refreshIntervalMs: Math.max(100, cfg.collectionIntervalMs),
  });
  await registry.start();
  entitySource = new FilteredSource(
    registry,
    (e) => e.kind === 'host' || (prefix !== undefined && (e.netnsName ?? '').startsWith(prefix)),
  );
}

const agent = await Agent.start({
  configPath: o.config,
  extraSpecs,
  ...(entitySource ? { entitySource } : {}),
});
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await agent.stop();
  registry?.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
// Benchmarks ask for the heap/external breakdown (RSS alone does not say where memory goes).
process.on('SIGUSR2', () => {
  const file = process.env['PNK_MEMORY_FILE'];
  if (file) writeFileSync(file, JSON.stringify(process.memoryUsage()));
});
process.stdout.write(`${JSON.stringify({ ready: true, url: agent.serverUrl })}\n`);
