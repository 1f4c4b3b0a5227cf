// The reusable real-CRI test environment: a private containerd (CRI plugin, runc, CNI bridge) with its
// state under a temp dir and its socket private to the test run, an image built from the static
// busybox, and helpers to create/delete pods (incl. hostNetwork) and exec in them. Everything it creates
// carries the prefix `pnp<pid>`; teardown removes exactly what it recorded, also after failures.
//
//   import { startCriEnv } from '../env/cri/index.ts';
//   let env: CriEnv;
//   before(async () => { env = await startCriEnv(); });
//   after(async () => { await env?.teardown(); });
//   const web = await env.runPod({ name: 'web', containers: [{ name: 'httpd', command: ['httpd', '-f', '-p', '8080'] }] });
//   await env.exec(web, ['wget', '-q', '-O-', `http://${web.ip}:8080/`]);
//
// See docs/pods.md ("Test environment") for the full API and the cleanup rules.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { CriClient } from '../../../receiver/pods/cri-client.ts';
import type { ContainerConfig, PodSandboxConfig } from '../../../receiver/pods/cri-types.ts';
import { BUSYBOX_IMAGE, buildBusyboxImage, PAUSE_IMAGE } from './image.ts';
import {
  cgroupDirs,
  cmdlineOf,
  isAlive,
  killIfMatches,
  mountsUnder,
  netnsInodeOfPid,
  pidsInCgroup,
  rmdirIfEmpty,
  rmdirTree,
  shimsOf,
  umount,
  waitFor,
} from './procs.ts';

export { BUSYBOX_IMAGE, PAUSE_IMAGE } from './image.ts';
export { netnsInodeOfPid } from './procs.ts';

/** Label put on every sandbox the environment creates (teardown selector). */
export const ENV_LABEL = 'podnet.test/env';

export interface CriEnvOptions {
  /** Prefix for every name (bridge, cgroup parent, CNI network, temp dir). Default `pnp<pid>` (+ a counter). */
  name?: string;
  /** Pod subnet (IPv4 CIDR, /16 to /24). Default: the first 10.201.N.0/24 that no host route overlaps. */
  subnet?: string;
  /** Snapshotter; default overlayfs when the kernel has it, else native. */
  snapshotter?: 'overlayfs' | 'native';
  /** Keep the temp dir (logs) after teardown, for debugging. */
  keepDir?: boolean;
}

export interface ContainerSpec {
  name: string;
  /** argv; default `['sleep', '2147483647']` */
  command?: string[];
  env?: Record<string, string>;
  labels?: Record<string, string>;
}

export interface PodSpec {
  name: string;
  namespace?: string;
  /** Default: a random UUID. */
  uid?: string;
  hostNetwork?: boolean;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Containers to create and start; none by default (the sandbox alone is a pod with a netns and IP). */
  containers?: ContainerSpec[];
}

export interface TestPod {
  readonly sandboxId: string;
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly hostNetwork: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly config: PodSandboxConfig;
  readonly containers: readonly { readonly name: string; readonly id: string }[];
  /** Sandbox (pause) pid, from the sandbox's cgroup (kernel truth, not CRI). */
  readonly pid: number;
  /** `readlink /proc/<pid>/ns/net` inode. */
  readonly netnsInode: number;
  /** IPv4 of eth0 as the kernel shows it inside the netns; '' for hostNetwork pods. */
  readonly ip: string;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface TeardownReport {
  readonly podsRemoved: number;
  readonly leftovers: readonly string[];
}

export interface CriEnv {
  readonly name: string;
  /** Temp dir holding state, logs, configs. */
  readonly dir: string;
  /** Socket path and gRPC target (`unix:///…`) of the private containerd. */
  readonly socket: string;
  readonly endpoint: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly gateway: string;
  readonly images: { readonly pause: string; readonly busybox: string };
  /** A connected CRI client (reconnects after restartContainerd). */
  readonly client: CriClient;
  /** Current containerd pid. */
  containerdPid(): number;
  runPod(spec: PodSpec): Promise<TestPod>;
  /** Stops and removes the pod (containers first). Missing pods are ignored. */
  removePod(pod: TestPod | string): Promise<void>;
  /** Stops the sandbox only (it stays listed as NOTREADY until removed). */
  stopPod(pod: TestPod | string): Promise<void>;
  /** ExecSync in a container of the pod (default: its first container). */
  exec(pod: TestPod, cmd: string[], opts?: { container?: string; timeoutS?: number }): Promise<ExecResult>;
  /** Pods created by this env and not removed yet. */
  pods(): readonly TestPod[];
  /** SIGTERM containerd and start it again on the same state; pods survive. */
  restartContainerd(): Promise<void>;
  /** SIGTERM containerd (pods and shims keep running, the socket goes away). */
  stopContainerd(): Promise<void>;
  /** Start containerd again after stopContainerd (no-op when running); resolves once CRI answers. */
  startContainerd(): Promise<void>;
  /** Stops everything the env created and reports what could not be removed. Idempotent. */
  teardown(): Promise<TeardownReport>;
}

let counter = 0;
const live = new Set<{ emergency: () => void }>();
let exitHook = false;

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  // Last resort when a test process dies without running after(): kill our containerd and shims.
  process.on('exit', () => {
    for (const e of live) e.emergency();
  });
}

function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255))
    throw new Error(`bad IPv4 "${ip}"`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}
function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
function parseCidr(cidr: string): { net: number; bits: number } {
  const [ip, b] = cidr.split('/');
  const bits = Number(b);
  if (!ip || !Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`bad CIDR "${cidr}"`);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { net: (ipToInt(ip) & mask) >>> 0, bits };
}
function overlaps(a: { net: number; bits: number }, b: { net: number; bits: number }): boolean {
  const bits = Math.min(a.bits, b.bits);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (a.net & mask) >>> 0 === (b.net & mask) >>> 0;
}

function hostRoutes(): { net: number; bits: number }[] {
  const out = execFileSync('ip', ['-4', '-o', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  const routes: { net: number; bits: number }[] = [];
  for (const line of out.split('\n')) {
    const dst = line.trim().split(/\s+/)[0];
    if (!dst || dst === 'default' || dst === 'local' || dst === 'broadcast') {
      // "local 10.x.y.z dev ..." lines: the address is the second word
      const w = line.trim().split(/\s+/);
      if ((w[0] === 'local' || w[0] === 'broadcast') && w[1])
        routes.push(parseCidr(w[1].includes('/') ? w[1] : `${w[1]}/32`));
      continue;
    }
    routes.push(parseCidr(dst.includes('/') ? dst : `${dst}/32`));
  }
  return routes;
}

function pickSubnet(): string {
  const routes = hostRoutes();
  for (let i = 0; i < 256; i++) {
    const n = (process.pid + counter * 7 + i) % 256;
    const cand = parseCidr(`10.201.${n}.0/24`);
    if (!routes.some((r) => overlaps(r, cand))) return `10.201.${n}.0/24`;
  }
  throw new Error('no free 10.201.N.0/24 subnet for the CRI test environment; pass `subnet`');
}

function containerdToml(o: { dir: string; socket: string; cniConfDir: string; snapshotter: string }): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${o.dir}/root"
state = "${o.dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "${o.socket}"

[ttrpc]
  address = "${o.socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "${o.dir}/opt"

[${cri}]
  sandbox_image = "${PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = false

[${cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "${o.cniConfDir}"
  max_conf_num = 1

[${cri}.containerd]
  snapshotter = "${o.snapshotter}"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "${o.dir}/runc"
`;
}

function preflight(): void {
  const need = [
    '/usr/bin/containerd',
    '/usr/bin/ctr',
    '/usr/lib/cni/bridge',
    '/usr/lib/cni/host-local',
    '/usr/lib/cni/loopback',
  ];
  const missing = need.filter((p) => !existsSync(p));
  let runc = true;
  try {
    execFileSync('runc', ['--version'], { stdio: 'ignore' });
  } catch {
    runc = false;
  }
  if (missing.length > 0 || !runc) {
    throw new Error(
      `CRI test environment needs Debian packages containerd, runc, containernetworking-plugins; missing: ${[
        ...missing,
        ...(runc ? [] : ['runc']),
      ].join(', ')} (run scripts/bootstrap.sh)`,
    );
  }
  if (process.getuid?.() !== 0) throw new Error('CRI test environment needs root');
}

/** Starts a private containerd with CRI + CNI bridge and imports the busybox images. */
export async function startCriEnv(opts: CriEnvOptions = {}): Promise<CriEnv> {
  preflight();
  installExitHook();
  counter++;
  const name = opts.name ?? `pnp${process.pid}${counter > 1 ? `c${counter}` : ''}`;
  if (!/^[a-z0-9]{1,12}$/.test(name)) throw new Error(`CRI env name "${name}" must be 1-12 chars [a-z0-9]`);
  const bridge = `${name}br`;
  const subnet = opts.subnet ?? pickSubnet();
  const { net, bits } = parseCidr(subnet);
  if (bits < 16 || bits > 24) throw new Error(`CRI env subnet ${subnet}: prefix must be /16 to /24`);
  if (existsSync(`/sys/class/net/${bridge}`))
    throw new Error(`CRI env bridge ${bridge} already exists (name in use?)`);
  const dir = mkdtempSync(`/tmp/${name}-cri-`);
  const socket = join(dir, 'containerd.sock');
  const endpoint = `unix://${socket}`;
  const size = 2 ** (32 - bits);
  const gateway = intToIp(net + 1);
  const snapshotter =
    opts.snapshotter ??
    (readFileSync('/proc/filesystems', 'utf8').includes('\toverlay\n') ? 'overlayfs' : 'native');
  const cgroupPrefix = name;
  const log = join(dir, 'containerd.log');

  const created: TestPod[] = [];
  const sandboxIds: string[] = [];
  const netnsSeen = new Set<string>();
  let proc: ChildProcess | undefined;
  let pid = 0;
  let tornDown = false;
  let client: CriClient | undefined;

  const isOurContainerd = (argv: string[]): boolean =>
    argv[0]?.endsWith('containerd') === true && argv.includes(join(dir, 'containerd.toml'));

  const killLeftovers = (): void => {
    for (const s of shimsOf(socket)) killIfMatches(s, (a) => a.includes(socket), 'SIGKILL');
    for (const d of cgroupDirs(cgroupPrefix)) {
      for (const p of pidsInCgroup(d)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  };

  /** Synchronous part of the cleanup (after processes are gone): mounts, netns, bridge, cgroups, CNI cache, dir. */
  const removeKernelObjects = (leftovers: string[]): void => {
    for (const m of mountsUnder(dir)) umount(m);
    for (const ns of netnsSeen) {
      if (existsSync(ns)) {
        umount(ns);
        rmSync(ns, { force: true });
      }
    }
    try {
      execFileSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    for (const d of cgroupDirs(cgroupPrefix)) leftovers.push(...rmdirTree(d).map((x) => `cgroup ${x}`));
    try {
      for (const f of readdirSync('/var/lib/cni/results')) {
        if (f.startsWith(`${name}-`) || sandboxIds.some((id) => f.includes(id))) {
          rmSync(join('/var/lib/cni/results', f), { force: true });
        }
      }
    } catch {
      // no cache dir
    }
    rmdirIfEmpty('/var/lib/cni/results');
    rmdirIfEmpty('/var/lib/cni');
    rmdirIfEmpty('/run/containerd/s');
    rmdirIfEmpty('/run/containerd');
    if (mountsUnder(dir).length > 0) leftovers.push(...mountsUnder(dir).map((m) => `mount ${m}`));
    else if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
  };

  // Last resort on process exit without teardown(): everything synchronously, waiting briefly for the
  // killed processes to be reaped so their cgroups can be removed.
  const emergency = (): void => {
    if (tornDown) return;
    if (pid) killIfMatches(pid, isOurContainerd, 'SIGKILL');
    killLeftovers();
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 100; i++) {
      const busy =
        shimsOf(socket).length > 0 ||
        cgroupDirs(cgroupPrefix).some((d) => pidsInCgroup(d).length > 0) ||
        (pid && isAlive(pid));
      if (!busy) break;
      Atomics.wait(sleeper, 0, 0, 30);
    }
    removeKernelObjects([]);
    tornDown = true;
  };
  const handle = { emergency };
  live.add(handle);

  const startContainerd = async (): Promise<void> => {
    const fd = openSync(log, 'a');
    try {
      proc = spawn('/usr/bin/containerd', ['--config', join(dir, 'containerd.toml')], {
        detached: true,
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    proc.unref();
    if (!proc.pid) throw new Error(`containerd did not start; see ${log}`);
    pid = proc.pid;
    writeFileSync(join(dir, 'containerd.pid'), String(pid));
    const ok = await waitFor(() => existsSync(socket) || !isAlive(pid), 15_000);
    if (!ok || !isAlive(pid)) {
      throw new Error(
        `containerd (pid ${pid}) did not open ${socket}: ${readFileSync(log, 'utf8').slice(-2000)}`,
      );
    }
  };

  const stopContainerd = async (): Promise<void> => {
    if (!pid) return;
    if (killIfMatches(pid, isOurContainerd, 'SIGTERM')) {
      if (!(await waitFor(() => !isAlive(pid), 30_000, 50))) killIfMatches(pid, isOurContainerd, 'SIGKILL');
      await waitFor(() => !isAlive(pid), 5_000, 20);
    }
    pid = 0;
  };

  const teardown = async (): Promise<TeardownReport> => {
    if (tornDown) return { podsRemoved: 0, leftovers: [] };
    const leftovers: string[] = [];
    let podsRemoved = 0;
    // 1. pods via CRI (label selector), while containerd runs
    if (client && pid && isAlive(pid)) {
      try {
        const items = await client.listPodSandbox({ label_selector: { [ENV_LABEL]: name } });
        for (const sb of items) {
          try {
            await removeSandbox(sb.id);
            podsRemoved++;
          } catch (err) {
            leftovers.push(`sandbox ${sb.id}: ${(err as Error).message}`);
          }
        }
      } catch (err) {
        leftovers.push(`ListPodSandbox: ${(err as Error).message}`);
      }
    }
    client?.close();
    // 2. containerd, then its shims and anything still in our cgroups
    await stopContainerd();
    killLeftovers();
    await waitFor(() => shimsOf(socket).length === 0, 5_000, 50);
    for (const s of shimsOf(socket)) leftovers.push(`shim pid ${s}`);
    await waitFor(() => cgroupDirs(cgroupPrefix).every((d) => pidsInCgroup(d).length === 0), 5_000, 50);
    // 3. mounts, netns, bridge, cgroups, CNI cache, the dir
    removeKernelObjects(leftovers);
    tornDown = true;
    live.delete(handle);
    return { podsRemoved, leftovers };
  };

  const removeSandbox = async (sandboxId: string): Promise<void> => {
    const c = client!;
    try {
      for (const ct of await c.listContainers({ pod_sandbox_id: sandboxId })) {
        await c.stopContainer(ct.id, 0).catch(() => undefined);
        await c.removeContainer(ct.id).catch(() => undefined);
      }
      await c.stopPodSandbox(sandboxId);
      await c.removePodSandbox(sandboxId);
    } catch (err) {
      if ((err as { grpcCode?: number }).grpcCode !== 5) throw err; // NOT_FOUND: already gone
    }
    const i = created.findIndex((p) => p.sandboxId === sandboxId);
    if (i >= 0) created.splice(i, 1);
  };

  try {
    // configs
    const cniConfDir = join(dir, 'cni-conf');
    for (const d of [cniConfDir, join(dir, 'pods'), join(dir, 'image')]) mkdirSync(d, { recursive: true });
    writeFileSync(
      join(cniConfDir, '10-podnet-test.conflist'),
      JSON.stringify(
        {
          cniVersion: '1.0.0',
          name,
          plugins: [
            {
              type: 'bridge',
              bridge,
              isGateway: false,
              isDefaultGateway: false,
              ipMasq: false,
              hairpinMode: true,
              ipam: {
                type: 'host-local',
                dataDir: join(dir, 'cni-ipam'),
                ranges: [
                  [
                    {
                      subnet,
                      rangeStart: intToIp(net + 10),
                      rangeEnd: intToIp(net + size - 6),
                      gateway,
                    },
                  ],
                ],
              },
            },
          ],
        },
        null,
        2,
      ),
    );
    writeFileSync(join(dir, 'containerd.toml'), containerdToml({ dir, socket, cniConfDir, snapshotter }));
    // bridge with the gateway address, so the host reaches pods; no ip_forward, no iptables
    execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', `${gateway}/${bits}`, 'dev', bridge]);
    execFileSync('ip', ['link', 'set', bridge, 'up']);

    const image = buildBusyboxImage(join(dir, 'image'));
    await startContainerd();
    execFileSync(
      '/usr/bin/ctr',
      ['-a', socket, '-n', 'k8s.io', 'images', 'import', '--snapshotter', snapshotter, image.tarPath],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const connected = await CriClient.connect(endpoint, { timeoutMs: 30_000 });
    client = connected.client;
    // wait until CRI reports the runtime and the network ready (CNI config loaded)
    const ready = await waitFor(
      async () => {
        const st = await client!.status();
        return (st.status?.conditions ?? []).filter((c) => c.status).length >= 2;
      },
      10_000,
      50,
    );
    if (!ready) throw new Error(`containerd CRI not ready (RuntimeReady/NetworkReady); see ${log}`);
  } catch (err) {
    await teardown().catch(() => undefined);
    throw err;
  }

  const cri = client;

  const kernelView = async (
    sandboxId: string,
    uid: string,
    hostNetwork: boolean,
  ): Promise<{ pid: number; netnsInode: number; ip: string }> => {
    // The sandbox process lives in the cgroup <parent>/<sandbox id> (cgroupfs driver); right after
    // RunPodSandbox it may still be `runc init` about to exec the pause command.
    let pausePid: number | undefined;
    await waitFor(
      () => {
        const pids = cgroupDirs(`${cgroupPrefix}/pod${uid}/${sandboxId}`).flatMap((d) => pidsInCgroup(d));
        pausePid = pids.find((p) => (cmdlineOf(p) ?? [])[0]?.endsWith('sleep'));
        return pausePid !== undefined;
      },
      5_000,
      5,
    );
    if (!pausePid) throw new Error(`sandbox ${sandboxId}: no pause process in its cgroup after 5 s`);
    const netnsInode = netnsInodeOfPid(pausePid);
    let ip = '';
    if (!hostNetwork) {
      const out = execFileSync(
        'nsenter',
        [`--net=/proc/${pausePid}/ns/net`, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'],
        {
          encoding: 'utf8',
        },
      );
      ip = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1] ?? '';
    }
    return { pid: pausePid, netnsInode, ip };
  };

  const runPod = async (spec: PodSpec): Promise<TestPod> => {
    const uid = spec.uid ?? randomUUID();
    const namespace = spec.namespace ?? 'default';
    const hostNetwork = spec.hostNetwork === true;
    const labels = {
      ...spec.labels,
      'io.kubernetes.pod.name': spec.name,
      'io.kubernetes.pod.namespace': namespace,
      'io.kubernetes.pod.uid': uid,
      [ENV_LABEL]: name,
    };
    const logDir = join(dir, 'pods', `${namespace}_${spec.name}_${uid}`);
    mkdirSync(logDir, { recursive: true });
    const nsOpts = { network: hostNetwork ? 'NODE' : 'POD', pid: 'CONTAINER', ipc: 'POD' } as const;
    const config: PodSandboxConfig = {
      metadata: { name: spec.name, uid, namespace, attempt: 0 },
      hostname: hostNetwork ? '' : spec.name,
      log_directory: logDir,
      labels,
      annotations: spec.annotations ?? {},
      linux: {
        cgroup_parent: `/${cgroupPrefix}/pod${uid}`,
        security_context: { namespace_options: nsOpts },
      },
    };
    const sandboxId = await cri.runPodSandbox(config);
    sandboxIds.push(sandboxId);
    const containers: { name: string; id: string }[] = [];
    const pod0 = {
      sandboxId,
      uid,
      name: spec.name,
      namespace,
      hostNetwork,
      labels,
      config,
      containers,
      pid: 0,
      netnsInode: 0,
      ip: '',
    };
    created.push(pod0);
    try {
      // record the netns bind mount first, so even an emergency cleanup can remove it
      const st = await cri.podSandboxStatus(sandboxId, true);
      const info = st.info['info'];
      if (info) {
        const spec0 = (
          JSON.parse(info) as { runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } } }
        ).runtimeSpec;
        for (const ns of spec0?.linux?.namespaces ?? [])
          if (ns.type === 'network' && ns.path) netnsSeen.add(ns.path);
      }
      for (const c of spec.containers ?? []) {
        const cc: ContainerConfig = {
          metadata: { name: c.name, attempt: 0 },
          image: { image: BUSYBOX_IMAGE },
          command: c.command ?? ['sleep', '2147483647'],
          envs: Object.entries(c.env ?? {}).map(([key, value]) => ({ key, value })),
          labels: {
            ...c.labels,
            'io.kubernetes.container.name': c.name,
            'io.kubernetes.pod.name': spec.name,
            'io.kubernetes.pod.namespace': namespace,
            'io.kubernetes.pod.uid': uid,
          },
          log_path: `${c.name}/0.log`,
          linux: { security_context: { namespace_options: nsOpts } },
        };
        const id = await cri.createContainer(sandboxId, cc, config);
        containers.push({ name: c.name, id });
        await cri.startContainer(id);
      }
      const k = await kernelView(sandboxId, uid, hostNetwork);
      const pod: TestPod = { ...pod0, ...k };
      created[created.indexOf(pod0)] = pod;
      return pod;
    } catch (err) {
      await removeSandbox(sandboxId).catch(() => undefined);
      throw err;
    }
  };

  const waitForCri = async (): Promise<void> => {
    const ok = await waitFor(
      async () => {
        try {
          await cri.version();
          return true;
        } catch {
          return false;
        }
      },
      15_000,
      50,
    );
    if (!ok) throw new Error(`containerd did not answer CRI after start; see ${log}`);
  };

  const idOf = (pod: TestPod | string): string => (typeof pod === 'string' ? pod : pod.sandboxId);

  return {
    name,
    dir,
    socket,
    endpoint,
    bridge,
    subnet,
    gateway,
    images: { pause: PAUSE_IMAGE, busybox: BUSYBOX_IMAGE },
    client: cri,
    containerdPid: () => pid,
    runPod,
    removePod: (pod) => removeSandbox(idOf(pod)),
    stopPod: async (pod) => {
      await cri.stopPodSandbox(idOf(pod));
    },
    exec: async (pod, cmd, o = {}) => {
      const c = o.container ? pod.containers.find((x) => x.name === o.container) : pod.containers[0];
      if (!c) throw new Error(`pod ${pod.name} has no container ${o.container ?? '(none created)'}`);
      const r = await cri.execSync(c.id, cmd, o.timeoutS ?? 30);
      return { stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), exitCode: r.exit_code };
    },
    pods: () => [...created],
    stopContainerd: async () => {
      await stopContainerd();
    },
    startContainerd: async () => {
      if (pid && isAlive(pid)) return;
      await startContainerd();
      await waitForCri();
    },
    restartContainerd: async () => {
      await stopContainerd();
      await startContainerd();
      await waitForCri();
    },
    teardown,
  };
}
