// Reads what a runtime tells about a sandbox in PodSandboxStatus(verbose=true).info. containerd puts one
// key, "info", holding JSON with `pid`, `runtimeSpec` (OCI spec: linux.namespaces[type=network].path),
// `config` (linux.cgroup_parent) and `cniResult` (Interfaces: name → {IPConfigs, Mac, Sandbox}). CRI-O's
// format differs; everything is read defensively and whatever is missing stays undefined.
import { existsSync } from 'node:fs';

export interface SandboxRuntimeInfo {
  /** Sandbox (pause) pid, when the runtime reports one (> 0). */
  readonly pid?: number;
  /** The network namespace path from the OCI spec (e.g. /var/run/netns/cni-<uuid>); absent for hostNetwork. */
  readonly netnsPath?: string;
  readonly cgroupParent?: string;
  /** Host-side interface of the pod from the CNI result, when it can be told apart from the bridge. */
  readonly hostVeth?: string;
  /** containerd's `netNamespaceClosed`. */
  readonly netnsClosed?: boolean;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

function parseJson(s: string | undefined): Json | undefined {
  if (!s) return undefined;
  try {
    return obj(JSON.parse(s));
  } catch {
    return undefined;
  }
}

/**
 * Picks the host-side interface from a CNI result's interface map: those without a Sandbox, minus
 * bridges (a bridge has /sys/class/net/<name>/bridge in the host netns). `sysClassNet` is a parameter
 * for tests only.
 */
export function hostVethFromCni(cniResult: unknown, sysClassNet = '/sys/class/net'): string | undefined {
  const ifaces = obj(obj(cniResult)?.['Interfaces']);
  if (!ifaces) return undefined;
  const hostSide = Object.entries(ifaces)
    .filter(([, v]) => {
      const sb = obj(v)?.['Sandbox'];
      return sb === '' || sb === undefined || sb === null;
    })
    .map(([k]) => k)
    .filter((name) => /^[^/\0]{1,15}$/.test(name) && !existsSync(`${sysClassNet}/${name}/bridge`));
  if (hostSide.length === 1) return hostSide[0];
  const veth = hostSide.filter((n) => n.startsWith('veth'));
  return veth.length === 1 ? veth[0] : undefined;
}

export function parseSandboxInfo(info: Readonly<Record<string, string>>): SandboxRuntimeInfo {
  const root = parseJson(info['info']) ?? {};
  const out: {
    pid?: number;
    netnsPath?: string;
    cgroupParent?: string;
    hostVeth?: string;
    netnsClosed?: boolean;
  } = {};
  const pidRaw = root['pid'] ?? info['pid'];
  const pid = typeof pidRaw === 'string' ? Number(pidRaw) : pidRaw;
  if (typeof pid === 'number' && Number.isInteger(pid) && pid > 0) out.pid = pid;
  const spec = obj(root['runtimeSpec']);
  const nss = obj(spec?.['linux'])?.['namespaces'];
  if (Array.isArray(nss)) {
    for (const ns of nss) {
      const n = obj(ns);
      if (n?.['type'] === 'network' && typeof n['path'] === 'string' && n['path'] !== '')
        out.netnsPath = n['path'];
    }
  }
  const cg = obj(obj(obj(root['config'])?.['linux']))?.['cgroup_parent'];
  if (typeof cg === 'string' && cg !== '') out.cgroupParent = cg;
  const veth = hostVethFromCni(root['cniResult']);
  if (veth) out.hostVeth = veth;
  if (typeof root['netNamespaceClosed'] === 'boolean') out.netnsClosed = root['netNamespaceClosed'];
  return out;
}
