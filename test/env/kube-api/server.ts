// A PROTOCOL FAKE of the Kubernetes API server's list and watch, written from the API documentation
// (https://kubernetes.io/docs/reference/using-api/api-concepts/: "Efficient detection of changes",
// "Watch bookmarks", "Retrieving large results sets in chunks", "410 Gone responses"), because no
// kube-apiserver can run on the development machines. It is not Kubernetes: it stores JSON objects of four
// resources and speaks the wire format podnet's client uses:
//   - GET <collection>?limit=N[&continue=T] → `{"kind":"<Kind>List","metadata":{"resourceVersion","continue"},
//     "items":[...]}`; a continue token older than the compaction point → 410 with a Status (reason Expired);
//   - GET <collection>?watch=1&resourceVersion=RV[&allowWatchBookmarks=true][&timeoutSeconds=S] → 200 with a
//     chunked stream of `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}\n`: first the
//     changes after RV from the history, then live ones; BOOKMARKs (an object with only
//     metadata.resourceVersion) every `bookmarkMs`; RV older than the compaction point → one ERROR event
//     with a Status of code 410 ("too old resource version") and the end of the stream (or, with
//     `goneAsHttpStatus`, an HTTP 410 answer, as some servers do);
//   - `Authorization: Bearer <token>` required (401 without), 403 for resources listed in `forbidden`.
// resourceVersions are one cluster-wide counter, as etcd revisions are.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export type Resource = 'pods' | 'services' | 'endpointslices' | 'nodes';
const PATHS: Record<string, Resource> = {
  '/api/v1/pods': 'pods',
  '/api/v1/services': 'services',
  '/apis/discovery.k8s.io/v1/endpointslices': 'endpointslices',
  '/api/v1/nodes': 'nodes',
};
const KINDS: Record<Resource, string> = {
  pods: 'Pod',
  services: 'Service',
  endpointslices: 'EndpointSlice',
  nodes: 'Node',
};

type Obj = {
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
} & Record<string, unknown>;

interface Change {
  readonly rv: number;
  readonly resource: Resource;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Obj;
}

interface Watcher {
  readonly resource: Resource;
  readonly res: ServerResponse;
  readonly bookmarks: boolean;
  timers: NodeJS.Timeout[];
}

export interface FakeApiOptions {
  readonly token?: string;
  readonly bookmarkMs?: number;
  readonly forbidden?: readonly Resource[];
  /** Answer a watch from a compacted resourceVersion with HTTP 410 instead of an ERROR event. */
  readonly goneAsHttpStatus?: boolean;
  /** Serve HTTPS with this PEM certificate and key (as a real API server does). */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  /** End every watch at once with an empty 200 (a misbehaving proxy). */
  readonly emptyWatches?: boolean;
}

export interface RequestLog {
  readonly path: string;
  readonly query: Record<string, string>;
  readonly status: number;
}

const keyOf = (o: Obj) =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;

export class FakeKubeApi {
  readonly url: string;
  readonly requests: RequestLog[] = [];
  readonly #server: Server;
  readonly #o: FakeApiOptions;
  readonly #store: Record<Resource, Map<string, Obj>> = {
    pods: new Map(),
    services: new Map(),
    endpointslices: new Map(),
    nodes: new Map(),
  };
  #rv = 100;
  /** Changes kept for watches; those at or before `#compacted` are gone. */
  #history: Change[] = [];
  #compacted = 100;
  readonly #watchers = new Set<Watcher>();

  private constructor(server: Server, o: FakeApiOptions) {
    this.#server = server;
    this.#o = o;
    const a = server.address() as AddressInfo;
    this.url = `${o.tls ? 'https' : 'http'}://127.0.0.1:${a.port}`;
  }

  static async start(o: FakeApiOptions = {}): Promise<FakeKubeApi> {
    const server: Server = o.tls ? createTlsServer({ cert: o.tls.cert, key: o.tls.key }) : createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const api = new FakeKubeApi(server, o);
    server.on('request', (req, res) => api.#handle(req, res));
    return api;
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  watchers(resource?: Resource): number {
    return [...this.#watchers].filter((w) => !resource || w.resource === resource).length;
  }

  /** Create or replace an object (ADDED / MODIFIED). */
  apply(resource: Resource, object: Obj): void {
    const key = keyOf(object);
    const type = this.#store[resource].has(key) ? 'MODIFIED' : 'ADDED';
    this.#change(resource, type, object);
  }

  delete(resource: Resource, key: string): void {
    const prev = this.#store[resource].get(key);
    if (prev) this.#change(resource, 'DELETED', prev);
  }

  /** Forget the history up to now: a watch or continue token from before gets 410 Gone. */
  compact(): void {
    this.#compacted = this.#rv;
    this.#history = [];
  }

  /** Send every open watch an ERROR event with a 410 Status and end it (what a server does after compaction). */
  expireWatches(): void {
    for (const w of this.#watchers) {
      w.res.write(`${JSON.stringify({ type: 'ERROR', object: gone('too old resource version') })}\n`);
      this.#end(w);
    }
  }

  /** End every open watch normally (as at timeoutSeconds): the client watches again from its last version. */
  endWatches(): void {
    for (const w of this.#watchers) this.#end(w);
  }

  /** Cut every open watch's connection mid-stream (no end of the chunked body), as a dropped TCP link. */
  cutWatches(): void {
    for (const w of this.#watchers) {
      this.#watchers.delete(w);
      for (const t of w.timers) clearTimeout(t);
      w.res.destroy();
    }
  }

  async close(): Promise<void> {
    for (const w of this.#watchers) this.#end(w);
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  #change(resource: Resource, type: Change['type'], object: Obj): void {
    const rv = ++this.#rv;
    const o = structuredClone(object);
    o.metadata.resourceVersion = String(rv);
    if (type === 'DELETED') this.#store[resource].delete(keyOf(o));
    else this.#store[resource].set(keyOf(o), o);
    const c: Change = { rv, resource, type, object: o };
    this.#history.push(c);
    for (const w of this.#watchers) if (w.resource === resource) this.#send(w, c);
  }

  #send(w: Watcher, c: Change): void {
    w.res.write(
      `${JSON.stringify({ type: c.type, object: { kind: KINDS[c.resource], apiVersion: 'v1', ...c.object } })}\n`,
    );
  }

  #end(w: Watcher): void {
    if (!this.#watchers.delete(w)) return;
    for (const t of w.timers) clearTimeout(t);
    w.res.end();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const log = (status: number) => this.requests.push({ path: url.pathname, query, status });
    const fail = (status: number, st: unknown) => {
      log(status);
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(st));
    };
    if (this.#o.token && req.headers.authorization !== `Bearer ${this.#o.token}`)
      return void fail(401, status(401, 'Unauthorized', 'Unauthorized'));
    const resource = PATHS[url.pathname];
    if (!resource || req.method !== 'GET')
      return void fail(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    if (this.#o.forbidden?.includes(resource))
      return void fail(
        403,
        status(
          403,
          'Forbidden',
          `${resource} is forbidden: User "system:serviceaccount:podnet:podnet" cannot list resource "${resource}"`,
        ),
      );
    if (query['watch'] === '1' || query['watch'] === 'true')
      return void this.#watch(resource, query, res, log);
    // list, in pages
    const limit = Number(query['limit'] ?? 0) || Number.POSITIVE_INFINITY;
    let start = 0;
    let listRv = this.#rv;
    if (query['continue']) {
      const t = JSON.parse(Buffer.from(query['continue'], 'base64url').toString()) as {
        rv: number;
        start: number;
      };
      if (t.rv < this.#compacted)
        return void fail(410, {
          ...gone('The provided continue parameter is too old to display a consistent list result.'),
          reason: 'Expired',
        });
      start = t.start;
      listRv = t.rv;
    }
    const all = [...this.#store[resource].values()].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
    const items = all.slice(start, start + limit);
    const more = start + items.length < all.length;
    log(200);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(
      JSON.stringify({
        kind: `${KINDS[resource]}List`,
        apiVersion: 'v1',
        metadata: {
          resourceVersion: String(listRv),
          ...(more
            ? {
                continue: Buffer.from(JSON.stringify({ rv: listRv, start: start + items.length })).toString(
                  'base64url',
                ),
              }
            : {}),
        },
        items,
      }),
    );
  }

  #watch(
    resource: Resource,
    query: Record<string, string>,
    res: ServerResponse,
    log: (s: number) => void,
  ): void {
    const from = Number(query['resourceVersion'] ?? 0);
    if (from < this.#compacted && this.#o.goneAsHttpStatus) {
      log(410);
      res
        .writeHead(410, { 'Content-Type': 'application/json' })
        .end(JSON.stringify(gone('too old resource version')));
      return;
    }
    log(200);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    if (this.#o.emptyWatches) return void res.end();
    res.flushHeaders();
    if (from < this.#compacted) {
      res.end(
        `${JSON.stringify({ type: 'ERROR', object: gone(`too old resource version: ${from} (${this.#compacted})`) })}\n`,
      );
      return;
    }
    const w: Watcher = { resource, res, bookmarks: query['allowWatchBookmarks'] === 'true', timers: [] };
    this.#watchers.add(w);
    res.on('close', () => this.#end(w));
    for (const c of this.#history) if (c.resource === resource && c.rv > from) this.#send(w, c);
    const timeout = Number(query['timeoutSeconds'] ?? 0);
    if (timeout > 0) w.timers.push(setTimeout(() => this.#end(w), timeout * 1000));
    if (w.bookmarks && this.#o.bookmarkMs) {
      const tick = () => {
        if (!this.#watchers.has(w)) return;
        w.res.write(
          `${JSON.stringify({ type: 'BOOKMARK', object: { kind: KINDS[resource], apiVersion: 'v1', metadata: { resourceVersion: String(this.#rv) } } })}\n`,
        );
        w.timers.push(setTimeout(tick, this.#o.bookmarkMs));
      };
      w.timers.push(setTimeout(tick, this.#o.bookmarkMs));
    }
  }
}

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}
function gone(message: string) {
  return status(410, 'Expired', message);
}

// Object builders for tests (only the fields podnet reads, as the API spells them).
export function pod(o: {
  name: string;
  namespace: string;
  ips: string[];
  node?: string;
  uid?: string;
  phase?: string;
  hostNetwork?: boolean;
  replicaSet?: { name: string; hash: string };
}): Obj {
  return {
    metadata: {
      name: o.name,
      namespace: o.namespace,
      uid: o.uid ?? `uid-${o.namespace}-${o.name}`,
      ...(o.replicaSet
        ? {
            labels: { 'pod-template-hash': o.replicaSet.hash },
            ownerReferences: [
              {
                apiVersion: 'apps/v1',
                kind: 'ReplicaSet',
                name: o.replicaSet.name,
                controller: true,
                uid: 'rs',
              },
            ],
          }
        : {}),
    },
    spec: { nodeName: o.node ?? 'node-a', ...(o.hostNetwork ? { hostNetwork: true } : {}) },
    status: { phase: o.phase ?? 'Running', podIP: o.ips[0], podIPs: o.ips.map((ip) => ({ ip })) },
  };
}
export function service(o: { name: string; namespace: string; clusterIPs: string[] | 'None' }): Obj {
  const ips = o.clusterIPs === 'None' ? ['None'] : o.clusterIPs;
  return {
    metadata: { name: o.name, namespace: o.namespace },
    spec: { type: 'ClusterIP', clusterIP: ips[0], clusterIPs: ips },
  };
}
export function endpointSlice(o: {
  name: string;
  namespace: string;
  service: string;
  addresses: string[];
}): Obj {
  return {
    metadata: { name: o.name, namespace: o.namespace, labels: { 'kubernetes.io/service-name': o.service } },
    addressType: 'IPv4',
    endpoints: o.addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
  };
}
export function node(o: { name: string; internalIP: string }): Obj {
  return {
    metadata: { name: o.name },
    status: {
      addresses: [
        { type: 'InternalIP', address: o.internalIP },
        { type: 'Hostname', address: o.name },
      ],
    },
  };
}
