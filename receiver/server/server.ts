// The local HTTP server: GET /metrics (Prometheus text), /status (JSON), /events (live JSON lines,
// filterable), /inspect (JSON for the live view), /healthz. Binds 127.0.0.1:9464 by default; a non-loopback
// address is an explicit choice and is logged as a warning.
//
// Query parameters are only compared with event fields: they never name files, never run anything.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log/logger.ts';
import { type EventRecord, matchesFilter } from '../otel/events.ts';

export interface ServerSources {
  /** Prometheus text handler (undefined when the Prometheus exporter is off). */
  metrics(): ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  status(): unknown;
  inspect(): unknown;
  recentEvents(): readonly EventRecord[];
  subscribe(fn: (r: EventRecord) => void): () => void;
  healthy(): boolean;
}

const EVENT_PARAMS = new Set(['pod', 'name', 'follow', 'recent']);
const MAX_PARAM = 256;
/** A slow /events client gets events dropped (and counted) once this much is buffered for it. */
const MAX_BUFFERED = 4 * 1024 * 1024;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export class LocalServer {
  private readonly _server: Server;
  private readonly _sources: ServerSources;
  private readonly _log: Logger;
  private readonly _streams = new Set<ServerResponse>();
  /** Events not written to slow /events clients. */
  streamDropped = 0;

  private constructor(server: Server, sources: ServerSources, log: Logger) {
    this._server = server;
    this._sources = sources;
    this._log = log;
  }

  static async start(host: string, port: number, sources: ServerSources, log: Logger): Promise<LocalServer> {
    let self: LocalServer | undefined;
    const server = createServer((req, res) => self?._handle(req, res));
    self = new LocalServer(server, sources, log);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (!isLoopback(host))
      log.warn(
        { host, port },
        'local server bound to a non-loopback address: metrics, status and events are reachable from the network',
      );
    return self;
  }

  get url(): string {
    const a = this._server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  get port(): number {
    return (this._server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this._streams) s.end();
    this._streams.clear();
    this._server.closeAllConnections();
    await new Promise<void>((resolve) => this._server.close(() => resolve()));
  }

  private _handle(req: IncomingMessage, res: ServerResponse): void {
    let u: URL;
    try {
      u = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      this._json(res, 400, { error: 'bad request URL' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this._json(res, 405, { error: 'only GET is supported' });
      return;
    }
    try {
      switch (u.pathname) {
        case '/metrics': {
          const h = this._sources.metrics();
          if (!h) {
            this._json(res, 404, {
              error: 'the Prometheus exporter is disabled (exporters.prometheus.enabled)',
            });
            return;
          }
          h(req, res);
          return;
        }
        case '/status':
          this._json(res, 200, this._sources.status());
          return;
        case '/inspect':
          this._json(res, 200, this._sources.inspect());
          return;
        case '/healthz': {
          const ok = this._sources.healthy();
          res.statusCode = ok ? 200 : 503;
          res.setHeader('content-type', 'text/plain');
          res.end(ok ? 'ok\n' : 'unhealthy\n');
          return;
        }
        case '/events':
          this._events(u, res);
          return;
        default:
          this._json(res, 404, {
            error: `no such endpoint ${u.pathname}; try /metrics /status /events /inspect /healthz`,
          });
      }
    } catch (err) {
      this._log.warn({ err: String(err), path: u.pathname }, 'request failed');
      if (!res.headersSent) this._json(res, 500, { error: 'internal error' });
      else res.end();
    }
  }

  private _events(u: URL, res: ServerResponse): void {
    for (const [k, v] of u.searchParams) {
      if (!EVENT_PARAMS.has(k)) {
        this._json(res, 400, {
          error: `unknown parameter ${JSON.stringify(k)}; expected pod, name, follow, recent`,
        });
        return;
      }
      if (v.length > MAX_PARAM) {
        this._json(res, 400, { error: `parameter ${k} is longer than ${MAX_PARAM}` });
        return;
      }
    }
    const bool = (k: string, def: boolean): boolean | undefined => {
      const v = u.searchParams.get(k);
      if (v === null) return def;
      if (v === '1' || v === 'true') return true;
      if (v === '0' || v === 'false') return false;
      return undefined;
    };
    const follow = bool('follow', true);
    const recent = bool('recent', follow === false);
    if (follow === undefined || recent === undefined) {
      this._json(res, 400, { error: 'follow and recent take 1/0 or true/false' });
      return;
    }
    const filter = {
      pod: u.searchParams.get('pod') ?? undefined,
      name: u.searchParams.get('name') ?? undefined,
    };
    res.statusCode = 200;
    res.setHeader('content-type', 'application/x-ndjson');
    res.setHeader('cache-control', 'no-store');
    if (recent)
      for (const r of this._sources.recentEvents())
        if (matchesFilter(r, filter)) res.write(`${JSON.stringify(r)}\n`);
    if (!follow) {
      res.end();
      return;
    }
    res.flushHeaders();
    this._streams.add(res);
    const unsubscribe = this._sources.subscribe((r) => {
      if (!matchesFilter(r, filter)) return;
      if (res.writableLength > MAX_BUFFERED) {
        this.streamDropped++;
        return;
      }
      res.write(`${JSON.stringify(r)}\n`);
    });
    res.on('close', () => {
      unsubscribe();
      this._streams.delete(res);
    });
  }

  private _json(res: ServerResponse, code: number, body: unknown): void {
    res.statusCode = code;
    res.setHeader('content-type', 'application/json');
    res.end(`${JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
  }
}
