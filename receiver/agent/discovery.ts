// Where the agent's entities come from, across config reloads. Without a given entity source it runs pod
// discovery (EntityRegistry: CRI pods, else host + named/other netns) from the `pods:` config section;
// when that section (or the collection interval, its refresh period) changes, a new registry is started
// first (a bad endpoint fails the reload before anything else changed), then everyone is switched over
// and the old one is stopped. Probes and the pipeline keep one EntitySource object throughout.
import type { ResolvedConfig } from '../config/load.ts';
import type { Logger } from '../log/logger.ts';
import type { EntitySource } from '../pods/entity.ts';
import { EntityRegistry, registryOptionsFromConfig } from '../pods/index.ts';
import { StaticEntitySource } from './static-entities.ts';
import { SwitchableEntitySource } from './switchable-entities.ts';

export class Discovery {
  readonly entities: EntitySource;
  readonly #env: NodeJS.ProcessEnv | undefined;
  readonly #log: Logger;
  readonly #registryLog: Logger;
  readonly #switch: SwitchableEntitySource;
  #registry: EntityRegistry | undefined;
  #key: string;

  private constructor(
    config: ResolvedConfig,
    given: EntitySource | undefined,
    registry: EntityRegistry | undefined,
    env: NodeJS.ProcessEnv | undefined,
    log: Logger,
    registryLog: Logger,
  ) {
    this.#env = env;
    this.#log = log;
    this.#registryLog = registryLog;
    this.#registry = registry;
    this.#key = discoveryKey(config);
    this.#switch = new SwitchableEntitySource(given ?? registry ?? new StaticEntitySource());
    this.entities = this.#switch;
  }

  /** `given` (tests, benchmarks) is used as is; otherwise pod discovery starts and answers once first. */
  static async start(o: {
    readonly config: ResolvedConfig;
    readonly given?: EntitySource | undefined;
    readonly env?: NodeJS.ProcessEnv | undefined;
    readonly log: Logger;
    /** Handed to pod discovery (EntityRegistry). */
    readonly registryLog: Logger;
  }): Promise<Discovery> {
    const registry = o.given ? undefined : await startRegistry(o.config, o.env, o.registryLog);
    return new Discovery(o.config, o.given, registry, o.env, o.log, o.registryLog);
  }

  /** Restart pod discovery when its settings changed (throws, changing nothing, when the new one fails). */
  async apply(config: ResolvedConfig): Promise<void> {
    const key = discoveryKey(config);
    if (key !== this.#key && this.#registry) {
      const next = await startRegistry(config, this.#env, this.#registryLog);
      const old = this.#registry;
      this.#registry = next;
      this.#switch.switchTo(next);
      old.stop();
      this.#log.info({ pods: config.pods }, 'pod discovery restarted with the new settings');
    }
    this.#key = key;
  }

  /** Discovery ran at least once (CRI answered, or failed and that is known). Static sources always have. */
  answered(): boolean {
    return this.#registry ? this.#registry.status().refreshes > 0 : true;
  }

  status(): unknown {
    return this.#registry ? this.#registry.status() : { mode: 'static' };
  }

  stop(): void {
    this.#registry?.stop();
  }
}

function discoveryKey(c: ResolvedConfig): string {
  return JSON.stringify({ pods: c.pods, interval: c.collectionIntervalMs });
}

async function startRegistry(
  config: ResolvedConfig,
  env: NodeJS.ProcessEnv | undefined,
  log: Logger,
): Promise<EntityRegistry> {
  const registry = new EntityRegistry(
    registryOptionsFromConfig(config.pods, {
      refreshIntervalMs: Math.max(100, config.collectionIntervalMs),
      netnsDiscovery: config.pods.netnsDiscovery,
      ...(env ? { env } : {}),
      log,
    }),
  );
  await registry.start();
  return registry;
}
