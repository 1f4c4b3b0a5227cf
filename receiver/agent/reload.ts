// Reload sequencing: config applications run one at a time, in the order they were asked for (a file
// watcher can fire while the previous reload is still starting probes). A reload is validated first; a
// config that fails validation or fails to apply is logged, counted and returned, and the running config
// stays.
import type { AnyProbeSpec } from '../../probes/registry.ts';
import {
  ConfigError,
  EMBEDDED_SOURCE,
  loadConfigFile,
  type ResolvedConfig,
  resolveConfigText,
} from '../config/load.ts';
import type { Logger } from '../log/logger.ts';

export interface ReloadResult {
  readonly ok: boolean;
  readonly error?: string;
}

export interface ReloadCounts {
  readonly applied: number;
  readonly rejected: number;
  readonly lastError: string | undefined;
}

export interface ConfigSourceOptions {
  /** Config file. Undefined = `configText`, else the embedded default. */
  readonly configPath?: string | undefined;
  readonly configText?: string | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/** The initial config: from the file, the given text, or the embedded default. Throws ConfigError. */
export function loadInitialConfig(o: ConfigSourceOptions, specs: readonly AnyProbeSpec[]): ResolvedConfig {
  const loadOpts = { specs, ...(o.env ? { env: o.env } : {}) };
  if (o.configPath !== undefined) return loadConfigFile(o.configPath, loadOpts);
  return resolveConfigText(o.configText ?? '', o.configText ? '(config text)' : EMBEDDED_SOURCE, loadOpts);
}

export interface ConfigSequencerOptions {
  readonly specs: readonly AnyProbeSpec[];
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Shown in logs as `config`: the file path, or `(config text)`. */
  readonly source: string;
  /** Applies one validated config; throwing rejects the reload. */
  readonly apply: (config: ResolvedConfig) => Promise<void>;
  readonly log: Logger;
}

export class ConfigSequencer {
  readonly #opts: ConfigSequencerOptions;
  #applying: Promise<void> = Promise.resolve();
  #counts = { applied: 0, rejected: 0, lastError: undefined as string | undefined };

  constructor(opts: ConfigSequencerOptions) {
    this.#opts = opts;
  }

  get counts(): ReloadCounts {
    return this.#counts;
  }

  /** Apply `config` after every earlier application has finished; rejects with its error. */
  run(config: ResolvedConfig): Promise<void> {
    const run = this.#applying.then(() => this.#opts.apply(config));
    this.#applying = run.catch(() => undefined);
    return run;
  }

  /** Resolves when the applications asked for so far have finished (whatever their outcome). */
  settled(): Promise<void> {
    return this.#applying;
  }

  /** Validate and apply new config text. */
  async reload(text: string): Promise<ReloadResult> {
    const { source, log } = this.#opts;
    let next: ResolvedConfig;
    try {
      next = resolveConfigText(text, source, {
        specs: this.#opts.specs,
        ...(this.#opts.env ? { env: this.#opts.env } : {}),
      });
    } catch (err) {
      const msg = err instanceof ConfigError ? err.message : String(err);
      this.#reject(msg);
      log.error({ config: source, err }, 'config reload rejected, keeping the running config');
      return { ok: false, error: msg };
    }
    try {
      await this.run(next);
    } catch (err) {
      const msg = String((err as Error).message ?? err);
      this.#reject(msg);
      log.error({ config: source, err }, 'config reload failed to apply');
      return { ok: false, error: msg };
    }
    this.#counts.applied++;
    this.#counts.lastError = undefined;
    log.info({ config: source }, 'config reloaded');
    return { ok: true };
  }

  #reject(msg: string): void {
    this.#counts.rejected++;
    this.#counts.lastError = msg;
  }
}
