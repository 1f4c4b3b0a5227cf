// Kernel memory of podnet's BPF maps: starts podnet (host netns only) with the default probes, then with
// all probes, and lists every map the process holds — map ids from /proc/<pid>/fdinfo of its
// anon_inode:bpf-map fds, then `bpftool -j map show id N` for type, flags, max_entries and
// bytes_memlock (the kernel's own accounting of what the map charges to the memory cgroup). Maps are
// attributed to a probe through the programs that use them (`bpftool -j prog show`: map_ids) and the
// object's internal maps (`<object>.rodata`). Per-CPU map memory scales with the CPU count, so the
// table gives `nproc` beside the figures. Not part of benchmarks/run.ts (it measures no speed).
//
//   node benchmarks/suite/map-memory.ts [--root NAME=DIR ...] [--json FILE]
//
// With several --root (e.g. base=/path/to/main-worktree current=.), each configuration is run for
// each checkout in turn in the same invocation. A run that cannot list podnet's maps exits non-zero.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { probeSpecs } from '../../probes/registry.ts';
import { startPodnet } from '../lib/podnet.ts';

const { values: o } = parseArgs({
  options: { root: { type: 'string', multiple: true }, json: { type: 'string' } },
});
const HERE = fileURLToPath(new URL('../../', import.meta.url));
const roots = (o.root ?? [`current=${HERE}`]).map((spec) => {
  const [name, dir] = spec.includes('=') ? spec.split('=') : ['current', spec];
  return { name: name!, dir: dir! };
});

interface MapRow {
  id: number;
  name: string;
  type: string;
  flags: number;
  maxEntries: number;
  bytes: number;
  valueSize: number;
  /** Bytes this map holds on each possible CPU (per-CPU maps): see perCpuBytes. */
  perCpu: number;
  probe: string;
}

const PERCPU_TYPES = new Set(['percpu_hash', 'lru_percpu_hash', 'percpu_array']);
const NO_PREALLOC = 1; // BPF_F_NO_PREALLOC

/**
 * The part of a map's bytes_memlock that is repeated on every possible CPU (the kernel's
 * htab_map_mem_usage / array_map_mem_usage): a preallocated per-CPU map holds round_up(value, 8) bytes
 * per entry of max_entries on each CPU; a BPF_F_NO_PREALLOC one only for the entries in use, plus the
 * 8-byte free-list node of each (bpftool map dump counts them).
 */
function perCpuBytes(r: Omit<MapRow, 'perCpu' | 'probe'>): number {
  if (!PERCPU_TYPES.has(r.type)) return 0;
  const v = Math.ceil(r.valueSize / 8) * 8;
  if (!(r.flags & NO_PREALLOC)) return v * r.maxEntries;
  const entries = bpftool<unknown[]>(['map', 'dump', 'id', String(r.id)]).length;
  return (v + 8) * entries;
}

function bpftool<T>(args: string[]): T {
  return JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' })) as T;
}

/** ids of the BPF maps and programs a process holds (fdinfo: map_id / prog_id). */
function bpfIdsOf(pid: number): { maps: number[]; progs: number[] } {
  const maps: number[] = [];
  const progs: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (link !== 'anon_inode:bpf-map' && link !== 'anon_inode:bpf-prog') continue;
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    const m = /^(map_id|prog_id):\s+(\d+)/m.exec(info);
    if (!m) throw new Error(`/proc/${pid}/fdinfo/${fd}: no ${link.endsWith('map') ? 'map_id' : 'prog_id'}`);
    (m[1] === 'map_id' ? maps : progs).push(Number(m[2]));
  }
  return { maps: [...new Set(maps)], progs: [...new Set(progs)] };
}

const probeNames = probeSpecs.map((s) => s.name);

/** The probe of an object's internal map (`<first 8 chars of the object name>.rodata` etc.). */
function probeOfInternal(name: string): string | undefined {
  const dot = name.indexOf('.');
  if (dot <= 0) return undefined;
  const prefix = name.slice(0, dot);
  const hits = probeNames.filter((p) => p.startsWith(prefix));
  return hits.length === 1 ? hits[0] : undefined;
}

function mapsOf(pid: number): MapRow[] {
  const ids = bpfIdsOf(pid);
  if (ids.maps.length === 0) throw new Error(`podnet (pid ${pid}) holds no BPF map`);
  const rows = new Map<number, MapRow>();
  for (const id of ids.maps) {
    // biome-ignore lint/suspicious/noExplicitAny: bpftool JSON.
    const m = bpftool<any>(['map', 'show', 'id', String(id)]);
    const row = {
      id,
      name: (m.name ?? '') as string,
      type: m.type as string,
      flags: (m.flags ?? 0) as number,
      maxEntries: m.max_entries as number,
      bytes: Number(m.bytes_memlock),
      valueSize: (m.bytes_value ?? 0) as number,
    };
    if (!(row.bytes > 0)) throw new Error(`bpftool map show id ${id}: no bytes_memlock`);
    rows.set(id, { ...row, perCpu: perCpuBytes(row), probe: '' });
  }
  // Union the maps of each program: one component per loaded object.
  const parent = new Map<number, number>([...rows.keys()].map((k) => [k, k]));
  const find = (x: number): number => {
    while (parent.get(x) !== x) x = parent.get(x)!;
    return x;
  };
  for (const id of ids.progs) {
    // biome-ignore lint/suspicious/noExplicitAny: bpftool JSON.
    const p = bpftool<any>(['prog', 'show', 'id', String(id)]);
    const mine = ((p.map_ids ?? []) as number[]).filter((m) => rows.has(m));
    for (const m of mine.slice(1)) parent.set(find(m), find(mine[0]!));
  }
  const label = new Map<number, string>();
  for (const r of rows.values()) {
    const probe = probeOfInternal(r.name);
    if (probe) label.set(find(r.id), probe);
  }
  for (const r of rows.values()) r.probe = label.get(find(r.id)) ?? '(unattributed)';
  return [...rows.values()].sort((a, b) => a.probe.localeCompare(b.probe) || a.id - b.id);
}

const DEFAULT = probeSpecs.filter((s) => s.defaultEnabled).map((s) => s.name);
const configs = [
  { name: 'default probes', on: DEFAULT },
  { name: 'all probes', on: probeNames },
];
const MB = (b: number): string => (b / 1048576).toFixed(1); // MiB
/** Per-CPU memory is allocated for every possible CPU (not only the online ones). */
const possible = readFileSync('/sys/devices/system/cpu/possible', 'utf8')
  .trim()
  .split(',')
  .reduce((n, r) => {
    const [a, b] = r.split('-').map(Number);
    return n + (b === undefined ? 1 : b - a! + 1);
  }, 0);
const out: Record<string, unknown>[] = [];
console.log(
  `nproc ${availableParallelism()}; possible CPUs ${possible}; kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}`,
);
for (const cfg of configs) {
  for (const root of roots) {
    const p = await startPodnet({
      root: root.dir,
      hostOnly: true,
      collections: 1,
      config: {
        collection_interval: '1s',
        probes: Object.fromEntries(probeNames.map((n) => [n, { enabled: cfg.on.includes(n) }])),
      },
    });
    let rows: MapRow[];
    try {
      rows = mapsOf(p.pid);
    } finally {
      await p.stop();
    }
    const total = rows.reduce((s, r) => s + r.bytes, 0);
    const perCpu = rows.reduce((s, r) => s + r.perCpu, 0);
    const fixed = total - perCpu * possible;
    console.log(`\n## ${root.name}: ${cfg.name} — ${rows.length} maps, ${MB(total)} MiB (bytes_memlock)`);
    console.log(
      `  = ${MB(fixed)} MiB + ${MB(perCpu)} MiB × N possible CPUs (N = ${possible} here; 64 CPUs: ${MB(fixed + 64 * perCpu)} MiB)`,
    );
    const byProbe = new Map<string, number>();
    for (const r of rows) byProbe.set(r.probe, (byProbe.get(r.probe) ?? 0) + r.bytes);
    for (const [probe, b] of [...byProbe].sort((a, b) => b[1] - a[1]))
      console.log(`  ${probe.padEnd(16)} ${MB(b).padStart(7)} MiB`);
    console.log('  maps ≥ 1 MiB:');
    for (const r of rows.filter((x) => x.bytes >= 1048576).sort((a, b) => b.bytes - a.bytes))
      console.log(
        `    ${r.probe.padEnd(14)} ${r.name.padEnd(16)} ${r.type.padEnd(16)} flags=${r.flags} max_entries=${r.maxEntries} ${MB(r.bytes)} MiB`,
      );
    out.push({ root: root.name, config: cfg.name, possibleCpus: possible, total, fixed, perCpu, maps: rows });
  }
}
if (o.json) writeFileSync(o.json, `${JSON.stringify(out, null, 1)}\n`);
