// Captures run by the agent: GET /capture (a pcapng streamed to the client, capped in duration, bytes,
// snaplen and captures at once) and GET /captures (the triggered captures on disk: a JSON list, and each
// file). When the server is not on loopback, /capture is refused unless a bearer token protects it
// (server.bearer_token_file): a capture shows traffic, so it is never open to the network.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.ts';
import type { EntitySource } from '../pods/entity.ts';
import { sendJson } from '../server/json.ts';
import type { CaptureConfig } from './config.ts';
import { type CompiledFilter, compileFilter } from './pcap-filter.ts';
import { type CaptureCounts, CaptureSession, type CaptureSlots, DEFAULT_SNAPLEN } from './session.ts';
import { resolveTarget, TargetError, type TargetSpec } from './target.ts';
import type { TriggeredCaptures } from './trigger.ts';
import { parseBytesArg, parseDurationArg } from './units.ts';

export interface RouteContext {
  readonly url: URL;
  /** The server listens on a loopback address only. */
  readonly loopback: boolean;
  /** Requests carry a checked bearer token. */
  readonly tokenProtected: boolean;
}

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => void;

const CAPTURE_PARAMS = new Set([
  'pod',
  'netns',
  'host',
  'filter',
  'snaplen',
  'count',
  'duration',
  'max_bytes',
]);
const MAX_PARAM = 1024;

export class CaptureService implements CaptureSlots {
  #config: CaptureConfig;
  readonly #entities: Pick<EntitySource, 'entities' | 'pods'>;
  readonly #log: Logger;
  readonly #active = new Set<CaptureSession>();
  readonly counts: CaptureCounts = { on_demand: 0, refused: 0, triggered: 0, skipped: 0, failed: 0 };
  triggered: TriggeredCaptures | undefined;

  constructor(opts: {
    config: CaptureConfig;
    entities: Pick<EntitySource, 'entities' | 'pods'>;
    log: Logger;
  }) {
    this.#config = opts.config;
    this.#entities = opts.entities;
    this.#log = opts.log;
  }

  get config(): CaptureConfig {
    return this.#config;
  }

  configure(config: CaptureConfig): void {
    this.#config = config;
  }

  /** Captures running now (on demand and triggered). */
  get active(): number {
    return this.#active.size;
  }

  /** Whether one more capture may start now. */
  hasRoom(): boolean {
    return this.#active.size < this.#config.max_concurrent;
  }

  /** Tracks a session against max_concurrent until it ends. */
  track(session: CaptureSession): void {
    this.#active.add(session);
    void session.done.finally(() => this.#active.delete(session));
  }

  route(path: string): RouteHandler | undefined {
    if (path === '/capture') return (req, res, ctx) => this.#capture(req, res, ctx);
    if (path === '/captures' || path.startsWith('/captures/'))
      return (_req, res, ctx) => {
        if (!this.triggered) {
          sendJson(res, 404, { error: 'triggered captures are off (capture.triggers.enabled)' });
          return;
        }
        this.triggered.serve(res, ctx.url);
      };
    return undefined;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#active].map((s) => s.stop()));
  }

  #capture(_req: IncomingMessage, res: ServerResponse, ctx: RouteContext): void {
    const c = this.#config;
    if (!ctx.loopback && !ctx.tokenProtected) {
      this.counts.refused++;
      sendJson(res, 403, {
        error:
          '/capture is refused on a non-loopback server without a bearer token (server.bearer_token_file): captures show traffic',
      });
      return;
    }
    const q = ctx.url.searchParams;
    for (const [k, v] of q) {
      if (!CAPTURE_PARAMS.has(k)) {
        sendJson(res, 400, {
          error: `unknown parameter ${JSON.stringify(k)}; expected ${[...CAPTURE_PARAMS].join(', ')}`,
        });
        return;
      }
      if (v.length > MAX_PARAM) {
        sendJson(res, 400, { error: `parameter ${k} is longer than ${MAX_PARAM}` });
        return;
      }
    }
    const targets = ['pod', 'netns', 'host'].filter((k) => q.has(k));
    if (targets.length !== 1) {
      sendJson(res, 400, { error: 'give exactly one of pod=NS/NAME, netns=NAME, host=1' });
      return;
    }
    const spec: TargetSpec = q.has('pod')
      ? { kind: 'pod', ref: q.get('pod')! }
      : q.has('netns')
        ? { kind: 'netns', name: q.get('netns')! }
        : { kind: 'host' };
    const num = (k: string, parse: (v: string) => number | undefined): number | undefined | null => {
      const v = q.get(k);
      if (v === null) return undefined;
      const n = parse(v);
      return n === undefined || !Number.isFinite(n) || n <= 0 ? null : n;
    };
    // absent: headers only (no payload); a snaplen keeps that many bytes, payload included
    const snaplen = num('snaplen', Number);
    const count = num('count', Number);
    const durationMs = num('duration', parseDurationArg);
    const maxBytes = num('max_bytes', parseBytesArg);
    for (const [k, v] of [
      ['snaplen', snaplen],
      ['count', count],
      ['duration', durationMs],
      ['max_bytes', maxBytes],
    ] as const) {
      if (v === null) {
        sendJson(res, 400, {
          error: `parameter ${k} must be a positive number${k === 'duration' ? ' or a duration such as 10s' : ''}`,
        });
        return;
      }
    }
    if (snaplen !== undefined && (!Number.isInteger(snaplen) || snaplen! > c.max_snaplen)) {
      sendJson(res, 400, {
        error: `snaplen must be an integer up to ${c.max_snaplen} (capture.max_snaplen)`,
      });
      return;
    }
    const filter = q.get('filter') ?? '';
    let compiled: CompiledFilter;
    try {
      compiled = compileFilter(filter, snaplen ?? DEFAULT_SNAPLEN); // checked here, attached by the session
    } catch (err) {
      sendJson(res, 400, { error: (err as Error).message });
      return;
    }
    let target: ReturnType<typeof resolveTarget>;
    try {
      target = resolveTarget(spec, this.#entities);
    } catch (err) {
      if (err instanceof TargetError) sendJson(res, err.status, { error: err.message });
      else throw err;
      return;
    }
    if (!this.hasRoom()) {
      this.counts.refused++;
      sendJson(res, 429, {
        error: `${this.#active.size} captures running (capture.max_concurrent); try again later`,
      });
      return;
    }
    const effDuration = Math.min(durationMs ?? c.max_duration, c.max_duration);
    const effBytes = Math.min(maxBytes ?? c.max_bytes, c.max_bytes);
    let session: CaptureSession;
    captureHeaders(res, effDuration, effBytes);
    try {
      session = new CaptureSession({
        netnsPath: target.netnsPath,
        filter: compiled,
        snaplen: snaplen ?? undefined,
        count: count ?? undefined,
        durationMs: effDuration,
        maxBytes: effBytes,
        comment: `${target.description}${filter ? `, filter: ${filter}` : ''}`,
        write: (b) => res.write(b),
        onDrain: (fn) => res.once('drain', fn),
        log: this.#log,
      });
    } catch (err) {
      this.counts.failed++;
      this.#log.warn({ err, target: target.description }, 'capture failed to start');
      if (!res.headersSent) {
        res.removeHeader('podnet-capture-duration-ms');
        res.removeHeader('podnet-capture-max-bytes');
        sendJson(res, 500, { error: (err as Error).message });
      } else res.end();
      return;
    }
    this.counts.on_demand++;
    this.track(session);
    this.#log.info(
      { target: target.description, filter, durationMs: effDuration, maxBytes: effBytes },
      'capture started',
    );
    res.on('close', () => void session.stop());
    void session.done.then((r) => {
      this.#log.info({ target: target.description, ...r }, 'capture finished');
      res.end();
    });
  }
}

/** Sets the capture response headers before the first byte (CaptureSession writes the header block). */
export function captureHeaders(res: ServerResponse, durationMs: number, maxBytes: number): void {
  res.statusCode = 200;
  res.setHeader('content-type', 'application/vnd.tcpdump.pcapng');
  res.setHeader('cache-control', 'no-store');
  res.setHeader('podnet-capture-duration-ms', String(durationMs));
  res.setHeader('podnet-capture-max-bytes', String(maxBytes));
}
