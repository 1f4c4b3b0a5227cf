// A small CRI (`runtime.v1.RuntimeService`) client over a unix socket: @grpc/grpc-js with the proto subset
// in ./proto/api.proto. Used by discovery (Version, ListPodSandbox, PodSandboxStatus) and by the test
// environment (sandbox and container lifecycle, ExecSync).
//
// Reconnect: when a call fails with UNAVAILABLE (runtime restarted, socket recreated) the channel is
// dropped and a fresh one is made; idempotent reads are retried once on the fresh channel.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type {
  Container,
  ContainerConfig,
  ContainerFilter,
  ContainerStatusResponse,
  ExecSyncResponse,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxStatusResponse,
  StatusResponse,
  VersionResponse,
} from './cri-types.ts';
import { type ResolvedEndpoint, socketPathOf } from './endpoint.ts';

const PROTO_PATH = fileURLToPath(new URL('./proto/api.proto', import.meta.url));

// ---- errors ----

export type CriErrorKind = 'missing' | 'not-socket' | 'refused' | 'not-cri' | 'rpc';

/** A CRI problem with a message that names the endpoint and what is wrong. */
export class CriError extends Error {
  readonly kind: CriErrorKind;
  readonly endpoint: string;
  /** gRPC status code, when the error came from a call. */
  readonly grpcCode: number | undefined;
  constructor(kind: CriErrorKind, endpoint: string, message: string, grpcCode?: number) {
    super(message);
    this.name = 'CriError';
    this.kind = kind;
    this.endpoint = endpoint;
    this.grpcCode = grpcCode;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof CriError && err.grpcCode === grpc.status.NOT_FOUND;
}

// ---- client ----

let cachedService: grpc.ServiceClientConstructor | undefined;

function serviceCtor(): grpc.ServiceClientConstructor {
  if (cachedService) return cachedService;
  const def = protoLoader.loadSync(PROTO_PATH, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } };
  };
  cachedService = pkg.runtime.v1.RuntimeService;
  return cachedService;
}

export interface CriClientOptions {
  /** Deadline of each call in ms (default 10 000, as kubelet's runtime-request-timeout is minutes). */
  timeoutMs?: number;
}

type Unary = (
  req: unknown,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: grpc.requestCallback<unknown>,
) => void;

const READ_METHODS = new Set([
  'Version',
  'Status',
  'ListPodSandbox',
  'PodSandboxStatus',
  'ListContainers',
  'ContainerStatus',
]);

export class CriClient {
  readonly target: string;
  readonly socketPath: string;
  readonly timeoutMs: number;
  #client: grpc.Client | undefined;
  #closed = false;

  private constructor(socketPath: string, opts: CriClientOptions) {
    this.socketPath = socketPath;
    this.target = `unix://${socketPath}`;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /**
   * Connects and checks that the socket speaks CRI runtime.v1 (Version). Throws CriError:
   * `missing` (no such file), `not-socket`, `refused` (nothing listening), `not-cri` (answers, but not CRI v1).
   */
  static async connect(
    endpoint: string | ResolvedEndpoint,
    opts: CriClientOptions = {},
  ): Promise<{
    client: CriClient;
    version: VersionResponse;
  }> {
    const socketPath = typeof endpoint === 'string' ? socketPathOf(endpoint) : endpoint.socketPath;
    const target = `unix://${socketPath}`;
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(socketPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CriError(
        'missing',
        target,
        `CRI endpoint ${target}: socket ${socketPath} does not exist (${code}); is the container runtime running? ` +
          'Set pods.criEndpoint or CONTAINER_RUNTIME_ENDPOINT to the runtime socket',
      );
    }
    if (!st.isSocket()) {
      throw new CriError(
        'not-socket',
        target,
        `CRI endpoint ${target}: ${socketPath} exists but is not a unix socket`,
      );
    }
    const client = new CriClient(socketPath, { timeoutMs: opts.timeoutMs ?? 5_000 });
    let version: VersionResponse;
    try {
      version = await client.version();
    } catch (err) {
      client.close();
      throw err;
    }
    if (version.runtime_api_version !== 'v1') {
      client.close();
      throw new CriError(
        'not-cri',
        target,
        `CRI endpoint ${target}: runtime ${version.runtime_name} ${version.runtime_version} speaks CRI API ` +
          `"${version.runtime_api_version}", podnet needs runtime.v1`,
      );
    }
    const ready = new CriClient(socketPath, opts);
    ready.#client = client.#client;
    client.#client = undefined;
    return { client: ready, version };
  }

  #grpc(): grpc.Client {
    if (this.#closed) throw new CriError('rpc', this.target, `CRI client for ${this.target} is closed`);
    if (!this.#client) {
      const Ctor = serviceCtor();
      this.#client = new Ctor(this.target, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': 16 * 1024 * 1024,
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2_000,
        'grpc.enable_retries': 0,
      });
    }
    return this.#client;
  }

  #dropChannel(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  #once<T>(method: string, req: unknown, timeoutMs: number): Promise<T> {
    const c = this.#grpc() as unknown as Record<string, Unary>;
    const fn = c[method];
    if (typeof fn !== 'function') throw new Error(`CRI method ${method} missing from the proto subset`);
    return new Promise<T>((resolve, reject) => {
      fn.call(c, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(err);
        else resolve(res as T);
      });
    });
  }

  async #call<T>(method: string, req: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    try {
      return await this.#once<T>(method, req, timeoutMs);
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (e.code === grpc.status.UNAVAILABLE && !this.#closed) {
        this.#dropChannel();
        if (READ_METHODS.has(method)) {
          try {
            return await this.#once<T>(method, req, timeoutMs);
          } catch (err2) {
            const e2 = err2 as grpc.ServiceError;
            if (e2.code === grpc.status.UNAVAILABLE) this.#dropChannel();
            throw this.#wrap(method, e2);
          }
        }
      }
      throw this.#wrap(method, e);
    }
  }

  #wrap(method: string, e: grpc.ServiceError): CriError {
    const details = e.details || e.message;
    if (e.code === grpc.status.UNIMPLEMENTED) {
      return new CriError(
        'not-cri',
        this.target,
        `CRI endpoint ${this.target} answers gRPC but not runtime.v1.RuntimeService/${method}: ${details}`,
        e.code,
      );
    }
    if (e.code === grpc.status.UNAVAILABLE && /ENOENT/.test(details)) {
      return new CriError(
        'missing',
        this.target,
        `CRI endpoint ${this.target}: socket ${this.socketPath} is gone (runtime stopped or restarting?)`,
        e.code,
      );
    }
    if (e.code === grpc.status.UNAVAILABLE && /ECONNREFUSED/.test(details)) {
      return new CriError(
        'refused',
        this.target,
        `CRI endpoint ${this.target}: nothing accepts connections on the socket (${details})`,
        e.code,
      );
    }
    if (
      method === 'Version' &&
      (e.code === grpc.status.UNAVAILABLE ||
        e.code === grpc.status.INTERNAL ||
        e.code === grpc.status.DEADLINE_EXCEEDED)
    ) {
      return new CriError(
        'not-cri',
        this.target,
        `CRI endpoint ${this.target} does not speak gRPC/CRI: Version failed with ${grpc.status[e.code]} (${details})`,
        e.code,
      );
    }
    return new CriError(
      'rpc',
      this.target,
      `CRI ${method} on ${this.target} failed: ${grpc.status[e.code] ?? e.code} ${details}`,
      e.code,
    );
  }

  version(): Promise<VersionResponse> {
    return this.#call('Version', { version: 'v1' });
  }
  status(verbose = false): Promise<StatusResponse> {
    return this.#call('Status', { verbose });
  }
  async listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    const res = await this.#call<{ items: PodSandbox[] }>('ListPodSandbox', { filter: filter ?? null });
    return res.items;
  }
  podSandboxStatus(podSandboxId: string, verbose = false): Promise<PodSandboxStatusResponse> {
    return this.#call('PodSandboxStatus', { pod_sandbox_id: podSandboxId, verbose });
  }
  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    const res = await this.#call<{ pod_sandbox_id: string }>('RunPodSandbox', {
      config,
      runtime_handler: runtimeHandler,
    });
    return res.pod_sandbox_id;
  }
  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await this.#call('StopPodSandbox', { pod_sandbox_id: podSandboxId }, Math.max(this.timeoutMs, 60_000));
  }
  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.#call('RemovePodSandbox', { pod_sandbox_id: podSandboxId }, Math.max(this.timeoutMs, 60_000));
  }
  async createContainer(
    podSandboxId: string,
    config: ContainerConfig,
    sandboxConfig: PodSandboxConfig,
  ): Promise<string> {
    const res = await this.#call<{ container_id: string }>('CreateContainer', {
      pod_sandbox_id: podSandboxId,
      config,
      sandbox_config: sandboxConfig,
    });
    return res.container_id;
  }
  async startContainer(containerId: string): Promise<void> {
    await this.#call('StartContainer', { container_id: containerId });
  }
  async stopContainer(containerId: string, timeoutS = 0): Promise<void> {
    await this.#call(
      'StopContainer',
      { container_id: containerId, timeout: timeoutS },
      this.timeoutMs + timeoutS * 1000,
    );
  }
  async removeContainer(containerId: string): Promise<void> {
    await this.#call('RemoveContainer', { container_id: containerId });
  }
  async listContainers(filter?: ContainerFilter): Promise<Container[]> {
    const res = await this.#call<{ containers: Container[] }>('ListContainers', { filter: filter ?? null });
    return res.containers;
  }
  containerStatus(containerId: string, verbose = false): Promise<ContainerStatusResponse> {
    return this.#call('ContainerStatus', { container_id: containerId, verbose });
  }
  /** Runs `cmd` in a container and waits (timeoutS is the runtime's timeout, 0 = none). */
  execSync(containerId: string, cmd: string[], timeoutS = 30): Promise<ExecSyncResponse> {
    return this.#call(
      'ExecSync',
      { container_id: containerId, cmd, timeout: timeoutS },
      (timeoutS + 10) * 1000,
    );
  }

  close(): void {
    this.#closed = true;
    this.#dropChannel();
  }
}
