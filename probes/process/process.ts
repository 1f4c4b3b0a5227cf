// process: the processes of each entity — how many, their open file descriptors and sockets, and their
// read/write syscalls and bytes (`/proc/<pid>/io`). A pod's processes are found by its cgroup when the
// pod's cgroup parent is known and exists (cgroup v2, then v1), otherwise by netns (every process whose
// `/proc/<pid>/ns/net` is the entity's netns); `match` forces one. The host entity is off by default
// (it would be every host process). Replaces KubeSkoop's `fd` and `io` probes (cgroup v1 only).
//
// The I/O metrics are counters: the sum over the entity's live processes plus the last values seen of
// processes that have exited since (kept per entity), so the series does not fall when a process exits.
// I/O a process did between the last collection and its exit is not seen.
import { statSync } from 'node:fs';
import { z } from 'zod';
import { createProcfsProbe, metricFilter } from '../../receiver/kit/procfs.ts';
import { hostNetnsInode } from '../../receiver/netns/setns.ts';
import type { Entity } from '../../receiver/pods/entity.ts';
import { type MetricSink, SeriesKey } from '../../receiver/probe/sink.ts';
import type { Attributes, MetricDef, ProbeContext, ProbeSpec } from '../../receiver/probe/types.ts';
import { assertEntityAliveOnce } from '../../receiver/procfs/liveness.ts';
import { procfsAvailability } from '../../receiver/procfs/read.ts';
import type { PidIo } from './parse.ts';
import { PidFiles } from './pid-files.ts';
import { netnsPidIndex, type ProcessSample, podCgroupPids, sampleProcess } from './pids.ts';

const OP = ['podnet.io.operation'] as const;

export const PROCESS_METRICS: readonly MetricDef[] = [
  {
    name: 'podnet.process.instances',
    kind: 'gauge',
    unit: '{process}',
    description: 'Processes of the entity (pod cgroup, or processes in the netns).',
    attributes: [],
    enabled: true,
  },
  {
    name: 'podnet.process.file_descriptors',
    kind: 'gauge',
    unit: '{file_descriptor}',
    description: 'Open file descriptors, summed over the processes (`/proc/<pid>/fd`).',
    attributes: [],
    enabled: true,
  },
  {
    name: 'podnet.process.sockets',
    kind: 'gauge',
    unit: '{socket}',
    description:
      'Distinct sockets (by inode) the processes hold open; a socket shared by two processes counts once.',
    attributes: [],
    enabled: true,
  },
  {
    name: 'podnet.process.io.syscalls',
    kind: 'counter',
    unit: '{syscall}',
    description: 'read- and write-family syscalls (`/proc/<pid>/io` syscr, syscw), by `podnet.io.operation`.',
    attributes: OP,
    enabled: true,
  },
  {
    name: 'podnet.process.io.chars',
    kind: 'counter',
    unit: 'By',
    description:
      'Bytes passed through read- and write-family syscalls, sockets and pipes included (`/proc/<pid>/io` rchar, wchar).',
    attributes: OP,
    enabled: true,
  },
  {
    name: 'podnet.process.disk.io',
    kind: 'counter',
    unit: 'By',
    description: 'Bytes fetched from / sent to the storage layer (`/proc/<pid>/io` read_bytes, write_bytes).',
    attributes: ['disk.io.direction'],
    enabled: true,
  },
];

export const processArgs = z
  .object({
    /** How to find an entity's processes: `auto` = cgroup when the pod's cgroup is known, else netns. */
    match: z.enum(['auto', 'cgroup', 'netns']).default('auto'),
    /** Also report the host entity (every process in the host netns). */
    host: z.boolean().default(false),
    concurrency: z.number().int().min(1).max(64).default(4),
    /** Metric names to produce (the pipeline may pass its enabled set); default: all declared. */
    metrics: z.array(z.string()).optional(),
  })
  .strict();
export type ProcessArgs = z.infer<typeof processArgs>;

const READ: Attributes = Object.freeze({ 'podnet.io.operation': 'read' });
const WRITE: Attributes = Object.freeze({ 'podnet.io.operation': 'write' });
const DISK_READ: Attributes = Object.freeze({ 'disk.io.direction': 'read' });
const DISK_WRITE: Attributes = Object.freeze({ 'disk.io.direction': 'write' });

type IoSums = { -readonly [K in keyof PidIo]: number };
const zero = (): IoSums => ({
  rchar: 0,
  wchar: 0,
  syscr: 0,
  syscw: 0,
  readBytes: 0,
  writeBytes: 0,
  cancelledWriteBytes: 0,
});
const IO_KEYS = Object.keys(zero()) as (keyof PidIo)[];

function add(into: IoSums, io: PidIo): void {
  for (const k of IO_KEYS) into[k] += io[k];
}

/** Per-entity memory of processes, so that counters survive process exits. */
interface EntityState {
  /** Last I/O seen per live pid. */
  last: Map<number, PidIo>;
  /** Sum of the last values of processes that exited. */
  retired: IoSums;
  /** This collection's sums (reused). */
  sums: IoSums;
}

/** The series keys (receiver/probe/sink.ts), made once. */
const K = {
  instances: new SeriesKey('podnet.process.instances'),
  fds: new SeriesKey('podnet.process.file_descriptors'),
  sockets: new SeriesKey('podnet.process.sockets'),
  syscr: new SeriesKey('podnet.process.io.syscalls', READ),
  syscw: new SeriesKey('podnet.process.io.syscalls', WRITE),
  rchar: new SeriesKey('podnet.process.io.chars', READ),
  wchar: new SeriesKey('podnet.process.io.chars', WRITE),
  diskRead: new SeriesKey('podnet.process.disk.io', DISK_READ),
  diskWrite: new SeriesKey('podnet.process.disk.io', DISK_WRITE),
};
/** The socket set of an entity without processes (never written to). */
const NO_SOCKETS = new Set<number>();

// A netns without a pod is keyed by its inode (a number: no string built per entity per collection).
const stateKey = (e: Entity): string | number => (e.pod ? `${e.netnsInode}/${e.pod.uid}` : e.netnsInode);

export class ProcessCollector {
  #args: ProcessArgs;
  #wanted: (m: string) => boolean;
  /** Keyed by netns inode and pod uid (`stateKey`). */
  readonly #state = new Map<string | number, EntityState>();
  #index: Map<number, number[]> | undefined;
  /** Kept-open /proc/<pid>/io and /proc/<pid>/fd fds (./pid-files.ts). */
  readonly #pidFiles: PidFiles;

  readonly #ctx: Pick<ProbeContext, 'enabledMetrics'> | undefined;

  constructor(args: ProcessArgs, ctx?: Pick<ProbeContext, 'enabledMetrics'>, pidFiles = new PidFiles()) {
    this.#args = args;
    this.#pidFiles = pidFiles;
    this.#ctx = ctx;
    this.#wanted = metricFilter(PROCESS_METRICS, args.metrics, ctx);
  }

  /** New args; the per-entity state (counters of exited processes) is kept. */
  setArgs(args: ProcessArgs): void {
    this.#args = args;
    this.#wanted = metricFilter(PROCESS_METRICS, args.metrics, this.#ctx);
  }

  skip(entity: Entity): boolean {
    return !this.#args.host && (entity.kind === 'host' || entity.netnsInode === hostNetnsInode);
  }

  /** One /proc scan per collection when an entity needs the netns match; forget entities gone. */
  prepare(entities: readonly Entity[]): void {
    this.#index = undefined;
    this.#pidFiles.sweep();
    const live = new Set(entities.map(stateKey));
    for (const k of this.#state.keys()) if (!live.has(k)) this.#state.delete(k);
    if (entities.some((e) => this.#method(e) === 'netns')) this.#index = netnsPidIndex();
  }

  #method(entity: Entity): 'cgroup' | 'netns' {
    if (this.#args.match === 'netns') return 'netns';
    if (this.#args.match === 'cgroup') return 'cgroup';
    return entity.pod?.cgroupParent ? 'cgroup' : 'netns';
  }

  /** The entity's pids, per the match method. */
  pids(entity: Entity): number[] {
    if (this.#method(entity) === 'cgroup') {
      const parent = entity.pod?.cgroupParent;
      if (!parent) throw new Error(`${entity.displayName}: no pod cgroup parent known (match: cgroup)`);
      const pids = podCgroupPids(parent);
      if (pids !== undefined) return pids;
      if (this.#args.match === 'cgroup') throw new Error(`${entity.displayName}: cgroup ${parent} not found`);
      // auto: the cgroup is not on this host's hierarchies → fall back to the netns match.
      this.#index ??= netnsPidIndex();
    }
    this.#index ??= netnsPidIndex();
    return this.#index.get(entity.netnsInode) ?? [];
  }

  /** Closes the kept fds (the probe stops). */
  close(): void {
    this.#pidFiles.closeAll();
  }

  collect(entity: Entity, out: MetricSink, cycle?: object): void {
    const pids = this.pids(entity);
    const sockets = pids.length > 0 ? new Set<number>() : NO_SOCKETS;
    const samples: ProcessSample[] = [];
    for (const pid of pids) {
      const s = sampleProcess(pid, sockets, this.#pidFiles);
      if (s) samples.push(s);
    }
    assertEntityAliveOnce(entity, cycle); // a netns that vanished yields no points, not zeros
    const key = stateKey(entity);
    let state = this.#state.get(key);
    if (!state) {
      state = { last: new Map(), retired: zero(), sums: zero() };
      this.#state.set(key, state);
    }
    const sums = state.sums;
    for (const k of IO_KEYS) sums[k] = 0;
    let fds = 0;
    // No process now and none last time (most netns of a node without pods' processes): nothing to retire.
    if (samples.length > 0 || state.last.size > 0) {
      const seen = new Map<number, PidIo>();
      for (const s of samples) {
        const prev = state.last.get(s.pid);
        // A pid whose counters went backwards is a new process with a reused pid: retire the old one.
        if (prev && IO_KEYS.some((k) => s.io[k] < prev[k])) add(state.retired, prev);
        seen.set(s.pid, s.io);
        add(sums, s.io);
        fds += s.fds;
      }
      for (const [pid, io] of state.last) if (!seen.has(pid)) add(state.retired, io);
      state.last = seen;
    }
    add(sums, state.retired);

    const netns = entity.netnsInode;
    const w = this.#wanted;
    if (w('podnet.process.instances')) out.value(K.instances, netns, samples.length);
    if (w('podnet.process.file_descriptors')) out.value(K.fds, netns, fds);
    if (w('podnet.process.sockets')) out.value(K.sockets, netns, sockets.size);
    if (w('podnet.process.io.syscalls')) {
      out.value(K.syscr, netns, sums.syscr);
      out.value(K.syscw, netns, sums.syscw);
    }
    if (w('podnet.process.io.chars')) {
      out.value(K.rchar, netns, sums.rchar);
      out.value(K.wchar, netns, sums.wchar);
    }
    if (w('podnet.process.disk.io')) {
      out.value(K.diskRead, netns, sums.readBytes);
      out.value(K.diskWrite, netns, sums.writeBytes);
    }
  }
}

export const processProbe: ProbeSpec<ProcessArgs> = {
  name: 'process',
  description:
    "Per entity: processes, open fds and sockets, read/write syscalls and bytes (/proc/<pid>/io) of the pod's processes (by cgroup v2/v1, or by netns).",
  source: 'procfs',
  defaultEnabled: true,
  metrics: PROCESS_METRICS,
  events: [],
  args: processArgs,
  async availability() {
    const io = procfsAvailability(['io']);
    if (!io.available) return io;
    try {
      statSync('/proc/self/ns/net');
      return { available: true };
    } catch (err) {
      return {
        available: false,
        reason: `cannot stat /proc/self/ns/net: ${(err as NodeJS.ErrnoException).code}`,
      };
    }
  },
  async create(ctx, args) {
    const c = new ProcessCollector(args, ctx);
    const probe = createProcfsProbe<ProcessArgs>({
      reconfigure: (a) => c.setArgs(a),
      log: ctx.log.child({ probe: 'process' }),
      concurrency: args.concurrency,
      skip: (e) => c.skip(e),
      prepare: (entities) => c.prepare(entities),
      writeEntity: (entity, sink, cycle) => c.collect(entity, sink, cycle),
    });
    return {
      ...probe,
      async close(): Promise<void> {
        // The collection loop first: a collection still running would open pid files again after them.
        await probe.close();
        c.close();
      },
    };
  },
};
