// The CRI sandbox → netns resolution of the registry (registry.ts): a sandbox's PodSandboxStatus (verbose)
// gives a pid and/or a netns path, whose inode names the entity; the result is cached per sandbox id and
// re-checked against the kernel on each refresh. Its own file so that the registry holds only the refresh
// loop; it imports cri-client.ts for types only, so gRPC still loads only once a CRI socket is found.
import { statSync } from 'node:fs';
import type { Logger } from '../log/logger.ts';
import { hostNetnsInode, hostNetnsPath } from '../netns/setns.ts';
import type { CriClient } from './cri-client.ts';
import type { PodSandbox, PodSandboxStatus } from './cri-types.ts';
import type { PodIdentity } from './entity.ts';
import type { LabelPolicy } from './labels.ts';
import { netnsInodeOfPid } from './netns-discovery.ts';
import { parseSandboxInfo, type SandboxRuntimeInfo } from './sandbox-info.ts';

export interface CachedSandbox {
  readonly status: PodSandboxStatus;
  readonly info: SandboxRuntimeInfo;
  readonly pid: number | undefined;
  readonly inode: number;
  readonly netnsPath: string;
  readonly hostNetwork: boolean;
}

export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

export function inodeOfPath(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/**
 * Whether a netns seen before is still there: its process still in it (by pid), or its path still
 * naming it (no pid). A recycled pid or a new netns under the same path has another inode.
 */
export function netnsStillHeld(pid: number | undefined, netnsPath: string, inode: number): boolean {
  return pid !== undefined ? netnsInodeOfPid(pid) === inode : inodeOfPath(netnsPath) === inode;
}

/** Label bounds applied while building pod identities (pods × labels left out / values cut). */
export interface LabelStats {
  droppedKeys: number;
  truncatedValues: number;
}

/** What resolveSandbox needs from the registry. */
export interface SandboxResolveContext {
  readonly cache: Map<string, CachedSandbox>;
  /** NOT_FOUND from the runtime (the sandbox was removed between list and status). */
  readonly isNotFound: (err: unknown) => boolean;
  readonly log: Logger;
}

/** The cached entry of a READY sandbox, or undefined when it went away or has no readable netns. */
export async function resolveSandbox(
  ctx: SandboxResolveContext,
  client: CriClient,
  sb: PodSandbox,
): Promise<CachedSandbox | undefined> {
  const cached = ctx.cache.get(sb.id);
  if (cached) {
    if (netnsStillHeld(cached.pid, cached.netnsPath, cached.inode)) return cached;
    ctx.cache.delete(sb.id);
  }
  let res: Awaited<ReturnType<CriClient['podSandboxStatus']>>;
  try {
    res = await client.podSandboxStatus(sb.id, true);
  } catch (err) {
    if (ctx.isNotFound(err)) return undefined; // removed between list and status
    throw err;
  }
  const status = res.status;
  if (status?.state !== 'SANDBOX_READY') return undefined;
  const info = parseSandboxInfo(res.info);
  const nodeMode = status.linux?.namespaces?.options?.network === 'NODE';
  let inode: number | undefined;
  let netnsPath: string | undefined;
  if (info.pid !== undefined) {
    inode = netnsInodeOfPid(info.pid);
    netnsPath = `/proc/${info.pid}/ns/net`;
  }
  if (info.netnsPath) {
    const byPath = inodeOfPath(info.netnsPath);
    if (byPath !== undefined && (inode === undefined || byPath === inode)) {
      inode = byPath;
      netnsPath = info.netnsPath;
    }
  }
  if (nodeMode && inode === undefined) {
    inode = hostNetnsInode;
    netnsPath = hostNetnsPath;
  }
  if (inode === undefined || netnsPath === undefined) {
    ctx.log.debug({ sandbox: sb.id }, 'sandbox has no readable netns (stopping?), skipped');
    return undefined;
  }
  const entry: CachedSandbox = {
    status,
    info,
    pid: info.pid,
    inode,
    netnsPath,
    hostNetwork: nodeMode || inode === hostNetnsInode,
  };
  ctx.cache.set(sb.id, entry);
  return entry;
}

/** The pod's identity from its cached sandbox; counts the label bounds applied into `stats`. */
export function podIdentity(c: CachedSandbox, labels: LabelPolicy, stats: LabelStats): PodIdentity {
  const st = c.status;
  const sel = labels.select(st.labels ?? {});
  stats.droppedKeys += sel.droppedKeys;
  stats.truncatedValues += sel.truncatedValues;
  const ips = c.hostNetwork
    ? []
    : [st.network?.ip, ...(st.network?.additional_ips ?? []).map((x) => x.ip)].filter(
        (x): x is string => typeof x === 'string' && x !== '',
      );
  return Object.freeze({
    uid: st.metadata?.uid ?? '',
    name: st.metadata?.name ?? '',
    namespace: st.metadata?.namespace ?? '',
    labels: Object.freeze(sel.labels),
    ips: Object.freeze(ips),
    sandboxId: st.id,
    hostNetwork: c.hostNetwork,
    ...(c.info.cgroupParent ? { cgroupParent: c.info.cgroupParent } : {}),
  });
}
