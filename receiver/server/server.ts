// The local HTTP server: GET /metrics (Prometheus text, streamed, gzip when asked), /status (JSON), /events
// (live JSON lines, filterable), /inspect (JSON for the live view), /healthz and /readyz (open without the
// token: liveness, and readiness once the first collection ran and pod discovery answered). Binds
// 127.0.0.1:9464 by default; a non-loopback address is an explicit choice and is logged as a warning (naming
// what protects it, or that nothing does).
//
// Optional protection (`server.bearer_token_file`, `server.tls`): every request except /healthz and /readyz
// must carry `Authorization: Bearer <token>` (compared in constant time; the file is re-read when it
// changes, so a rotated Secret applies without a restart); TLS serves HTTPS from PEM files (re-read every
// 30 s when they change). Query parameters are only compared with event fields: they never name files,
// never run anything.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RouteHandler } from '../capture/service.ts';
import type { Logger } from '../log/logger.ts';
import { type EventRecord, eventJsonLine, matchesFilter } from '../otel/event-pipeline.ts';
import { sendJson } from './json.ts';

export interface ServerSources {
  /** Prometheus text handler (undefined when the Prometheus exporter is off). */
  metrics(): ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  /** `entities: false` (`/status?entities=0`): without the entity list, the part that grows with the pods. */
  status(opts: { entities: boolean }): unknown;
  inspect(): unknown;
  recentEvents(): readonly EventRecord[];
  subscribe(fn: (r: EventRecord) => void): () => void;
  healthy(): boolean;
  /** Readiness: what is still missing (empty = ready), e.g. `first collection not done`. */
  notReady(): readonly string[];
  /** Further endpoints (/capture, /captures: receiver/capture/service.ts), behind the same token. */
  route?(path: string): RouteHandler | undefined;
}

/** `/metrics` without a query, parsed once (only its pathname is read). */
const METRICS_URL = new URL('http://localhost/metrics');
const EVENT_PARAMS = new Set(['pod', 'name', 'peer', 'follow', 'recent']);
/** Answered without the bearer token. */
const OPEN_PATHS = new Set(['/healthz', '/readyz']);
const MAX_PARAM = 256;
/** A slow /events client gets events dropped (and counted) once this much is buffered for it. */
const MAX_BUFFERED = 4 * 1024 * 1024;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export interface ServerSecurity {
  /** File holding the bearer token (surrounding whitespace ignored). */
  readonly bearerTokenFile?: string | undefined;
  /** PEM certificate (chain) and key: serve HTTPS. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string } | undefined;
}

/** A file re-read when its inode, size or mtime changes (ConfigMap/Secret symlink swaps included). */
class WatchedFile {
  readonly path: string;
  #sig: string;
  #text: string;
  constructor(path: string, what: string) {
    this.path = path;
    try {
      this.#sig = WatchedFile.#signature(path);
      this.#text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  static #signature(path: string): string {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  }
  get text(): string {
    return this.#text;
  }
  /** Re-read when changed; true when the content changed. A file that cannot be read keeps the old text. */
  refresh(): boolean {
    try {
      const sig = WatchedFile.#signature(this.path);
      if (sig === this.#sig) return false;
      const text = readFileSync(this.path, 'utf8');
      this.#sig = sig;
      if (text === this.#text) return false;
      this.#text = text;
      return true;
    } catch {
      return false;
    }
  }
}

const sha256 = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest();

class BearerToken {
  readonly #file: WatchedFile;
  #digest: Buffer;
  constructor(path: string) {
    this.#file = new WatchedFile(path, 'server.bearer_token_file');
    this.#digest = BearerToken.#digestOf(this.#file.text, path);
  }
  static #digestOf(text: string, path: string): Buffer {
    const token = text.trim();
    if (!token) throw new Error(`server.bearer_token_file: ${path} is empty`);
    if (/\s/.test(token))
      throw new Error(`server.bearer_token_file: the token in ${path} contains whitespace`);
    return sha256(token);
  }
  /** True when the request carries `Authorization: Bearer <token>`. */
  check(header: string | undefined): boolean {
    if (this.#file.refresh()) {
      try {
        this.#digest = BearerToken.#digestOf(this.#file.text, this.#file.path);
      } catch {
        // an empty or malformed new token: keep the previous one
      }
    }
    if (!header) return false;
    const m = /^Bearer +(\S+) *$/i.exec(header);
    if (!m) return false;
    // Hashes have equal length, so the comparison time does not depend on the token.
    return timingSafeEqual(sha256(m[1]!), this.#digest);
  }
}

export class LocalServer {
  readonly #server: Server | HttpsServer;
  readonly #sources: ServerSources;
  readonly #log: Logger;
  readonly #streams = new Set<ServerResponse>();
  readonly #token: BearerToken | undefined;
  readonly #tls: boolean;
  #loopback = true;
  #tlsTimer: NodeJS.Timeout | undefined;
  /** Events not written to slow /events clients. */
  streamDropped = 0;
  /** Requests refused for a missing or wrong bearer token. */
  unauthorized = 0;

  private constructor(
    server: Server | HttpsServer,
    sources: ServerSources,
    log: Logger,
    token: BearerToken | undefined,
    tls: boolean,
  ) {
    this.#server = server;
    this.#sources = sources;
    this.#log = log;
    this.#token = token;
    this.#tls = tls;
  }

  /**
   * Listen on host:port. Throws (before listening) when a token or TLS file cannot be read or is invalid,
   * naming the config key and the path.
   */
  static async start(
    host: string,
    port: number,
    sources: ServerSources,
    log: Logger,
    security: ServerSecurity = {},
  ): Promise<LocalServer> {
    let self: LocalServer | undefined;
    const token = security.bearerTokenFile ? new BearerToken(security.bearerTokenFile) : undefined;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      if (self) self.#handle(req, res);
    };
    let server: Server | HttpsServer;
    let cert: WatchedFile | undefined;
    let key: WatchedFile | undefined;
    if (security.tls) {
      cert = new WatchedFile(security.tls.certFile, 'server.tls.cert_file');
      key = new WatchedFile(security.tls.keyFile, 'server.tls.key_file');
      try {
        server = createHttpsServer({ cert: cert.text, key: key.text }, handler);
      } catch (err) {
        throw new Error(
          `server.tls: cannot use ${security.tls.certFile} / ${security.tls.keyFile}: ${(err as Error).message}`,
        );
      }
    } else server = createServer(handler);
    self = new LocalServer(server, sources, log, token, security.tls !== undefined);
    self.#loopback = isLoopback(host);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (cert && key) {
      const c = cert;
      const k = key;
      const https = server as HttpsServer;
      self.#tlsTimer = setInterval(() => {
        const changed = c.refresh() || k.refresh();
        if (!changed) return;
        try {
          https.setSecureContext({ cert: c.text, key: k.text });
          log.info({ cert: c.path }, 'TLS certificate reloaded');
        } catch (err) {
          log.warn({ err, cert: c.path }, 'new TLS certificate or key unusable; keeping the old one');
        }
      }, 30_000);
      self.#tlsTimer.unref();
    }
    if (!isLoopback(host)) {
      const protection = [token ? 'bearer token' : '', security.tls ? 'TLS' : ''].filter(Boolean).join(' + ');
      log.warn(
        { host, port, bearerToken: token !== undefined, tls: security.tls !== undefined },
        protection
          ? `local server bound to a non-loopback address, protected by ${protection}`
          : 'local server bound to a non-loopback address without a bearer token or TLS: metrics, status and events are reachable from the network (server.bearer_token_file, server.tls)',
      );
    }
    return self;
  }

  get url(): string {
    const a = this.#server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `${this.#tls ? 'https' : 'http'}://${host}:${a.port}`;
  }

  /** For /status: what protects the server and how many requests were refused. */
  describe(): { url: string; bearerToken: boolean; tls: boolean; unauthorized: number } {
    return {
      url: this.url,
      bearerToken: this.#token !== undefined,
      tls: this.#tls,
      unauthorized: this.unauthorized,
    };
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    if (this.#tlsTimer) clearInterval(this.#tlsTimer);
    for (const s of this.#streams) s.end();
    this.#streams.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    let u: URL;
    try {
      // A scrape's `/metrics` (every second or so) needs no parser.
      u = req.url === '/metrics' ? METRICS_URL : new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendJson(res, 400, { error: 'bad request URL' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'only GET is supported' });
      return;
    }
    // /healthz and /readyz stay open (kubelet probes carry no secret; they tell nothing but ok or what is
    // still missing).
    if (this.#token && !OPEN_PATHS.has(u.pathname) && !this.#token.check(req.headers.authorization)) {
      this.unauthorized++;
      res.setHeader('www-authenticate', 'Bearer realm="podnet"');
      sendJson(res, 401, { error: 'missing or wrong bearer token (Authorization: Bearer <token>)' });
      return;
    }
    try {
      switch (u.pathname) {
        case '/metrics': {
          const h = this.#sources.metrics();
          if (!h) {
            sendJson(res, 404, {
              error: 'the Prometheus exporter is disabled (exporters.prometheus.enabled)',
            });
            return;
          }
          h(req, res);
          return;
        }
        case '/status': {
          const e = u.searchParams.get('entities');
          if (e !== null && e !== '0' && e !== '1') {
            sendJson(res, 400, { error: `entities: 0 or 1, not ${JSON.stringify(e)}` });
            return;
          }
          sendJson(res, 200, this.#sources.status({ entities: e !== '0' }));
          return;
        }
        case '/inspect':
          sendJson(res, 200, this.#sources.inspect());
          return;
        case '/healthz': {
          const ok = this.#sources.healthy();
          res.statusCode = ok ? 200 : 503;
          res.setHeader('content-type', 'text/plain');
          res.end(ok ? 'ok\n' : 'unhealthy\n');
          return;
        }
        case '/readyz': {
          const missing = this.#sources.notReady();
          res.statusCode = missing.length === 0 ? 200 : 503;
          res.setHeader('content-type', 'text/plain');
          res.end(missing.length === 0 ? 'ready\n' : `not ready: ${missing.join('; ')}\n`);
          return;
        }
        case '/events':
          this.#events(u, res);
          return;
        default: {
          const extra = this.#sources.route?.(u.pathname);
          if (extra) {
            extra(req, res, { url: u, loopback: this.#loopback, tokenProtected: this.#token !== undefined });
            return;
          }
          sendJson(res, 404, {
            error: `no such endpoint ${u.pathname}; try /metrics /status /events /inspect /healthz /readyz /capture /captures`,
          });
        }
      }
    } catch (err) {
      this.#log.warn({ err, path: u.pathname }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.end();
    }
  }

  #events(u: URL, res: ServerResponse): void {
    for (const [k, v] of u.searchParams) {
      if (!EVENT_PARAMS.has(k)) {
        sendJson(res, 400, {
          error: `unknown parameter ${JSON.stringify(k)}; expected pod, name, peer, follow, recent`,
        });
        return;
      }
      if (v.length > MAX_PARAM) {
        sendJson(res, 400, { error: `parameter ${k} is longer than ${MAX_PARAM}` });
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
      sendJson(res, 400, { error: 'follow and recent take 1/0 or true/false' });
      return;
    }
    const filter = {
      pod: u.searchParams.get('pod') ?? undefined,
      name: u.searchParams.get('name') ?? undefined,
      peer: u.searchParams.get('peer') ?? undefined,
    };
    res.statusCode = 200;
    res.setHeader('content-type', 'application/x-ndjson');
    res.setHeader('cache-control', 'no-store');
    if (recent)
      for (const r of this.#sources.recentEvents()) if (matchesFilter(r, filter)) res.write(eventJsonLine(r));
    if (!follow) {
      res.end();
      return;
    }
    res.flushHeaders();
    this.#streams.add(res);
    const unsubscribe = this.#sources.subscribe((r) => {
      if (!matchesFilter(r, filter)) return;
      if (res.writableLength > MAX_BUFFERED) {
        this.streamDropped++;
        return;
      }
      res.write(eventJsonLine(r));
    });
    res.on('close', () => {
      unsubscribe();
      this.#streams.delete(res);
    });
  }
}
