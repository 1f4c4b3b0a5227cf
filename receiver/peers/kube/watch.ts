// Kubernetes list+watch over plain HTTP(S), as the API conventions describe it
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes):
//   1. list in pages (`limit`, `continue`) → the items and the list's `metadata.resourceVersion`;
//   2. watch from that resourceVersion (`watch=1`, `allowWatchBookmarks=true`, `timeoutSeconds`): a
//      chunked stream of JSON objects `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}`,
//      one per line; BOOKMARK only moves the resourceVersion on;
//   3. when the stream ends, watch again from the last resourceVersion seen;
//   4. `410 Gone` (as the HTTP status, or an ERROR event whose Status has code 410: the version is too
//      old, compacted away) → list again (a relist replaces the whole view);
//   5. any other failure → back off (doubling, with jitter, capped) and try again.
// Items are reduced by `reduce` page by page, so a list of 10 000 pods is never held as full objects.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../../log/logger.ts';

export interface KubeConnection {
  /** `https://host:port` (or `http://` for the protocol-fake test server). */
  readonly server: string;
  /** Bearer token, read per request (service-account tokens are rotated on disk). */
  readonly token?: () => string | undefined;
  readonly ca?: Buffer | undefined;
}

/** A watch that ends this soon without a single line is treated as a failure (backoff). */
const QUICK_END_MS = 1000;

export class GoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoneError';
  }
}

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

export interface WatchEvent {
  readonly type: string;
  readonly object: unknown;
}

export interface ListWatchOptions {
  readonly conn: KubeConnection;
  /** e.g. `/api/v1/pods`. */
  readonly path: string;
  readonly log: Logger;
  /** Reduces each listed item as its page arrives (pages are not kept as full objects). */
  readonly reduce: (item: unknown) => unknown;
  /** A full list (a relist included): every item, reduced. */
  readonly onList: (items: readonly unknown[]) => void;
  readonly onEvent: (ev: WatchEvent) => void;
  readonly pageSize?: number;
  /** Server-side watch timeout, s (the stream then ends and is reopened). Default 300. */
  readonly timeoutSeconds?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
}

export interface ListWatchStatus {
  readonly path: string;
  readonly synced: boolean;
  readonly resourceVersion: string | undefined;
  readonly lists: number;
  readonly relists: number;
  readonly watches: number;
  readonly events: number;
  readonly bookmarks: number;
  readonly errors: number;
  readonly lastError?: string;
}

export class ListWatch {
  readonly #o: ListWatchOptions;
  #rv: string | undefined;
  #stopped = false;
  #req: { destroy(): void } | undefined;
  #sleep: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  #synced = false;
  #counts = { lists: 0, relists: 0, watches: 0, events: 0, bookmarks: 0, errors: 0 };
  #lastError: string | undefined;
  #loop: Promise<void> | undefined;
  /** Watch lines received, ever. */
  #lines = 0;

  constructor(o: ListWatchOptions) {
    this.#o = o;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#req?.destroy();
    if (this.#sleep) {
      clearTimeout(this.#sleep.timer);
      this.#sleep.resolve();
    }
    await this.#loop;
  }

  get synced(): boolean {
    return this.#synced;
  }

  status(): ListWatchStatus {
    return {
      path: this.#o.path,
      synced: this.#synced,
      resourceVersion: this.#rv,
      ...this.#counts,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  async #run(): Promise<void> {
    const initial = this.#o.backoffInitialMs ?? 1000;
    const max = this.#o.backoffMaxMs ?? 60_000;
    let backoff = initial;
    while (!this.#stopped) {
      try {
        if (this.#rv === undefined) {
          await this.#list();
          backoff = initial;
        }
        const t0 = Date.now();
        const lines = this.#lines;
        await this.#watch();
        if (this.#lines === lines && Date.now() - t0 < QUICK_END_MS) {
          // ended at once with nothing in it (a proxy closing the stream?): not a loop of requests
          throw new Error('watch stream ended at once without events');
        }
        backoff = initial;
      } catch (err) {
        if (this.#stopped) return;
        if (err instanceof GoneError) {
          // Too old: start over from a fresh list, at once.
          this.#o.log.info({ path: this.#o.path, err: err.message }, 'kubernetes watch expired; relisting');
          this.#rv = undefined;
          this.#counts.relists++;
          continue;
        }
        this.#counts.errors++;
        const msg = err instanceof Error ? err.message : String(err);
        if (msg !== this.#lastError)
          this.#o.log.warn({ path: this.#o.path, err: msg }, 'kubernetes list/watch failed');
        this.#lastError = msg;
        await this.#wait(backoff * (0.75 + Math.random() * 0.5));
        backoff = Math.min(max, backoff * 2);
      }
    }
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#sleep = undefined;
        resolve();
      }, ms);
      timer.unref();
      this.#sleep = { timer, resolve };
    });
  }

  async #list(): Promise<void> {
    const items: unknown[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const q = new URLSearchParams({ limit: String(this.#o.pageSize ?? 500) });
      if (cont) q.set('continue', cont);
      const body = await this.#get(`${this.#o.path}?${q}`);
      const page = JSON.parse(body) as {
        kind?: string;
        items?: unknown[];
        metadata?: { resourceVersion?: string; continue?: string };
      };
      if (!Array.isArray(page.items)) throw new Error(`list ${this.#o.path}: no items in the answer`);
      for (const it of page.items) items.push(this.#o.reduce(it));
      rv = page.metadata?.resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont && !this.#stopped);
    if (this.#stopped) return;
    if (!rv) throw new Error(`list ${this.#o.path}: no resourceVersion in the answer`);
    this.#o.onList(items);
    this.#rv = rv;
    this.#synced = true;
    this.#counts.lists++;
    this.#lastError = undefined;
  }

  #watch(): Promise<void> {
    const q = new URLSearchParams({
      watch: '1',
      resourceVersion: this.#rv ?? '',
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(this.#o.timeoutSeconds ?? 300),
    });
    this.#counts.watches++;
    return new Promise<void>((resolve, reject) => {
      const req = this.#request(`${this.#o.path}?${q}`, (res) => {
        if (res.statusCode !== 200) {
          readAll(res).then((body) => reject(statusError(res.statusCode ?? 0, body)), reject);
          return;
        }
        this.#lastError = undefined;
        let buf = '';
        let failed = false;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (failed) return;
          buf += chunk;
          let nl = buf.indexOf('\n');
          while (nl >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            nl = buf.indexOf('\n');
            if (line === '') continue;
            try {
              this.#onLine(line);
            } catch (err) {
              failed = true;
              req.destroy();
              reject(err);
              return;
            }
          }
        });
        res.on('end', () => {
          if (failed) return;
          if (buf.trim() !== '') {
            try {
              this.#onLine(buf.trim());
            } catch (err) {
              reject(err);
              return;
            }
          }
          resolve();
        });
        res.on('error', reject);
        // the connection closed before the response ended (what the deprecated 'aborted' event told)
        res.on('close', () => {
          if (!res.complete) reject(new Error('watch stream aborted'));
        });
      });
      // No byte for this long (bookmarks come about every minute): the connection is dead.
      req.setTimeout(((this.#o.timeoutSeconds ?? 300) + 60) * 1000, () =>
        req.destroy(new Error('watch stalled')),
      );
      req.on('error', (err) => reject(this.#stopped ? new Error('stopped') : err));
    });
  }

  #onLine(line: string): void {
    this.#lines++;
    const ev = JSON.parse(line) as WatchEvent;
    const meta = (ev.object as { metadata?: { resourceVersion?: string } } | null)?.metadata;
    switch (ev.type) {
      case 'BOOKMARK':
        this.#counts.bookmarks++;
        if (meta?.resourceVersion) this.#rv = meta.resourceVersion;
        return;
      case 'ERROR': {
        const st = ev.object as { code?: number; message?: string; reason?: string } | null;
        if (st?.code === 410 || st?.reason === 'Expired' || st?.reason === 'Gone')
          throw new GoneError(st?.message ?? 'resourceVersion too old');
        throw new ApiError(st?.code ?? 0, `watch error: ${st?.message ?? line}`);
      }
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED':
        this.#counts.events++;
        this.#o.onEvent(ev);
        if (meta?.resourceVersion) this.#rv = meta.resourceVersion;
        return;
      default:
        throw new Error(`unknown watch event type ${String(ev.type)}`);
    }
  }

  #get(path: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const req = this.#request(path, (res) => {
        readAll(res).then((body) => {
          if (res.statusCode === 200) resolve(body);
          else reject(statusError(res.statusCode ?? 0, body));
        }, reject);
      });
      req.setTimeout(60_000, () => req.destroy(new Error('list timed out')));
      req.on('error', reject);
    });
  }

  #request(path: string, onResponse: (res: IncomingMessage) => void) {
    const c = this.#o.conn;
    const url = new URL(path, c.server);
    const token = c.token?.();
    const opts = {
      method: 'GET',
      headers: {
        Accept: 'application/json',
        'User-Agent': 'podnet',
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      ...(c.ca ? { ca: c.ca } : {}),
    };
    const req =
      url.protocol === 'http:' ? httpRequest(url, opts, onResponse) : httpsRequest(url, opts, onResponse);
    req.end();
    this.#req = req;
    return req;
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function statusError(code: number, body: string): Error {
  let message = body.slice(0, 300);
  try {
    const st = JSON.parse(body) as { message?: string };
    if (st.message) message = st.message;
  } catch {}
  if (code === 410) return new GoneError(message);
  if (code === 401 || code === 403)
    return new ApiError(
      code,
      `HTTP ${code}: ${message} (podnet needs get/list/watch on pods, services, endpointslices, nodes: deploy/kubernetes/base/rbac.yaml)`,
    );
  return new ApiError(code, `HTTP ${code}: ${message}`);
}
