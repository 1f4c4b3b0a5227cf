// Pod churn soak: real pods (private containerd, test/env/cri) created and deleted in a rolling loop
// while `podnet run` (a child process, default probes, eBPF included) watches them through CRI. Every pod
// gets a few UDP datagrams to a closed port from the host, so the eBPF counter maps get an entry keyed by
// its netns (a NO_SOCKET drop). After a warm-up round and again after the churn (all pods gone, two
// refreshes later), measured from the kernel's side:
// - podnet's open fds (/proc/<pid>/fd, by kind);
// - entries of every hash map the process holds (found via /proc/<pid>/fdinfo map_id, read with
//   `bpftool map dump id`), and which netns inodes their keys name: none of a deleted pod may remain in
//   the watched-netns map or a counter map (LRU maps — the event rate limiter — are bounded by their size
//   and reported separately);
// - RSS, sampled through the run.
//
//   node_modules/.bin/node benchmarks/reliability/churn.ts --pods 500 [--live 5] [--warmup 20] [--json]
// The test suite runs 30 pods (test/reliability/churn.test.ts).
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { type CriEnv, startCriEnv, type TestPod } from '../../test/env/cri/index.ts';
import {
  bpfHeld,
  fdCount,
  fdKinds,
  mapInfo,
  PodnetProcess,
  rssKiB,
  sleep,
  until,
} from '../../test/reliability/lib.ts';
import { finish } from '../lib/finish.ts';

export interface ChurnOptions {
  readonly pods: number;
  /** Pods alive at once (rolling). */
  readonly live: number;
  readonly warmupPods?: number;
  readonly log?: (line: string) => void;
}

export interface MapSnapshot {
  readonly id: number;
  readonly name: string;
  readonly type: string;
  readonly maxEntries: number;
  readonly entries: number;
  /** netns inodes named by the keys (first u32 of the key). */
  readonly netns: number[];
}

export interface Snapshot {
  readonly fds: number;
  readonly fdKinds: Record<string, number>;
  readonly rssMiB: number;
  readonly maps: MapSnapshot[];
  readonly entities: number;
}

export interface ChurnResult {
  readonly options: Omit<ChurnOptions, 'log'>;
  readonly created: number;
  readonly seenByPodnet: number;
  readonly warm: Snapshot;
  readonly end: Snapshot;
  /** Keys left (per map) naming the netns of a deleted pod, LRU maps excluded. */
  readonly staleKeys: Record<string, number>;
  readonly staleLruKeys: Record<string, number>;
  readonly rssSamplesMiB: number[];
  readonly durationS: number;
  readonly podnetErrors: string[];
}

interface Status {
  collections: number;
  entities: Array<{ netnsInode: number; kind: string }>;
  discovery: { cri?: { connected: boolean; lastError: string | null } };
  probes: Array<{ name: string; state: string }>;
}

/** Hash-like maps held by the process, with their entries' netns (first u32 of each key). */
export function mapSnapshot(pid: number): MapSnapshot[] {
  const out: MapSnapshot[] = [];
  for (const id of bpfHeld(pid).mapIds) {
    let info: ReturnType<typeof mapInfo>;
    try {
      info = mapInfo(id);
    } catch {
      continue; // closed meanwhile
    }
    if (!/hash/.test(info.type)) continue;
    const dump = JSON.parse(
      execFileSync('bpftool', ['-j', 'map', 'dump', 'id', String(id)], {
        encoding: 'utf8',
        maxBuffer: 512 * 1024 * 1024,
      }),
    ) as Array<{ key?: string[] | unknown; formatted?: { key?: unknown } }>;
    const netns = new Set<number>();
    for (const e of dump) {
      if (Array.isArray(e.key) && e.key.length >= 4) {
        const b = Buffer.from((e.key as string[]).slice(0, 4).map((h) => Number.parseInt(h, 16)));
        netns.add(b.readUInt32LE(0));
      }
    }
    out.push({ ...info, entries: dump.length, netns: [...netns].sort((a, b) => a - b) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

function snapshot(p: PodnetProcess, entities: number): Snapshot {
  return {
    fds: fdCount(p.pid),
    fdKinds: fdKinds(p.pid),
    rssMiB: Math.round(rssKiB(p.pid) / 102.4) / 10,
    maps: mapSnapshot(p.pid),
    entities,
  };
}

const CONFIG = (env: CriEnv) => `collection_interval: 500ms
server: { address: "127.0.0.1:0" }
pods: { cri_endpoint: "${env.endpoint}" }
`;

export async function runChurn(o: ChurnOptions): Promise<ChurnResult> {
  const log = o.log ?? (() => undefined);
  const env = await startCriEnv();
  const udp = createSocket('udp4');
  let p: PodnetProcess | undefined;
  const t0 = Date.now();
  try {
    p = await PodnetProcess.start(CONFIG(env), { withSynthetic: false });
    const proc = p;
    const status = () => proc.status<Status>();
    await until(async () => (await status()).discovery.cri?.connected, 20_000, 'podnet connected to CRI');
    const created: TestPod[] = [];
    let seen = 0;
    let n = 0;
    const rss: number[] = [];
    const live: TestPod[] = [];
    const send = (pod: TestPod) =>
      new Promise<void>((resolve) => udp.send(Buffer.alloc(16), 9, pod.ip, () => resolve()));
    const oneRound = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const pod = await env.runPod({ name: `churn-${n++}`, namespace: 'soak' });
        created.push(pod);
        live.push(pod);
        // podnet must see it (entity → watched-netns map) before traffic counts per pod.
        try {
          await until(
            async () => (await status()).entities.some((e) => e.netnsInode === pod.netnsInode),
            10_000,
            `pod ${pod.name} in podnet`,
          );
          seen++;
        } catch (err) {
          log(`warn: ${(err as Error).message}`);
        }
        for (let k = 0; k < 3; k++) await send(pod);
        while (live.length > o.live) await env.removePod(live.shift()!);
        if (n % 10 === 0) {
          rss.push(Math.round(rssKiB(proc.pid) / 102.4) / 10);
          log(JSON.stringify({ pods: n, rssMiB: rss[rss.length - 1], fds: fdCount(proc.pid) }));
        }
      }
      while (live.length) await env.removePod(live.shift()!);
      // Two refreshes + collections: removed pods leave the registry, maps are pruned.
      const s = await status();
      await until(async () => (await status()).collections >= s.collections + 4, 20_000, 'collections');
      await sleep(500);
      return (await status()).entities.length;
    };
    const warmEntities = await oneRound(o.warmupPods ?? Math.min(10, o.pods));
    const warm = snapshot(proc, warmEntities);
    log(
      `warm: ${JSON.stringify({ fds: warm.fds, rssMiB: warm.rssMiB, maps: warm.maps.map((m) => `${m.name}=${m.entries}`) })}`,
    );
    const warmCreated = created.length;
    const warmSeen = seen;
    const endEntities = await oneRound(o.pods);
    const end = snapshot(proc, endEntities);
    const alive = new Set((await status()).entities.map((e) => e.netnsInode));
    const deleted = new Set(created.map((c) => c.netnsInode).filter((i) => !alive.has(i)));
    const staleKeys: Record<string, number> = {};
    const staleLruKeys: Record<string, number> = {};
    for (const m of end.maps) {
      const stale = m.netns.filter((i) => deleted.has(i)).length;
      if (stale === 0) continue;
      if (/lru/.test(m.type)) staleLruKeys[m.name] = stale;
      else staleKeys[m.name] = stale;
    }
    const podnetErrors = proc.stderr
      .split('\n')
      .filter((l) => /"level":(50|60)/.test(l))
      .slice(0, 20);
    return {
      options: { pods: o.pods, live: o.live, ...(o.warmupPods ? { warmupPods: o.warmupPods } : {}) },
      created: created.length - warmCreated,
      seenByPodnet: seen - warmSeen,
      warm,
      end,
      staleKeys,
      staleLruKeys,
      rssSamplesMiB: rss,
      durationS: Math.round((Date.now() - t0) / 1000),
      podnetErrors,
    };
  } finally {
    udp.close();
    await p?.stop();
    await env.teardown();
  }
}

/**
 * What the run shows that it should not: empty when the pods came and went without a trace. Shared by the
 * benchmark's exit code and test/reliability/churn.test.ts.
 */
export function churnFailures(r: ChurnResult): string[] {
  const f: string[] = [];
  if (r.seenByPodnet !== r.options.pods) f.push(`podnet saw ${r.seenByPodnet} of ${r.options.pods} pods`);
  if (r.podnetErrors.length) f.push(`podnet logged errors: ${r.podnetErrors[0]}`);
  // fds: BPF objects exactly; everything else within a couple of transient sockets/pipes.
  for (const k of ['anon_inode:bpf-map', 'anon_inode:bpf-prog', 'anon_inode:bpf_link'])
    if (r.end.fdKinds[k] !== r.warm.fdKinds[k])
      f.push(`${k} fds: ${r.warm.fdKinds[k]} after the warm-up, ${r.end.fdKinds[k]} after the churn`);
  if (r.end.fds > r.warm.fds + 2) f.push(`fds grew: ${r.warm.fds} → ${r.end.fds}`);
  const ids = (s: Snapshot) => s.maps.map((m) => m.id).join(',');
  if (ids(r.end) !== ids(r.warm)) f.push(`BPF maps changed: ${ids(r.warm)} → ${ids(r.end)}`);
  for (const m of r.end.maps.filter((m) => m.name === 'pn_watched'))
    if (m.entries !== r.end.entities)
      f.push(`${m.name}#${m.id}: ${m.entries} watched netns for ${r.end.entities} entities`);
  if (Object.keys(r.staleKeys).length)
    f.push(`keys of deleted pods left in counter maps: ${JSON.stringify(r.staleKeys)}`);
  // LRU maps (the per-(netns, type) event rate limiter) are bounded by their preallocated size.
  for (const m of r.end.maps.filter((m) => /lru/.test(m.type)))
    if (m.entries > m.maxEntries) f.push(`${m.name}#${m.id}: ${m.entries} entries over ${m.maxEntries}`);
  // RSS flat: 40 MiB covers V8's heap steps and malloc arenas (test/reliability/churn.test.ts's bound).
  if (r.end.rssMiB - r.warm.rssMiB >= 40) f.push(`RSS grew: ${r.warm.rssMiB} → ${r.end.rssMiB} MiB`);
  return f;
}

if (import.meta.main) {
  const arg = (name: string, def: string): string => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
  };
  const r = await runChurn({
    pods: Number(arg('pods', '500')),
    live: Number(arg('live', '5')),
    warmupPods: Number(arg('warmup', '20')),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  const brief = (s: Snapshot) => ({
    fds: s.fds,
    fdKinds: s.fdKinds,
    rssMiB: s.rssMiB,
    entities: s.entities,
    maps: Object.fromEntries(
      s.maps.map((m) => [`${m.name}#${m.id}`, `${m.entries}/${m.maxEntries} ${m.type}`]),
    ),
  });
  const out = process.argv.includes('--json') ? r : { ...r, warm: brief(r.warm), end: brief(r.end) };
  finish(JSON.stringify(out, null, 2), churnFailures(r));
}
