// Which CRI socket to talk to: the configured endpoint, else CONTAINER_RUNTIME_ENDPOINT (as crictl and
// kubelet read it), else the first of the usual runtime sockets that exists on this node.
import { statSync } from 'node:fs';

/** Sockets probed in order when nothing is configured (containerd, CRI-O, k3s, cri-dockerd). */
export const DEFAULT_CRI_SOCKETS: readonly string[] = [
  '/run/containerd/containerd.sock',
  '/var/run/crio/crio.sock',
  '/run/crio/crio.sock',
  '/run/k3s/containerd/containerd.sock',
  '/var/run/cri-dockerd.sock',
];

export interface ResolvedEndpoint {
  /** gRPC target, always `unix:///abs/path`. */
  readonly target: string;
  /** Absolute socket path. */
  readonly socketPath: string;
  /** Where it came from, for logs and /status. */
  readonly source: 'config' | 'env' | 'default';
}

export class CriEndpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CriEndpointError';
  }
}

/**
 * Normalizes `unix:///run/x.sock`, `unix:/run/x.sock` or `/run/x.sock` to a socket path.
 * Anything else (tcp://, npipe://, relative paths) is refused with a message naming the value.
 */
export function socketPathOf(endpoint: string): string {
  const e = endpoint.trim();
  let path: string;
  if (e.startsWith('unix://')) path = e.slice('unix://'.length);
  else if (e.startsWith('unix:')) path = e.slice('unix:'.length);
  else if (e.includes('://')) {
    throw new CriEndpointError(`CRI endpoint "${endpoint}": only unix sockets are supported (unix:///path)`);
  } else path = e;
  if (!path.startsWith('/')) {
    throw new CriEndpointError(`CRI endpoint "${endpoint}": socket path must be absolute`);
  }
  return path;
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/**
 * Resolves the CRI endpoint. Returns undefined when nothing is configured and no usual socket exists
 * (a plain Linux host). A configured endpoint is returned even when its socket is missing: the
 * connection check then reports the problem clearly.
 */
export function resolveCriEndpoint(
  configured: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  candidates: readonly string[] = DEFAULT_CRI_SOCKETS,
): ResolvedEndpoint | undefined {
  if (configured !== undefined && configured.trim() !== '') {
    const socketPath = socketPathOf(configured);
    return { target: `unix://${socketPath}`, socketPath, source: 'config' };
  }
  const fromEnv = env['CONTAINER_RUNTIME_ENDPOINT'];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    const socketPath = socketPathOf(fromEnv);
    return { target: `unix://${socketPath}`, socketPath, source: 'env' };
  }
  for (const socketPath of candidates) {
    if (isSocket(socketPath)) return { target: `unix://${socketPath}`, socketPath, source: 'default' };
  }
  return undefined;
}
