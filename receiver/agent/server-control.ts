// The agent's local server across config reloads: (re)start it when its settings change, and say what it
// serves (ServerSources over the pipeline and the agent's views).
import type { ResolvedConfig } from '../config/load.ts';
import type { Logger } from '../log/logger.ts';
import type { Pipeline } from '../otel/pipeline.ts';
import { renderPrometheus } from '../otel/prometheus-text.ts';
import { ChunkPool } from '../otel/text-chunks.ts';
import { LocalServer, type ServerSources } from '../server/server.ts';
import { sendText } from '../server/text-response.ts';

type ServerConfig = ResolvedConfig['server'];

export interface ServerControlOptions {
  readonly sources: ServerSources;
  /** Handed to the server (its own messages). */
  readonly serverLog: Logger;
  /** Restart messages. */
  readonly log: Logger;
}

export class ServerControl {
  readonly #opts: ServerControlOptions;
  #server: LocalServer | undefined;
  #key = '';
  #config: ServerConfig | undefined;

  constructor(opts: ServerControlOptions) {
    this.#opts = opts;
  }

  get url(): string | undefined {
    return this.#server?.url;
  }

  /** Events not written to slow /events clients (0 without a server). */
  get streamDropped(): number {
    return this.#server?.streamDropped ?? 0;
  }

  describe(): ReturnType<LocalServer['describe']> | null {
    return this.#server?.describe() ?? null;
  }

  /**
   * (Re)start the local server when its settings changed. The new listener is opened before the old one
   * closes, so a failed change (address in use, bad interface) leaves the running server as it was.
   */
  async apply(c: ServerConfig): Promise<void> {
    const key = c.enabled ? JSON.stringify(c) : '';
    if (key === this.#key && (this.#server || !c.enabled)) return;
    const old = this.#server;
    const oldConfig = this.#config;
    if (!c.enabled) {
      this.#server = undefined;
      this.#key = key;
      await old?.close();
      return;
    }
    const { port } = c.address;
    let next: LocalServer;
    try {
      next = await this.#start(c);
    } catch (err) {
      if (!old || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || old.port !== port) throw err;
      // The old server may hold this port (a host-only change): free it, retry, and restore it on failure.
      await old.close();
      this.#server = undefined;
      try {
        next = await this.#start(c);
      } catch (err2) {
        if (oldConfig) this.#server = await this.#start(oldConfig);
        throw err2;
      }
    }
    if (this.#server === old) await old?.close();
    this.#server = next;
    this.#key = key;
    this.#config = c;
    this.#opts.log.info({ url: next.url }, 'local server listening');
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    await s?.close();
  }

  #start(s: ServerConfig): Promise<LocalServer> {
    return LocalServer.start(s.address.host, s.address.port, this.#opts.sources, this.#opts.serverLog, {
      bearerTokenFile: s.bearerTokenFile,
      tls: s.tls,
    });
  }
}

/** What the local server serves: Prometheus text from the pipeline, the views, the live events. */
export function agentServerSources(o: {
  readonly pipeline: Pipeline;
  readonly status: (opts: { entities: boolean }) => unknown;
  readonly inspect: () => unknown;
  readonly healthy: () => boolean;
  readonly notReady: () => readonly string[];
  readonly log: Logger;
}): ServerSources {
  const { pipeline, log } = o;
  // The buffers /metrics is rendered into, reused scrape after scrape (receiver/otel/text-chunks.ts).
  const pool = new ChunkPool();
  return {
    metrics: () => {
      const prom = pipeline.prometheus;
      if (!prom) return undefined;
      return (req, res) => {
        prom
          .collect()
          .then(
            ({ resourceMetrics, errors }) => {
              if (errors.length > 0) log.warn({ errors: errors.map(String) }, 'metric collection errors');
              // Streamed (and gzipped when asked): receiver/server/text-response.ts.
              return sendText(
                req,
                res,
                renderPrometheus(resourceMetrics, pool),
                'text/plain; version=0.0.4; charset=utf-8',
                undefined,
                pool,
              );
            },
            (err: unknown) => {
              res.statusCode = 500;
              res.end(`# failed to export metrics: ${String(err)}\n`);
            },
          )
          .catch((err: unknown) => {
            // A failure while rendering: a 500 when nothing was sent yet, else the response is cut short.
            log.warn({ err }, '/metrics failed');
            if (res.headersSent) res.destroy();
            else {
              res.statusCode = 500;
              res.end('# failed to render metrics\n');
            }
          });
      };
    },
    status: o.status,
    inspect: o.inspect,
    recentEvents: () => pipeline.events.recent(),
    subscribe: (fn) => pipeline.events.subscribe(fn),
    healthy: o.healthy,
    notReady: o.notReady,
  };
}
