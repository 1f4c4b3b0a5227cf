// Where podnet's memory goes: RSS of one podnet process (host netns only) as probes are added, one
// configuration at a time — no probe, the procfs probes, + the netlink probes, + each default eBPF probe
// (= the default set), + the optional probes (= all). For each: RSS and its parts (/proc/<pid>/status:
// anonymous, file-backed, shared memory such as BPF ring buffers mmapped by the reader) and the V8 heap /
// external memory (process.memoryUsage() inside podnet). Explains the scale benchmark's RSS.
//
// Baselines measured in the same invocation, interleaved with podnet round by round: a bare
// `node -e 'setInterval(…)'` (the ratio's denominator) and node running a one-line .ts file (what Node's
// TypeScript type stripping costs before any podnet code). Each --root is a podnet checkout (a git worktree
// of a baseline commit) run the same way, for a same-run A/B; the first one is the reference of the ratios.
// Each checkout runs as its `npm start` does (benchmarks/lib/as-started.ts: its node flags, and dist/ when it
// builds one). Next to RSS: PSS and USS (smaps_rollup), start-up CPU, and RSS/PSS by kind of mapping (smaps).
//
//   node benchmarks/suite/memory.ts [--quick] [--rounds 3] [--root NAME=DIR]...
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { probeSpecs } from '../../probes/registry.ts';
import { startForm } from '../lib/as-started.ts';
import { startPodnet } from '../lib/podnet.ts';
import { emitSection, type Table, type Target } from '../lib/results.ts';
import { fmt, sleep } from '../lib/stats.ts';

const { values: o } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    root: { type: 'string', multiple: true },
  },
});
const started = performance.now();
const HERE = fileURLToPath(new URL('../../', import.meta.url));
const rounds = Number(o.rounds ?? (o.quick ? 1 : 3));
if (!(rounds >= 1)) throw new Error('--rounds must be ≥ 1');
const roots = (o.root ?? [`current=${HERE}`]).map((spec) => {
  const [name, dir] = spec.includes('=') ? spec.split('=') : ['current', spec];
  return { name: name!, dir: dir! };
});
/** The target of issue 19 (RSS, default probes, host only). */
const TARGET_MB = 100;

const PROCFS = ['netdev', 'snmp', 'sockstat', 'softnet', 'process'];
const NETLINK = ['sockets', 'conntrack', 'qdisc'];
const EBPF_DEFAULT = probeSpecs.filter((s) => s.defaultEnabled && s.source === 'ebpf').map((s) => s.name);
const DEFAULT_NAME = `+ ${EBPF_DEFAULT.at(-1)} (= default probes)`;
const steps: { name: string; on: string[] }[] = [
  { name: 'no probes', on: [] },
  { name: 'procfs probes', on: PROCFS },
  { name: '+ netlink probes', on: [...PROCFS, ...NETLINK] },
];
let acc = [...PROCFS, ...NETLINK];
for (const p of EBPF_DEFAULT) {
  acc = [...acc, p];
  steps.push({ name: p === EBPF_DEFAULT.at(-1) ? DEFAULT_NAME : `+ ${p}`, on: acc });
}
steps.push({ name: 'all probes', on: probeSpecs.map((s) => s.name) });
const selected = o.quick ? steps.filter((s) => s.name === 'no probes' || s.name === DEFAULT_NAME) : steps;

interface Sample {
  rss: number;
  anon: number;
  file: number;
  shmem: number;
  /** Proportional set size: shared pages divided among the processes mapping them (smaps_rollup). */
  pss: number;
  /** Unique set size: pages only this process maps (Private_Clean + Private_Dirty). */
  uss: number;
  /** utime + stime from exec to the measurement (start-up and the first collections), ms. */
  cpuMs: number;
  /** RSS and PSS by kind of mapping (/proc/<pid>/smaps), MAPPING_KINDS order. */
  mapRss: number[];
  mapPss: number[];
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

const TICK_MS = 10; // USER_HZ = 100 on Linux

const MAPPING_KINDS = [
  'node binary',
  'other files (shared libraries)',
  'BPF maps (event rings, mapped by the reader)',
  'malloc heap ([heap]: libbpf, koffi, typed arrays)',
  'anonymous (V8 heap, thread arenas and stacks)',
  'other',
] as const;

function mappingKind(name: string): number {
  if (name === process.execPath) return 0;
  if (name.startsWith('/')) return 1;
  if (name === 'anon_inode:bpf-map') return 2;
  if (name === '[heap]') return 3;
  if (name === '') return 4;
  return 5;
}

/** RSS and PSS per MAPPING_KINDS from /proc/<pid>/smaps. */
function mappingsOf(pid: number): { mapRss: number[]; mapPss: number[] } {
  const mapRss = MAPPING_KINDS.map(() => 0);
  const mapPss = MAPPING_KINDS.map(() => 0);
  let kind = 5;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      kind = mappingKind(head[1]!.replace(/ \(deleted\)$/, ''));
      continue;
    }
    const v = /^(Rss|Pss):\s+(\d+) kB/.exec(line);
    if (v) (v[1] === 'Rss' ? mapRss : mapPss)[kind]! += Number(v[2]) * 1024;
  }
  if (mapRss[0] === 0) throw new Error(`/proc/${pid}/smaps: no mapping of ${process.execPath}`);
  return { mapRss, mapPss };
}

function statusOf(
  pid: number,
): Pick<Sample, 'rss' | 'anon' | 'file' | 'shmem' | 'pss' | 'uss' | 'cpuMs' | 'mapRss' | 'mapPss'> {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (text: string, k: string): number => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`/proc/${pid}: no ${k}`);
    return Number(m[1]) * 1024;
  };
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    rss: kb(st, 'VmRSS'),
    anon: kb(st, 'RssAnon'),
    file: kb(st, 'RssFile'),
    shmem: kb(st, 'RssShmem'),
    pss: kb(roll, 'Pss'),
    uss: kb(roll, 'Private_Clean') + kb(roll, 'Private_Dirty'),
    cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS,
    ...mappingsOf(pid),
  };
}

const tmp = mkdtempSync(join(tmpdir(), 'pnk-mem-'));
const tsFile = join(tmp, 'idle.ts');
writeFileSync(tsFile, 'const every: number = 1000;\nsetInterval(() => {}, every);\n');

/** A node process that does nothing, measured after the time podnet takes to its third collection. */
async function bare(args: string[]): Promise<Sample> {
  const child: ChildProcess = spawn(process.execPath, args, { stdio: 'ignore' });
  try {
    await sleep(4000);
    return { ...statusOf(child.pid!), heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
}

async function podnet(root: string, on: readonly string[]): Promise<Sample> {
  const p = await startPodnet({
    root,
    config: {
      collection_interval: '1s',
      probes: Object.fromEntries(probeSpecs.map((s) => [s.name, { enabled: on.includes(s.name) }])),
    },
    hostOnly: true,
    collections: 3,
    asStarted: true,
  });
  try {
    const m = await p.memoryUsage();
    return {
      ...statusOf(p.pid),
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
    };
  } finally {
    await p.stop();
  }
}

const BARE = 'bare node (node -e setInterval)';
const BARE_TS = 'node running a one-line .ts file';
const samples = new Map<string, Sample[]>();
const add = (key: string, s: Sample): void => {
  samples.set(key, [...(samples.get(key) ?? []), s]);
  console.log(key, JSON.stringify(s));
};
const keyOf = (root: string, step: string): string => `${root}\u0000${step}`;
try {
  for (let r = 0; r < rounds; r++) {
    add(BARE, await bare(['-e', 'setInterval(() => {}, 1000)']));
    add(BARE_TS, await bare([tsFile]));
    for (const step of selected)
      for (const root of roots) add(keyOf(root.name, step.name), await podnet(root.dir, step.on));
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

/** Per field, the median over rounds (rounds run interleaved, so a busy moment hits every row alike). */
function medOf(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)] ?? 0;
}

function median(key: string): Sample {
  const xs = samples.get(key) ?? [];
  const med = (f: Exclude<keyof Sample, 'mapRss' | 'mapPss'>): number => medOf(xs.map((x) => x[f]));
  return {
    rss: med('rss'),
    anon: med('anon'),
    file: med('file'),
    shmem: med('shmem'),
    pss: med('pss'),
    uss: med('uss'),
    cpuMs: med('cpuMs'),
    mapRss: MAPPING_KINDS.map((_, k) => medOf(xs.map((x) => x.mapRss[k]!))),
    mapPss: MAPPING_KINDS.map((_, k) => medOf(xs.map((x) => x.mapPss[k]!))),
    heapUsed: med('heapUsed'),
    heapTotal: med('heapTotal'),
    external: med('external'),
    arrayBuffers: med('arrayBuffers'),
  };
}

const MB = (b: number) => fmt(b / 2 ** 20, 1);
const base = median(BARE);
const baseTs = median(BARE_TS);
const x = (b: number) => `${fmt(b / base.rss, 2)}×`;
const tables: Table[] = [];
for (const root of roots) {
  const rows = selected.map((s) => ({ name: s.name, m: median(keyOf(root.name, s.name)) }));
  tables.push({
    title: `${roots.length > 1 ? `${root.name}: ` : ''}RSS by configuration (median of ${rounds} round${rounds > 1 ? 's' : ''})`,
    headers: [
      'configuration',
      'RSS MB',
      '× bare node',
      'Δ RSS MB',
      'anonymous MB',
      'file-backed MB',
      'shmem MB',
      'PSS MB',
      'USS MB',
      'V8 heap used / total MB',
      'external MB (array buffers)',
      'CPU ms to measurement',
    ],
    rows: [
      ...[
        { name: BARE, m: base },
        { name: BARE_TS, m: baseTs },
      ].map((r) => [
        r.name,
        MB(r.m.rss),
        x(r.m.rss),
        '–',
        MB(r.m.anon),
        MB(r.m.file),
        MB(r.m.shmem),
        MB(r.m.pss),
        MB(r.m.uss),
        '–',
        '–',
        '–',
      ]),
      ...rows.map((r, i) => [
        r.name,
        MB(r.m.rss),
        x(r.m.rss),
        i === 0
          ? '–'
          : `${r.m.rss >= rows[i - 1]!.m.rss ? '+' : '−'}${MB(Math.abs(r.m.rss - rows[i - 1]!.m.rss))}`,
        MB(r.m.anon),
        MB(r.m.file),
        MB(r.m.shmem),
        MB(r.m.pss),
        MB(r.m.uss),
        `${MB(r.m.heapUsed)} / ${MB(r.m.heapTotal)}`,
        `${MB(r.m.external)} (${MB(r.m.arrayBuffers)})`,
        fmt(r.m.cpuMs, 0),
      ]),
    ],
  });
}
if (roots.length > 1) {
  const ref = roots[0]!;
  tables.push({
    title: `Same-run A/B: RSS MB per checkout (ratio to ${ref.name}; × bare node in brackets)`,
    headers: ['configuration', ...roots.map((r) => r.name)],
    rows: selected.map((s) => {
      const a = median(keyOf(ref.name, s.name)).rss;
      return [
        s.name,
        ...roots.map((r) => {
          const b = median(keyOf(r.name, s.name)).rss;
          return `${MB(b)} (${x(b)})${r === ref ? '' : `, ${fmt(b / a, 2)}× ${ref.name}`}`;
        }),
      ];
    }),
  });
}

{
  const cols = roots.flatMap((r) =>
    ['no probes', DEFAULT_NAME]
      .filter((n) => selected.some((s) => s.name === n))
      .map((n) => ({ label: `${roots.length > 1 ? `${r.name}, ` : ''}${n}`, m: median(keyOf(r.name, n)) })),
  );
  tables.push({
    title: 'Where the RSS goes, by mapping (/proc/<pid>/smaps): RSS MB (PSS MB)',
    headers: ['mapping', ...cols.map((c) => c.label)],
    rows: [
      ...MAPPING_KINDS.map((kind, k) => [
        kind,
        ...cols.map((c) => `${MB(c.m.mapRss[k]!)} (${MB(c.m.mapPss[k]!)})`),
      ]),
      ['total', ...cols.map((c) => `${MB(c.m.rss)} (${MB(c.m.pss)})`)],
    ],
  });
}

const last = roots.at(-1)!;
const noProbe = median(keyOf(last.name, 'no probes'));
const dflt = median(keyOf(last.name, DEFAULT_NAME));
const targets: Target[] = [
  {
    name: 'RSS, default probes, host only',
    target: `≤ ${TARGET_MB} MB`,
    measured: `${MB(dflt.rss)} MB (${x(dflt.rss)} bare node at ${MB(base.rss)} MB; no probe ${MB(noProbe.rss)} MB)${roots.length > 1 ? ` — ${last.name}` : ''}`,
    met: dflt.rss <= TARGET_MB * 2 ** 20,
  },
];

const notes = [
  `Same invocation: a bare node process holds ${MB(base.rss)} MB; node running a one-line .ts file ${MB(baseTs.rss)} MB — the ${MB(baseTs.rss - base.rss)} MB between them is Node's TypeScript type stripping (amaro, a WebAssembly build of swc, ${MB(baseTs.anon - base.anon)} MB anonymous), ${roots.map((r) => `${r.name} ${startForm(r.dir).cli.endsWith('.js') ? 'avoids it: its npm start runs the compiled JavaScript of dist/ (scripts/build.sh)' : 'pays it: its npm start runs the .ts sources'}`).join('; ')}.`,
  `With no probe at all podnet${roots.length > 1 ? ` (${last.name})` : ''} holds ${MB(noProbe.rss)} MB RSS (${x(noProbe.rss)} bare node): ${MB(noProbe.file)} MB file-backed (the node binary, libc, libbpf and other shared libraries: shared with other processes, reclaimable) and ${MB(noProbe.anon)} MB anonymous (V8 heap ${MB(noProbe.heapTotal)} MB reserved for ${MB(noProbe.heapUsed)} MB used: the modules of the OTel SDK, zod, yaml, pino and podnet itself, plus code space). gRPC, protobufjs and the OTLP exporters are loaded only when an OTLP exporter or a CRI socket needs them (receiver/otel/exporters.ts, receiver/pods/registry.ts), and the event export worker thread only runs with an OTLP logs exporter.`,
];
{
  const d = median(keyOf(last.name, DEFAULT_NAME));
  notes.push(
    `The event rings: each eBPF probe's ring (1 MB) is mapped by the reader with its data area twice in a row (receiver/bpf/ringbuf.ts: a record that wraps reads contiguously), so RSS counts its pages twice — ${MB(d.mapRss[2]!)} MB of RSS for the default probes${roots.length > 1 ? ` (${last.name})` : ''} — while PSS counts them once (${MB(d.mapPss[2]!)} MB). The node binary's pages (${MB(d.mapRss[0]!)} MB) are file-backed and shared by every node process on the machine; PSS divides them among those processes (on this shared test machine many; on a node where podnet is the only node process, its PSS for them is close to their RSS).`,
  );
}
const firstBpfName = `+ ${EBPF_DEFAULT[0]}`;
for (const root of roots) {
  const i = selected.findIndex((s) => s.name === firstBpfName);
  if (i <= 0) continue;
  const a = median(keyOf(root.name, selected[i - 1]!.name));
  const b = median(keyOf(root.name, firstBpfName));
  notes.push(
    `${roots.length > 1 ? `${root.name}: t` : 'T'}he first eBPF probe adds ${MB(b.rss - a.rss)} MB (anonymous ${MB(a.anon)} → ${MB(b.anon)} MB; V8 heap reserved ${MB(a.heapTotal)} → ${MB(b.heapTotal)} MB; external ${MB(a.external)} → ${MB(b.external)} MB): libbpf parses the kernel's BTF for each object load and hook check and frees it (podnet calls malloc_trim(0) after applying the probes and after the first collection: receiver/bpf/malloc-trim.ts), packetloss loads the kernel symbol table for drop locations and stacks (receiver/bpf/kallsyms.ts: ~120,000 symbols in typed arrays since 2026-12-07, before as a string and a BigInt each), and each eBPF probe's 1 MB event ring stays mapped.`,
  );
}

emitSection({
  id: 'memory',
  title: 'Memory: where podnet’s RSS goes',
  commands: [
    `node benchmarks/suite/memory.ts${o.quick ? ' --quick' : ''}${o.rounds ? ` --rounds ${o.rounds}` : ''}${(o.root ?? []).map((r) => ` --root ${r.replace(/=.*/, '=DIR')}`).join('')}`,
  ],
  method: [
    `One podnet process per configuration (benchmarks/lib/podnet-child, host netns only, no OTLP endpoint, no CRI socket, collection interval 1 s), run as the checkout's \`npm start\` runs podnet (benchmarks/lib/as-started.ts: ${roots.map((r) => `${r.name}: \`${startForm(r.dir).script}\``).join('; ')}), measured after its third collection. RSS parts from /proc/<pid>/status (RssAnon, RssFile, RssShmem); PSS (shared pages divided among the processes that map them) and USS (pages only this process maps) from /proc/<pid>/smaps_rollup; CPU = utime + stime from exec to the measurement; V8 numbers from process.memoryUsage() inside podnet. ${rounds} round${rounds > 1 ? 's' : ''}, every configuration and baseline once per round; medians.`,
    `Baselines in the same invocation, measured 4 s after start: \`node -e 'setInterval(() => {}, 1000)'\` (the denominator of "× bare node") and node running a one-line .ts file.`,
    `Default eBPF probes added one at a time: ${EBPF_DEFAULT.join(', ')}.`,
    ...(roots.length > 1
      ? [`Checkouts (--root): ${roots.map((r) => r.name).join(', ')}, run alternately in each round.`]
      : []),
  ],
  tables,
  targets,
  notes,
  durationS: (performance.now() - started) / 1000,
  data: { rounds, roots: roots.map((r) => r.name), samples: Object.fromEntries(samples) },
});
