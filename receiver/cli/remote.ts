// Reaching a podnet agent's local server from the CLI: on this node (the default URL) or on another node
// through `kubectl port-forward` (`--url`), with the server's bearer token when it requires one.
//
//   --url URL            or PODNET_URL         (default http://127.0.0.1:9464)
//   --token-file FILE    or PODNET_TOKEN_FILE  (a file, as the token is mounted from a Secret)
//
// The token is read from a file, never from the command line (it would show in `ps` and shell history).
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';

export const DEFAULT_URL = 'http://127.0.0.1:9464';

export interface RemoteOptions {
  readonly url: string;
  readonly tokenFile?: string | undefined;
}

export function parseUrl(v: string): string {
  try {
    const u = new URL(v);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    return v.replace(/\/+$/, '');
  } catch {
    throw new InvalidArgumentError(`expected an http(s):// URL of the podnet server, e.g. ${DEFAULT_URL}`);
  }
}

/** Adds --url and --token-file (with their environment variables) to a command. */
export function withRemoteOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--url <url>', 'podnet server (another node: kubectl port-forward, see docs/deploy.md)')
        .env('PODNET_URL')
        .default(DEFAULT_URL)
        .argParser(parseUrl),
    )
    .addOption(
      new Option('--token-file <file>', "file holding the server's bearer token").env('PODNET_TOKEN_FILE'),
    );
}

/** Request headers for the server: the bearer token when a token file is given. Throws a readable error. */
export function remoteHeaders(o: RemoteOptions): Record<string, string> {
  if (!o.tokenFile) return {};
  let token: string;
  try {
    token = readFileSync(o.tokenFile, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read --token-file ${o.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  if (!token) throw new Error(`--token-file ${o.tokenFile} is empty`);
  return { authorization: `Bearer ${token}` };
}

/**
 * GET a server path; a network error or a non-2xx answer becomes an Error that says what to do. `signal`
 * aborts the request and, once answered, the body stream (a long `/capture` ended by Ctrl-C).
 */
export async function remoteGet(
  o: RemoteOptions,
  path: string,
  opts: { signal?: AbortSignal } = {},
): Promise<Response> {
  const headers = remoteHeaders(o);
  let res: Response;
  try {
    res = await fetch(`${o.url}${path}`, { headers, ...(opts.signal ? { signal: opts.signal } : {}) });
  } catch (err) {
    const cause = (err as Error).cause as Error | undefined;
    throw new Error(`cannot reach ${o.url}: ${cause?.message ?? (err as Error).message}`);
  }
  if (res.status === 401)
    throw new Error(
      o.tokenFile
        ? `${o.url} refused the token in ${o.tokenFile} (401)`
        : `${o.url} requires a bearer token (401): pass --token-file or set PODNET_TOKEN_FILE`,
    );
  if (!res.ok) throw new Error(`${o.url}${path.split('?')[0]} answered ${res.status}: ${await res.text()}`);
  return res;
}
